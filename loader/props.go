package loader

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Typed values of a job's static properties. Each ParseX takes the loader's
// reply to that property and gives the protocol's default (docs/protocol.md) for an empty reply.
// Replies are read strictly: an element a form does not define is an error.

// Auto says whether god starts a job by itself. ["true"] starts it when it is
// loaded; ["false"] and [] leave it manual; [JOB...] starts it once each
// listed job is ready; ["socket"] starts it on demand: god watches its sockets
// and starts it on the first connection or datagram (so no job named "socket"
// can be the one dependency of an auto list).
type Auto struct {
	Start  bool
	After  []string // jobs that must be ready first; nil for ["true"] and ["socket"]
	Socket bool     // ["socket"]: start on the first connection, and sleep again after an exit 0
}

// ReadyMode says when a started job counts as ready.
type ReadyMode string

const (
	ReadyDefault ReadyMode = ""       // "check" where a check is defined, else as soon as it started
	ReadyCheck   ReadyMode = "check"  // at the first "ok" check reply
	ReadyNotify  ReadyMode = "notify" // at READY=1 on NOTIFY_SOCKET
	ReadyDelay   ReadyMode = "delay"  // Delay after the start
	ReadyExit    ReadyMode = "exit"   // at a clean exit: a one-shot task, with no start timeout
)

// Ready is the reply to "ready".
type Ready struct {
	Mode  ReadyMode
	Delay time.Duration // only for ReadyDelay
}

// ReloadMode says how god reloads a job.
type ReloadMode string

const (
	ReloadDefault ReloadMode = ""        // overlap for jobs with sockets, else restart
	ReloadOverlap ReloadMode = "overlap" // new generation beside the old, old drained once the new is ready
	ReloadRestart ReloadMode = "restart" // stop, then start
	ReloadSignal  ReloadMode = "signal"  // send Signal; the job reloads itself
)

// Reload is the reply to "reload". ["signal"] without a signal means SIGHUP.
type Reload struct {
	Mode   ReloadMode
	Signal syscall.Signal // only for ReloadSignal
}

// RestartPolicy says whether god restarts a job that exited.
type RestartPolicy string

const (
	RestartAlways    RestartPolicy = "always"
	RestartOnFailure RestartPolicy = "on-failure"
	RestartNever     RestartPolicy = "never"
)

// LogFormat says how god reads a job's output lines.
type LogFormat string

const (
	LogText   LogFormat = "text"
	LogJSON   LogFormat = "json"
	LogLogfmt LogFormat = "logfmt"
)

// maxInstances bounds "instances".
const maxInstances = 1024

// parseExec reads a job's argv. An empty reply gives nil: the job cannot
// start. An empty program name or a NUL byte is an error.
func parseExec(m Message) ([]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	if m[0] == "" {
		return nil, errors.New("empty program name")
	}
	for i, a := range m {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("argument %d contains a NUL byte", i)
		}
	}
	return append([]string(nil), m...), nil
}

// parseEnv reads KEY=VALUE items. A key must be non-empty; no item may
// contain NUL. An empty reply gives nil (god's environment alone).
func parseEnv(m Message) ([]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	for _, kv := range m {
		key, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return nil, fmt.Errorf("%.80q is not KEY=VALUE", kv)
		case key == "":
			return nil, fmt.Errorf("%.80q has an empty key", kv)
		case strings.IndexByte(kv, 0) >= 0:
			return nil, fmt.Errorf("%.80q contains a NUL byte", kv)
		}
	}
	return append([]string(nil), m...), nil
}

// parseAuto reads ["true"], ["false"], ["socket"] or [JOB...]; repeated jobs are kept once.
func parseAuto(m Message) (Auto, error) {
	if len(m) == 0 || len(m) == 1 && m[0] == "false" {
		return Auto{}, nil
	}
	if len(m) == 1 && m[0] == "true" {
		return Auto{Start: true}, nil
	}
	if len(m) == 1 && m[0] == "socket" {
		return Auto{Start: true, Socket: true}, nil
	}
	after := make([]string, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, job := range m {
		if !ValidJobName(job) {
			return Auto{}, fmt.Errorf("invalid job name %.80q", job)
		}
		if !seen[job] {
			seen[job] = true
			after = append(after, job)
		}
	}
	return Auto{Start: true, After: after}, nil
}

// parseListen reads ["NAME=ADDR", ...]. NAME follows the job-name rule and is
// unique; ADDR must be non-empty (fdpass parses it).
func parseListen(m Message) ([]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	seen := make(map[string]bool, len(m))
	for _, item := range m {
		name, addr, ok := strings.Cut(item, "=")
		switch {
		case !ok || addr == "":
			return nil, fmt.Errorf("%.80q is not NAME=ADDR", item)
		case !ValidJobName(name):
			return nil, fmt.Errorf("%.80q: invalid socket name", item)
		case seen[name]:
			return nil, fmt.Errorf("socket %s declared twice", name)
		case strings.IndexByte(addr, 0) >= 0:
			return nil, fmt.Errorf("%.80q contains a NUL byte", item)
		}
		seen[name] = true
	}
	return append([]string(nil), m...), nil
}

// parseInstances reads ["N"], 1 <= N <= 1024; [] gives 1.
func parseInstances(m Message) (int, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return 0, err
	}
	if len(m) == 0 {
		return 1, nil
	}
	n, err := strconv.Atoi(m[0])
	if err != nil || n < 1 || n > maxInstances || m[0][0] == '+' {
		return 0, fmt.Errorf("instances %.20q: want a number from 1 to %d", m[0], maxInstances)
	}
	return n, nil
}

