package supervisor

import "time"

// pacer spaces out a piece of work that god repeats while things change and whose cost grows
// with god's size: a rewrite of the crash file. Run as often as it is asked, such work costs O(jobs) per event, O(jobs²) over a start or
// a stop of thousands of jobs. Paced, the next run waits after the end of the last one for
// Share times as long as that one took, so the work takes at most 1/(1+Share) of the time it is
// asked for continuously, whatever god's size; the asks that arrive meanwhile are all served by
// that next run. Min and Max bound the wait: Min folds a burst into one run even when a run is
// cheap, Max bounds how stale the work may get when a run is dear (a crash file that lags by
// more than that loses changes a crash would need).
//
// The pacer decides only: its caller measures the runs (done) and waits (next), on a clock it
// passes in, so the decision is tested without sleeping.
type pacer struct {
	Share    int           // the wait after a run is Share times the run's duration
	Min, Max time.Duration // bounds of that wait
	end      time.Time     // when the last run ended; zero: none ran yet
	took     time.Duration // how long it took
}

// done records a run that started at start and ended at end.
func (p *pacer) done(start, end time.Time) {
	p.end, p.took = end, max(end.Sub(start), 0)
}

// wait is the pause after the last run, before the next may start.
func (p *pacer) wait() time.Duration {
	return min(max(time.Duration(p.Share)*p.took, p.Min), p.Max)
}

// next is the earliest time the next run may start, for an ask at now: now itself when the
// last run ended long enough ago (or none ran), never before now.
func (p *pacer) next(now time.Time) time.Time {
	if p.end.IsZero() {
		return now
	}
	if at := p.end.Add(p.wait()); at.After(now) {
		return at
	}
	return now
}
