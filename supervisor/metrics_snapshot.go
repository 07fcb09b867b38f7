package supervisor

import (
	"sort"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/supervisor/control"
)

// Metrics returns god's counters and its jobs' current states. It asks the supervisor's loop for
// the states (like god status), so it is cheap but not free: call it per scrape, not per event.
func (s *Supervisor) Metrics() control.MetricsSnapshot {
	states := map[string]jobstate.State{}
	failing := map[string]bool{}
	live := s.call(func() {
		for name, h := range s.jobs {
			states[name] = h.state
		}
		for path, lf := range s.loaders {
			failing[path] = lf.err != ""
		}
	})
	out := control.MetricsSnapshot{
		Live:           live,
		CheckDuration:  s.metrics.checks.snapshot(),
		ReloadDuration: s.metrics.reloads.snapshot(),
		Runtime:        readRuntimeMetrics(),
	}

	m := s.metrics
	m.mu.Lock()
	jobs := make(map[string]*control.JobMetrics, len(m.jobs)+len(states))
	for name, c := range m.jobs {
		jm := &control.JobMetrics{
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
	loaders := make(map[string]*control.LoaderMetrics, len(m.loaders)+len(failing))
	for path, n := range m.loaders {
		loaders[path] = &control.LoaderMetrics{Path: path, Failures: n.Load()}
	}
	m.mu.Unlock()

	for name, st := range states {
		jm := jobs[name]
		if jm == nil {
			jm = &control.JobMetrics{Name: name, Exits: map[int]uint64{}, LogLines: map[string]uint64{}}
			jobs[name] = jm
		}
		jm.State = string(st)
	}
	for path, f := range failing {
		lm := loaders[path]
		if lm == nil {
			lm = &control.LoaderMetrics{Path: path}
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