// parseReady reads ["check"], ["notify"] or ["delay", MS]; [] is the default.
func parseReady(m Message) (Ready, error) {
	if len(m) == 0 {
		return Ready{}, nil
	}
	switch mode := ReadyMode(m[0]); mode {
	case ReadyCheck, ReadyNotify, ReadyExit:
		if err := wantLen(m, 1, 1); err != nil {
			return Ready{}, err
		}
		return Ready{Mode: mode}, nil
	case ReadyDelay:
		if err := wantLen(m, 2, 2); err != nil {
			return Ready{}, err
		}
		d, err := parseMS(m[1])
		if err != nil {
			return Ready{}, err
		}
		return Ready{Mode: mode, Delay: d}, nil
	}
	return Ready{}, fmt.Errorf("unknown ready mode %.20q (want check, notify, delay or exit)", m[0])
}

// parseReload reads ["overlap"], ["restart"] or ["signal", SIGNAL]; a signal
// reload without a signal sends SIGHUP. [] is the default.
func parseReload(m Message) (Reload, error) {
	if len(m) == 0 {
		return Reload{}, nil
	}
	switch mode := ReloadMode(m[0]); mode {
	case ReloadOverlap, ReloadRestart:
		if err := wantLen(m, 1, 1); err != nil {
			return Reload{}, err
		}
		return Reload{Mode: mode}, nil
	case ReloadSignal:
		if err := wantLen(m, 1, 2); err != nil {
			return Reload{}, err
		}
		if len(m) == 1 {
			return Reload{Mode: mode, Signal: syscall.SIGHUP}, nil
		}
		sig, err := ParseSignal(m[1])
		if err != nil {
			return Reload{}, err
		}
		return Reload{Mode: mode, Signal: sig}, nil
	}
	return Reload{}, fmt.Errorf("unknown reload mode %.20q (want overlap, restart or signal)", m[0])
}

// parseRestart reads ["always"], ["on-failure"] or ["never"]; [] is always.
func parseRestart(m Message) (RestartPolicy, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return "", err
	}
	if len(m) == 0 {
		return RestartAlways, nil
	}
	switch p := RestartPolicy(m[0]); p {
	case RestartAlways, RestartOnFailure, RestartNever:
		return p, nil
	}
	return "", fmt.Errorf("unknown restart policy %.20q (want always, on-failure or never)", m[0])
}

// parseDir reads [PATH]; [] gives "" (god's working directory).
func parseDir(m Message) (string, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return "", err
	}
	if len(m) == 0 {
		return "", nil
	}
	if m[0] == "" || strings.IndexByte(m[0], 0) >= 0 {
		return "", fmt.Errorf("invalid directory %.80q", m[0])
	}
	return m[0], nil
}

// parseLog reads ["text"], ["json"] or ["logfmt"]; [] is text.
func parseLog(m Message) (LogFormat, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return "", err
	}
	if len(m) == 0 {
		return LogText, nil
	}
	switch f := LogFormat(m[0]); f {
	case LogText, LogJSON, LogLogfmt:
		return f, nil
	}
	return "", fmt.Errorf("unknown log format %.20q (want text, json or logfmt)", m[0])
}

// parseWatchdog reads [MS]; [] and ["0"] give 0: no watchdog.
func parseWatchdog(m Message) (time.Duration, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return 0, err
	}
	if len(m) == 0 {
		return 0, nil
	}
	return parseMS(m[0])
}

// wantLen checks a reply's element count, for a clear error.
func wantLen(m Message, lo, hi int) error {
	if len(m) < lo || len(m) > hi {
		if lo == hi {
			return fmt.Errorf("reply %.80q: want %d elements, got %d", []string(m), lo, len(m))
		}
		return fmt.Errorf("reply %.80q: want %d to %d elements, got %d", []string(m), lo, hi, len(m))
	}
	return nil
}
