package supervisor

import "time"

// Backoff decides when an exited job runs again. The first restart is immediate (a crash costs one
// fork); each further quick failure doubles the delay from First up to Max. A process that stayed up
// for StayUp resets the count. Limit quick failures in a row mark the job failed (flapping).
type Backoff struct {
	First  time.Duration // delay before the second restart in a row
	Max    time.Duration
	StayUp time.Duration // a run this long is not a failure in a row
	Limit  int           // quick failures in a row before the job is failed; 0: never
}

// DefaultBackoff: restarts at 0, 100 ms, 200 ms, ... 10 s; ten quick failures in a row fail the job.
var DefaultBackoff = Backoff{First: 100 * time.Millisecond, Max: 10 * time.Second, StayUp: 10 * time.Second, Limit: 10}

// Delay returns the wait before restart number n in a row (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	if n <= 1 {
		return 0
	}
	d := b.First
	for i := 2; i < n && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	return d
}
