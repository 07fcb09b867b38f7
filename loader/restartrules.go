package loader

import "time"

// RestartRules are a job's own restart timing and exit-status rules. A nil pointer is "not
// defined by the loader": god's daemon-wide default applies. (Pointers because 0 is a meaningful
// value for several of them: restart-limit 0 never fails a job, cool-down 0 never retries.)
type RestartRules struct {
	Delay       *time.Duration // restart-delay: the back-off's first delay (second quick failure in a row)
	DelayMax    *time.Duration // restart-delay-max: the back-off's longest delay
	Limit       *int           // restart-limit: quick failures in a row before the job is failed; 0 never
	MinUptime   *time.Duration // min-uptime: a ready process that ran this long restarts at once
	CoolDown    *time.Duration // cool-down: a failed (flapping) job tries again after this; 0 never
	SuccessExit []int          // success-exit-status: exit codes, or 256+signal, that count as success besides 0
	PreventExit []int          // restart-prevent-exit-status: exit codes, or 256+signal, after which the job is not restarted
}

// ExitStatusMatches reports whether an exit (code, when exited) or a death by signal is in list.
func ExitStatusMatches(list []int, exited bool, code int, signal int) bool {
	for _, v := range list {
		if exited && v == code || !exited && v == 256+signal {
			return true
		}
	}
	return false
}
