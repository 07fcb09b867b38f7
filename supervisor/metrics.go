package supervisor

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// metrics counts what god does, for `god --metrics` (see Supervisor.Metrics). It is written from
// job goroutines, log relays and loader pools at once, so every count is an atomic; the maps that
// find a job's or a loader's counters take a lock, but the hot path (one output line) never does:
// a relay looks up its counter once, when its process starts.
//
// Counters are never dropped, not even when a job is removed: a job that comes back under the same
// name counts on, and Prometheus sees no counter go backwards while god runs.
type metrics struct {
	checks  *histogram // loader check round trips, every job
	reloads *histogram // reload durations, from `god reload` to its outcome, every job

	mu      sync.Mutex
	jobs    map[string]*jobCounters
	loaders map[string]*atomic.Uint64 // loader path -> failures
}

// jobCounters are one job's counts.
type jobCounters struct {
	restarts    atomic.Uint64
	reloads     atomic.Uint64 // every reload that ended, failed ones included
	reloadFails atomic.Uint64
	exits       map[int]uint64            // exit code (128+N for signal N) -> count; under metrics.mu
	lines       map[string]*atomic.Uint64 // stream -> output lines; the map under metrics.mu
}

// Buckets in seconds. A check is one loader round trip (usually milliseconds, up to the check
// timeout); a reload includes starting a whole new generation and draining the old one.
var (
	checkBuckets  = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	reloadBuckets = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}
)

func newMetrics() *metrics {
	return &metrics{
		checks:  newHistogram(checkBuckets),
		reloads: newHistogram(reloadBuckets),
		jobs:    make(map[string]*jobCounters),
		loaders: make(map[string]*atomic.Uint64),
	}
}

// job returns the counters of the named job, creating them on first use.
func (m *metrics) job(name string) *jobCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.jobLocked(name)
}

func (m *metrics) jobLocked(name string) *jobCounters {
	c := m.jobs[name]
	if c == nil {
		c = &jobCounters{exits: make(map[int]uint64), lines: make(map[string]*atomic.Uint64)}
		m.jobs[name] = c
	}
	return c
}

// checkLatency records how long one check took to answer (errors and timeouts included).
func (m *metrics) checkLatency(d time.Duration) { m.checks.observe(d) }

// reloaded records the duration of a reload that ended, whichever job it was for.
func (m *metrics) reloaded(d time.Duration, ok bool) { m.reloads.observe(d) }

// jobReloaded records a reload of job that ended: ok, or rolled back (failed).
func (m *metrics) jobReloaded(job string, d time.Duration, ok bool) {
	m.reloaded(d, ok)
	c := m.job(job)
	c.reloads.Add(1)
	if !ok {
		c.reloadFails.Add(1)
	}
}

// restarted counts one automatic restart of job (the restart policy, not `god restart`), the
// same events as the RESTARTS column of `god status`.
func (m *metrics) restarted(job string) { m.job(job).restarts.Add(1) }

// exited counts one process of job that ended with code (godv1's onExit form: 128+N for signal N).
func (m *metrics) exited(job string, code int) {
	m.mu.Lock()
	m.jobLocked(job).exits[code]++
	m.mu.Unlock()
}

// loaderFailed counts one failure of a loader instance (it could not start, broke the protocol,
// answered late or died) that made god kill it and back off.
func (m *metrics) loaderFailed(path string) {
	m.mu.Lock()
	c := m.loaders[path]
	if c == nil {
		c = new(atomic.Uint64)
		m.loaders[path] = c
	}
	m.mu.Unlock()
	c.Add(1)
}

// countLines wraps add so that every line it gets is counted for job and stream. The counter is
// looked up here, once per relayed pipe, so a batch of lines costs one atomic add.
func (m *metrics) countLines(job, stream string, add func([]joblog.Line)) func([]joblog.Line) {
	m.mu.Lock()
	jc := m.jobLocked(job)
	c := jc.lines[stream]
	if c == nil {
		c = new(atomic.Uint64)
		jc.lines[stream] = c
	}
	m.mu.Unlock()
	return func(ls []joblog.Line) {
		c.Add(uint64(len(ls)))
		add(ls)
	}
}

// histogram counts observations into fixed buckets without a lock. A reader may see an
// observation in its bucket before it is in the sum; Prometheus tolerates that skew (its own
// client has the same between scrapes).
type histogram struct {
	bounds []float64       // upper bounds in seconds, ascending
	counts []atomic.Uint64 // per bucket, not cumulative; the last one is +Inf
	nanos  atomic.Int64    // sum of observations
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(h.bounds) && s > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.nanos.Add(int64(d))
}

// snapshot returns the histogram in Prometheus's form: cumulative counts per upper bound.
func (h *histogram) snapshot() control.Histogram {
	out := control.Histogram{Buckets: make(map[float64]uint64, len(h.bounds))}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if i < len(h.bounds) {
			out.Buckets[h.bounds[i]] = cum
		}
	}
	out.Count = cum
	out.Sum = time.Duration(h.nanos.Load()).Seconds()
	return out
}
