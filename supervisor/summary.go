package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
)

// Summary counts god's jobs by what they are doing. It is what god tells a service manager in
// one line (systemd's STATUS=) and what a health probe can look at without listing every job.
//
// Every job is counted once, in the field of its state: Running (run), Degraded (degrade),
// Starting (start, exit, backoff: on its way to running), Stopping (stop), Failed (failed);
// the rest (wait, stopped, done) are idle and only counted in Jobs.
type Summary struct {
	Jobs      int
	Running   int
	Degraded  int
	Starting  int
	Stopping  int
	Failed    int
	Loaders   int  // loader files god knows
	LoaderErr int  // loader files whose last load failed
	Shutdown  bool // god is stopping every job before it exits
}

// String reads like "12 jobs, 11 running, 1 failed": Jobs and Running always, the other counts
// only when they are not zero, and a "shutting down: " prefix during shutdown.
func (m Summary) String() string {
	var b strings.Builder
	if m.Shutdown {
		b.WriteString("shutting down: ")
	}
	fmt.Fprintf(&b, "%d %s, %d running", m.Jobs, plural(m.Jobs, "job", "jobs"), m.Running)
	for _, c := range []struct {
		n    int
		what string
	}{
		{m.Degraded, "degraded"},
		{m.Starting, "starting"},
		{m.Stopping, "stopping"},
		{m.Failed, "failed"},
	} {
		if c.n > 0 {
			fmt.Fprintf(&b, ", %d %s", c.n, c.what)
		}
	}
	if m.LoaderErr > 0 {
		fmt.Fprintf(&b, ", %d %s failing", m.LoaderErr, plural(m.LoaderErr, "loader", "loaders"))
	}
	return b.String()
}

// plural picks the word that goes with n.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// summarize counts the jobs by state; it runs in the loop goroutine.
func (s *Supervisor) summarize() Summary {
	m := Summary{Jobs: len(s.jobs), Loaders: len(s.loaders), Shutdown: s.shutting}
	for _, h := range s.jobs {
		switch h.state {
		case jobstate.StateRun:
			m.Running++
		case jobstate.StateDegrade:
			m.Degraded++
		case jobstate.StateStart, jobstate.StateExit, jobstate.StateBackoff:
			m.Starting++
		case jobstate.StateStop:
			m.Stopping++
		case jobstate.StateFailed:
			m.Failed++
		}
	}
	for _, lf := range s.loaders {
		if lf.err != "" {
			m.LoaderErr++
		}
	}
	return m
}

// errEnded is returned by the waiting methods once Run has returned.
var errEnded = errors.New("god has stopped")

// Summary returns the counts now. It goes through the supervisor's loop, so a summary also
// proves the loop answers (god's own watchdog uses it); false once Run has returned.
//
// Like every request to the loop it blocks until Run is looping: call it after Run started.
func (s *Supervisor) Summary() (Summary, bool) {
	var m Summary
	ok := s.call(func() { m = s.summarize() })
	return m, ok
}

// WaitLoaded waits until every load of a loader file in flight has finished and the auto jobs
// they define have been sent their start (their dependencies permitting), and returns the scan's
// summary ("3 loaders, 5 jobs" plus any loader errors). Called once Run has begun, it marks the
// end of god's start-up: the first scan of the directory is in flight before Run serves anyone.
//
// A failing loader does not hold it up: its failed load counts as finished (its retry comes
// later). An auto job is started, not necessarily ready, when WaitLoaded returns.
func (s *Supervisor) WaitLoaded(ctx context.Context) (string, error) {
	reply := make(chan string, 1)
	if !s.call(func() {
		s.scanWaiters = append(s.scanWaiters, reply)
		s.answerScanWaiters() // answers at once when nothing is loading
	}) {
		return "", errEnded
	}
	return s.waitScan(ctx, reply)
}

// RescanAndWait re-reads the loader directory, as SIGHUP and `god rescan` do, and waits until
// the loads it caused have finished. It exists for callers that must know when a rescan is
// over: god tells systemd RELOADING=1 before and READY=1 after.
func (s *Supervisor) RescanAndWait(ctx context.Context) (string, error) {
	reply := make(chan string, 1)
	if !s.call(func() { s.rescan(reply) }) {
		return "", errEnded
	}
	return s.waitScan(ctx, reply)
}

// waitScan waits for a scan waiter's answer, for ctx, or for the end of Run.
func (s *Supervisor) waitScan(ctx context.Context, reply <-chan string) (string, error) {
	select {
	case msg := <-reply:
		return msg, nil
	case <-ctx.Done():
		return "", ctx.Err()
	case <-s.doneCh:
		return "", errEnded
	}
}

// WatchSummary calls f with the summary at once and again whenever a job changes state, at most
// once per every (changes in between are folded into the next call), and only when the summary
// differs from the last one given. It returns when ctx is done or Run has returned; f runs in
// the caller's goroutine and must not block for long.
func (s *Supervisor) WatchSummary(ctx context.Context, every time.Duration, f func(Summary)) {
	if every <= 0 {
		every = 500 * time.Millisecond
	}
	var last Summary
	first := true
	emit := func() bool {
		m, ok := s.Summary()
		if !ok {
			return false
		}
		if first || m != last {
			first, last = false, m
			f(m)
		}
		return true
	}
	for {
		events, cancel := s.subscribe()
		// Subscribe before the first summary so no change falls between the two.
		if !emit() {
			cancel()
			return
		}
		ended := s.foldEvents(ctx, events, every, emit)
		cancel()
		if ended {
			return
		}
		// The subscription was cut off (this watcher fell 4096 events behind): take a new one.
	}
}

// foldEvents calls emit after job events, no more often than every; true when the watch must
// end (ctx done, Run returned), false when events was closed under it.
func (s *Supervisor) foldEvents(ctx context.Context, events <-chan jobEvent, every time.Duration, emit func() bool) bool {
	tick := time.NewTimer(every)
	defer tick.Stop()
	pending, waiting := false, true // waiting: the timer runs since the last emit
	for {
		select {
		case <-ctx.Done():
			return true
		case <-s.doneCh:
			return true
		case _, ok := <-events:
			if !ok {
				return false
			}
			if !waiting {
				if !emit() {
					return true
				}
				tick.Reset(every)
				waiting = true
				continue
			}
			pending = true
		case <-tick.C:
			waiting = false
			if pending {
				pending = false
				if !emit() {
					return true
				}
				tick.Reset(every)
				waiting = true
			}
		}
	}
}
