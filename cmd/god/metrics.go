package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/supervisor"
)

// exporterName is the metrics exporter's executable (cmd/god-metrics), and its name as a helper
// in god's log and upgrade state.
const exporterName = "god-metrics"

// metricsHelper prepares `god --metrics ADDR`: god listens on ADDR itself, before it reports
// ready, so that a taken or invalid address fails god's start instead of a scrape much later; the
// exporter program serves the socket as its fd 3 and asks god for a snapshot at each scrape over
// the control socket. god runs the exporter as a helper (supervisor.Helper): started when god
// runs, restarted when it exits, stopped when god stops.
//
// After `god upgrade` the socket is the one the old image kept (scrapes waited in its queue
// during the exec); it is opened anew only when the old image had none (it ran without
// --metrics, or is a god from before the exporter). A missing exporter fails a fresh start; in
// an upgraded god, which must not exit, it is logged and the helper retries with back-off. The
// pre-flight of an upgrade checks for it first (checkMetricsFlags).
func metricsHelper(f *daemonFlags, exe, socket string, upgraded *upgradestate.State, logger *slog.Logger) (supervisor.Helper, error) {
	path, findErr := findExporter(exe)
	if findErr != nil && upgraded == nil {
		return supervisor.Helper{}, fmt.Errorf("--metrics %s: %w", f.metrics, findErr)
	}
	var sock *os.File
	if files := upgraded.TakeHelperFiles(exporterName); len(files) == 1 {
		sock = files[0]
	} else {
		for _, f := range files {
			f.Close()
		}
		var err error
		if sock, err = listenMetrics(f.metrics); err != nil {
			return supervisor.Helper{}, err
		}
	}
	if findErr != nil {
		logger.Error("metrics exporter missing; god retries it with back-off", "err", fmt.Errorf("--metrics %s: %w", f.metrics, findErr))
		path = filepath.Join(filepath.Dir(exe), exporterName)
	}
	h := supervisor.Helper{
		Name: exporterName,
		Path: path,
		Args: []string{
			"--listen-fd=3",
			"--socket=" + socket,
			"--pid=" + strconv.Itoa(os.Getpid()),
			"--log=" + f.logMode,
			"--log-level=" + f.logLevel,
		},
		Files:  []*os.File{sock},
		Stdout: os.Stdout,
		Stderr: os.Stderr,
	}
	// The exporter logs to god's stdout; under systemd it must pick the journal's format as god
	// did, and jobs do not get JOURNAL_STREAM.
	if js := os.Getenv("JOURNAL_STREAM"); js != "" {
		h.Env = append(h.Env, "JOURNAL_STREAM="+js)
	}
	return h, nil
}

// listenMetrics opens god's own copy of the metrics socket, in the form god keeps job sockets
// in (fdpass.Open: close-on-exec, blocking, out of Go's poller); errors name the flag and the
// address.
func listenMetrics(addr string) (*os.File, error) {
	spec, err := fdpass.ParseAddr("metrics", "tcp://"+addr)
	if err == nil {
		var f *os.File
		if f, err = fdpass.Open(spec); err == nil {
			return f, nil
		}
	}
	return nil, fmt.Errorf("--metrics %s: %w", addr, err)
}

// findExporter looks for god-metrics next to god's own executable (exe, resolved when god
// started; "" when unknown), then in PATH, and says where it looked when it is in neither.
func findExporter(exe string) (string, error) {
	var looked []string
	if exe != "" {
		p := filepath.Join(filepath.Dir(exe), exporterName)
		if isExecutable(p) {
			return p, nil
		}
		looked = append(looked, p)
	}
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, exporterName)
		if isExecutable(p) {
			if !filepath.IsAbs(p) {
				if abs, err := filepath.Abs(p); err == nil {
					p = abs
				}
			}
			return p, nil
		}
	}
	looked = append(looked, "$PATH ("+os.Getenv("PATH")+")")
	return "", fmt.Errorf("metrics exporter %s not found: looked at %s", exporterName, strings.Join(looked, " and in "))
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// checkMetricsFlags is the pre-flight's part for --metrics: the new binary refuses an upgrade it
// could not finish, as one whose exporter is missing next to it and in PATH. args are god's
// daemon arguments.
func checkMetricsFlags(args []string, exe string) error {
	daemon, _, rest := route(args)
	if !daemon {
		return nil
	}
	f, err := parseDaemonFlags(rest)
	if err != nil {
		return fmt.Errorf("god's arguments: %w", err)
	}
	if f.metrics == "" {
		return nil
	}
	if _, err := findExporter(exe); err != nil {
		return fmt.Errorf("--metrics %s: %w", f.metrics, err)
	}
	return nil
}
