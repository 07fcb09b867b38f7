package control

import (
	"encoding/json"
	"fmt"
	"sort"
)

// The wire format of the control command "metrics": god's counters and its jobs' states at one
// moment, read by the metrics exporter (cmd/god-metrics), which imports only this package.

// MetricsSnapshot is what god counted and where its jobs stand at one moment, for the metrics
// exporter (cmd/god-metrics, started by god --metrics) to read at scrape time: job states come from
// the supervisor's own snapshots, so nothing is updated on a state change just in case someone
// scrapes. It travels as JSON in the result of the control command "metrics" (docs/control.md);
// the JSON names below are that format.
type MetricsSnapshot struct {
	// Live is false once Run has returned: Jobs then carry counters only (no State) and
	// Loaders is empty.
	Live bool `json:"live"`
	// Jobs is every job god knows, and every job it counted something for since it started
	// (a removed job keeps its counters, with State ""), sorted by name.
	Jobs []JobMetrics `json:"jobs"`
	// Loaders is every loader file god knows, and every one that ever failed, sorted by path.
	Loaders []LoaderMetrics `json:"loaders"`
	// CheckDuration is how long loaders took to answer check, over all jobs.
	CheckDuration Histogram `json:"check_duration"`
	// ReloadDuration is how long reloads took from request to outcome, over all jobs.
	ReloadDuration Histogram `json:"reload_duration"`
	// Runtime is god's own Go runtime at the same moment: the exporter is another process, so
	// its own runtime would say nothing about god's.
	Runtime RuntimeMetrics `json:"runtime"`
}

// JobMetrics is one job's state and counters.
type JobMetrics struct {
	Name  string `json:"name"`
	State string `json:"state,omitempty"` // "" when the job is no longer defined
	// Restarts counts automatic restarts by the restart policy (`god restart` is not one), as
	// the RESTARTS column of god status does.
	Restarts uint64 `json:"restarts"`
	// Exits counts ended processes by exit code; a process killed by signal N counts as 128+N.
	// In JSON the codes are the object's keys, as decimal strings.
	Exits map[int]uint64 `json:"exits"`
	// Reloads counts reloads that ended, ReloadFailures those of them that were rolled back.
	Reloads        uint64 `json:"reloads"`
	ReloadFailures uint64 `json:"reload_failures"`
	// LogLines counts output lines by stream ("stdout", "stderr").
	LogLines map[string]uint64 `json:"log_lines"`
}

// LoaderMetrics is one loader file's health.
type LoaderMetrics struct {
	Path string `json:"path"`
	// Failing is true while the file's last load failed (it is retried with back-off); false
	// for a file god no longer knows.
	Failing bool `json:"failing"`
	// Failures counts loader instances god killed or could not start: a broken protocol, a
	// late answer, a crash, a failed handshake.
	Failures uint64 `json:"failures"`
}

// Histogram is a distribution of durations in seconds, in Prometheus's form.
type Histogram struct {
	Count   uint64
	Sum     float64            // seconds
	Buckets map[float64]uint64 // upper bound (seconds) -> observations at or below it, cumulative
}

// histogramJSON is Histogram's JSON form. encoding/json cannot key an object by a float, so
// the buckets are a list ordered by upper bound: {"le":0.005,"count":3}.
type histogramJSON struct {
	Count   uint64       `json:"count"`
	Sum     float64      `json:"sum"`
	Buckets []bucketJSON `json:"buckets"`
}

type bucketJSON struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

// MarshalJSON writes the buckets in order of their upper bounds. A bound or sum that JSON cannot
// carry (NaN, an infinity) is an error; god's own histograms have neither.
func (h Histogram) MarshalJSON() ([]byte, error) {
	out := histogramJSON{Count: h.Count, Sum: h.Sum, Buckets: make([]bucketJSON, 0, len(h.Buckets))}
	for le, n := range h.Buckets {
		out.Buckets = append(out.Buckets, bucketJSON{LE: le, Count: n})
	}
	sort.Slice(out.Buckets, func(i, k int) bool { return out.Buckets[i].LE < out.Buckets[k].LE })
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON wrote; a bound given twice is an error, since the counts
// of a cumulative histogram cannot be merged.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var in histogramJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := Histogram{Count: in.Count, Sum: in.Sum, Buckets: make(map[float64]uint64, len(in.Buckets))}
	for _, bk := range in.Buckets {
		if _, dup := out.Buckets[bk.LE]; dup {
			return fmt.Errorf("histogram: bucket le=%v given twice", bk.LE)
		}
		out.Buckets[bk.LE] = bk.Count
	}
	*h = out
	return nil
}

// RuntimeMetrics are a few figures of god's Go runtime, sent with every MetricsSnapshot. The
// metrics exporter runs in a process of its own, so these are what it reports as go_*: its own
// runtime would describe the exporter, not god.
type RuntimeMetrics struct {
	GoVersion  string `json:"go_version"` // runtime.Version()
	Goroutines uint64 `json:"goroutines"` // goroutines that exist now
	Threads    uint64 `json:"threads"`    // OS threads the Go runtime owns now
	// HeapAllocBytes is memory taken by heap objects, live or not yet collected;
	// HeapInuseBytes adds the unused room in spans that hold objects (MemStats.HeapInuse).
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	HeapInuseBytes uint64 `json:"heap_inuse_bytes"`
	// SysBytes is all the memory the runtime has mapped from the OS (MemStats.Sys).
	SysBytes uint64 `json:"sys_bytes"`
	// GCCycles counts completed garbage collections, GCPauseSeconds their stop-the-world pauses
	// in total, since god's image started (an upgraded god starts again from zero, as any
	// restarted process does).
	GCCycles       uint64  `json:"gc_cycles"`
	GCPauseSeconds float64 `json:"gc_pause_seconds"`
	// GCPauseQuantiles are the minimum, 25th, 50th and 75th percentile and maximum of the last
	// (up to 256) pauses, in seconds; empty before the first collection.
	GCPauseQuantiles []float64 `json:"gc_pause_quantiles,omitempty"`
}

// JobStates lists every state a job can be in, in the order of their lives, for exporters that
// report one series per state.
var JobStates = []string{"wait", "listen", "start", "run", "degrade", "exit", "backoff", "stop", "stopped", "done", "failed"}
