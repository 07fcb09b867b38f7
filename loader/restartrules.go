package loader

import (
	"fmt"
	"strconv"
	"syscall"
	"time"
)

// RestartRules are a job's own restart timing and exit-status rules. A nil pointer is "not
// defined by the loader": god's daemon-wide default applies. (Pointers because 0 is a meaningful
// value for several of them: restart-limit 0 never fails a job, cool-down 0 never retries.)
type RestartRules struct {
	Delay     *time.Duration // restart-delay: the back-off's first delay (second quick failure in a row)
	DelayMax  *time.Duration // restart-delay-max: the back-off's longest delay
	Limit     *int           // restart-limit: quick failures in a row before the job is failed; 0 never
	MinUptime *time.Duration // min-uptime: a ready process that ran this long restarts at once
	CoolDown  *time.Duration // cool-down: a failed (flapping) job tries again after this; 0 never
	// SuccessExit are exit statuses that count as success besides 0 (success-exit-status), and
	// PreventExit those after which the job is not restarted (restart-prevent-exit-status). An
	// exit code is 0..255; a death by signal N is 256+N.
	SuccessExit []int
	PreventExit []int
}

// maxExitStatuses bounds a status list: a longer one is a loader bug.
const maxExitStatuses = 64

// maxRestartLimit bounds restart-limit.
const maxRestartLimit = 1000000

// ExitStatusMatches reports whether an exit with code (exited) or a death by signal is in list.
func ExitStatusMatches(list []int, exited bool, code int, signal int) bool {
	for _, v := range list {
		if exited && v == code || !exited && v == 256+signal {
			return true
		}
	}
	return false
}

// formatExitStatus writes a status of a list as a loader would: "75" or "SIGTERM".
func formatExitStatus(v int) string {
	if v >= 256 {
		return SignalName(syscall.Signal(v - 256))
	}
	return strconv.Itoa(v)
}

// parseOptionalMS reads [MS] into a pointer; [] leaves it nil (god's default).
func parseOptionalMS(m Message) (*time.Duration, error) {
	if err := wantLen(m, 0, 1); err != nil || len(m) == 0 {
		return nil, err
	}
	d, err := parseMS(m[0])
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// parseRestartLimit reads [N], 0 <= N <= 1000000; [] is nil.
func parseRestartLimit(m Message) (*int, error) {
	if err := wantLen(m, 0, 1); err != nil || len(m) == 0 {
		return nil, err
	}
	n, err := strconv.Atoi(m[0])
	if err != nil || n < 0 || n > maxRestartLimit || !isDigits(m[0]) {
		return nil, fmt.Errorf("restart limit %.20q: want a number from 0 to %d", m[0], maxRestartLimit)
	}
	return &n, nil
}

// parseExitStatuses reads a list of exit codes ("0".."255") and signal names ("SIGTERM", "TERM").
func parseExitStatuses(m Message) ([]int, error) {
	if len(m) > maxExitStatuses {
		return nil, fmt.Errorf("%d exit statuses: at most %d", len(m), maxExitStatuses)
	}
	var out []int
	for _, s := range m {
		if isDigits(s) && s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n > 255 {
				return nil, fmt.Errorf("exit status %.20q: want 0 to 255 or a signal name", s)
			}
			out = append(out, n)
			continue
		}
		if s != "" && s[0] >= '0' && s[0] <= '9' || s == "" {
			return nil, fmt.Errorf("exit status %.20q: want 0 to 255 or a signal name", s)
		}
		sig, err := ParseSignal(s)
		if err != nil {
			return nil, fmt.Errorf("exit status %.20q: want 0 to 255 or a signal name", s)
		}
		out = append(out, 256+int(sig))
	}
	return out, nil
}
