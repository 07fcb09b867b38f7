package jobstate

import (
	"time"

	"github.com/emielm/watchgod/loader"
)

// Policy is what god runs every job with: its timeouts and the restart rules a job does not set
// for itself.
type Policy struct {
	StartTimeout  time.Duration // a process not ready by then has failed
	LoaderTimeout time.Duration // a loader's reply; a stop request unanswered this long (+5 s) is SIGKILLed
	LingerTimeout time.Duration // a process group left after its leader exited gets SIGKILL after this
	Backoff       Backoff
}

// Backoff decides when an exited job runs again. A process that became ready and ran MinUptime
// restarts at once, however often that happens (it is serving, not crash-looping: every second of
// back-off would be a second of requests waiting in the socket's queue). A process that dies
// before that is a quick failure: the first restarts at once, each further one in a row waits
// First, doubling up to Max. Limit quick failures in a row fail the job; a failed job tries
// again after CoolDown (0: never).
type Backoff struct {
	First     time.Duration
	Max       time.Duration
	MinUptime time.Duration
	Limit     int // 0: never fail
	CoolDown  time.Duration
}

// DefaultBackoff: quick failures restart at 0, 100 ms, 200 ms, ... 10 s; ten in a row fail the
// job, which tries again after 60 s; a process ready for 1 s restarts at once.
var DefaultBackoff = Backoff{First: 100 * time.Millisecond, Max: 10 * time.Second, MinUptime: time.Second, Limit: 10, CoolDown: time.Minute}

// DefaultPolicy is god's default timing.
var DefaultPolicy = Policy{StartTimeout: 30 * time.Second, LoaderTimeout: 5 * time.Second, LingerTimeout: 5 * time.Second, Backoff: DefaultBackoff}

// Delay returns the wait before restart number n in a row (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := b.First
	for i := 2; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// With returns b with the job's own rules in place of god's defaults.
func (b Backoff) With(r loader.RestartRules) Backoff {
	if r.Delay != nil {
		b.First = *r.Delay
	}
	if r.DelayMax != nil {
		b.Max = *r.DelayMax
	}
	if r.Limit != nil {
		b.Limit = *r.Limit
	}
	if r.MinUptime != nil {
		b.MinUptime = *r.MinUptime
	}
	if r.CoolDown != nil {
		b.CoolDown = *r.CoolDown
	}
	return b
}
