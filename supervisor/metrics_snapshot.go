package supervisor

import "sort"

// MetricsSnapshot is what god counted and where its jobs stand at one moment, for a metrics
// exporter (god --metrics) to read at scrape time: job states come from the supervisor's own
// snapshots, so nothing is updated on a state change just in case someone scrapes.
type MetricsSnapshot struct {
	// Live is false once Run has returned: Jobs then carry counters only (no State) and
	// Loaders is empty.
	Live bool
	// Jobs is every job god knows, and every job it counted something for since it started
	// (a removed job keeps its counters, with State ""), sorted by name.
	Jobs []JobMetrics
	// Loaders is every loader file god knows, and every one that ever failed, sorted by path.
	Loaders []LoaderMetrics
	// CheckDuration is how long loaders took to answer check, over all jobs.
	CheckDuration Histogram
	// ReloadDuration is how long reloads took from request to outcome, over all jobs.
	ReloadDuration Histogram
}

// JobMetrics is one job's state and counters.
type JobMetrics struct {
	Name  string
	State State // "" when the job is no longer defined
	// Restarts counts automatic restarts by the restart policy (`god restart` is not one), as
	// the RESTARTS column of god status does.
	Restarts uint64
	// Exits counts ended processes by exit code; a process killed by signal N counts as 128+N.
	Exits map[int]uint64
	// Reloads counts reloads that ended, ReloadFailures those of them that were rolled back.
	Reloads, ReloadFailures uint64
	// LogLines counts output lines by stream ("stdout", "stderr").
	LogLines map[string]uint64
}

// LoaderMetrics is one loader file's health.
type LoaderMetrics struct {
	Path string
	// Failing is true while the file's last load failed (it is retried with back-off); false
	// for a file god no longer knows.
	Failing bool
	// Failures counts loader instances god killed or could not start: a broken protocol, a
	// late answer, a crash, a failed handshake.
	Failures uint64
}

// Histogram is a distribution of durations in seconds, in Prometheus's form.
type Histogram struct {
	Count   uint64
	Sum     float64            // seconds
	Buckets map[float64]uint64 // upper bound (seconds) -> observations at or below it, cumulative
}

// Metrics returns god's counters and its jobs' current states. It asks the supervisor's loop for
// the states (like god status), so it is cheap but not free: call it per scrape, not per event.
func (s *Supervisor) Metrics() MetricsSnapshot {
	states := map[string]State{}
	failing := map[string]bool{}
	live := s.call(func() {
		for name, h := range s.jobs {
			states[name] = h.state
		}
		for path, lf := range s.loaders {
			failing[path] = lf.err != ""
		}
	})
	out := MetricsSnapshot{
		Live:           live,
		CheckDuration:  s.metrics.checks.snapshot(),
		ReloadDuration: s.metrics.reloads.snapshot(),
	}

	m := s.metrics
	m.mu.Lock()
	jobs := make(map[string]*JobMetrics, len(m.jobs)+len(states))
	for name, c := range m.jobs {
		jm := &JobMetrics{
			Name:           name,
			Restarts:       c.restarts.Load(),
			Reloads:        c.reloads.Load(),
			ReloadFailures: c.reloadFails.Load(),
			Exits:          make(map[int]uint64, len(c.exits)),
			LogLines:       make(map[string]uint64, len(c.lines)),
		}
		for code, n := range c.exits {
			jm.Exits[code] = n
		}
		for stream, n := range c.lines {
			jm.LogLines[stream] = n.Load()
		}
		jobs[name] = jm
	}
	loaders := make(map[string]*LoaderMetrics, len(m.loaders)+len(failing))
	for path, n := range m.loaders {
		loaders[path] = &LoaderMetrics{Path: path, Failures: n.Load()}
	}
	m.mu.Unlock()

	for name, st := range states {
		jm := jobs[name]
		if jm == nil {
			jm = &JobMetrics{Name: name, Exits: map[int]uint64{}, LogLines: map[string]uint64{}}
			jobs[name] = jm
		}
		jm.State = st
	}
	for path, f := range failing {
		lm := loaders[path]
		if lm == nil {
			lm = &LoaderMetrics{Path: path}
			loaders[path] = lm
		}
		lm.Failing = f
	}
	for _, jm := range jobs {
		out.Jobs = append(out.Jobs, *jm)
	}
	sort.Slice(out.Jobs, func(i, k int) bool { return out.Jobs[i].Name < out.Jobs[k].Name })
	for _, lm := range loaders {
		out.Loaders = append(out.Loaders, *lm)
	}
	sort.Slice(out.Loaders, func(i, k int) bool { return out.Loaders[i].Path < out.Loaders[k].Path })
	return out
}

// JobStates lists every state a job can be in, in the order of their lives, for exporters that
// report one series per state.
var JobStates = []State{
	StateWait, StateStart, StateRun, StateDegrade, StateExit, StateBackoff,
	StateStop, StateStopped, StateDone, StateFailed,
}
