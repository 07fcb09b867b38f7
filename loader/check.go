package loader

import (
	"fmt"
	"time"
)

// CheckKind is what a check reply asks god to do.
type CheckKind string

const (
	CheckNone    CheckKind = "none"    // []: the job has no check
	CheckOK      CheckKind = "ok"      // healthy: state run
	CheckDegrade CheckKind = "degrade" // unhealthy but serving: state degrade
	CheckFail    CheckKind = "fail"    // stop the job; it restarts like any exit
	CheckStart   CheckKind = "start"   // start this job
	CheckStop    CheckKind = "stop"    // stop this job
	CheckRestart CheckKind = "restart" // restart this job
	CheckForward CheckKind = "forward" // ["@JOB", CMD, ARG...]: send CMD to JOB
)

// Check is a parsed reply to "check".
type Check struct {
	Kind CheckKind
	// Next is the interval to the next check for ok and degrade; 0 means the
	// default (1 s). A requested interval under 10 ms is raised to 10 ms.
	Next time.Duration
	// Target and Command are set for CheckForward only.
	Target  string
	Command []string
}

// minCheckInterval keeps a loader from asking for a busy loop of checks.
const minCheckInterval = 10 * time.Millisecond

// ParseCheck reads a check reply: ["ok", MS?], ["degrade", MS?], ["fail"],
// ["start"], ["stop"], ["restart"], ["@JOB", CMD, ARG...] or [] (no check).
func ParseCheck(m Message) (Check, error) {
	if len(m) == 0 {
		return Check{Kind: CheckNone}, nil
	}
	head := m[0]
	if len(head) > 0 && head[0] == '@' {
		target := head[1:]
		if !ValidJobName(target) {
			return Check{}, fmt.Errorf("check reply forwards to invalid job name %.80q", target)
		}
		if len(m) < 2 || m[1] == "" {
			return Check{}, fmt.Errorf("check reply forwards to %s without a command", target)
		}
		return Check{Kind: CheckForward, Target: target, Command: append([]string(nil), m[1:]...)}, nil
	}
	switch kind := CheckKind(head); kind {
	case CheckOK, CheckDegrade:
		if err := wantLen(m, 1, 2); err != nil {
			return Check{}, err
		}
		c := Check{Kind: kind}
		if len(m) == 2 {
			d, err := parseMS(m[1])
			if err != nil {
				return Check{}, fmt.Errorf("check %s: %w", kind, err)
			}
			c.Next = max(d, minCheckInterval)
		}
		return c, nil
	case CheckFail, CheckStart, CheckStop, CheckRestart:
		if err := wantLen(m, 1, 1); err != nil {
			return Check{}, err
		}
		return Check{Kind: kind}, nil
	}
	return Check{}, fmt.Errorf("unknown check reply %.20q (want ok, degrade, fail, start, stop, restart or @JOB)", head)
}
