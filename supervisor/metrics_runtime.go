package supervisor

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"
)

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

// runtimeSamples are the runtime/metrics names readRuntimeMetrics reads, in one call.
var runtimeSamples = []string{
	"/sched/goroutines:goroutines",
	"/sched/threads/total:threads",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/total:bytes",
}

// readRuntimeMetrics reads god's runtime figures without stopping the world (runtime/metrics,
// and debug.ReadGCStats for the pauses, which only takes a lock), so a scrape costs god little.
// A name this Go version does not know reads as 0.
func readRuntimeMetrics() RuntimeMetrics {
	samples := make([]rtmetrics.Sample, len(runtimeSamples))
	for i, name := range runtimeSamples {
		samples[i].Name = name
	}
	rtmetrics.Read(samples)
	u := func(i int) uint64 {
		if samples[i].Value.Kind() != rtmetrics.KindUint64 {
			return 0
		}
		return samples[i].Value.Uint64()
	}
	out := RuntimeMetrics{
		GoVersion:      runtime.Version(),
		Goroutines:     u(0),
		Threads:        u(1),
		HeapAllocBytes: u(2),
		HeapInuseBytes: u(2) + u(3),
		SysBytes:       u(4),
	}
	gc := debug.GCStats{PauseQuantiles: make([]time.Duration, 5)}
	debug.ReadGCStats(&gc)
	out.GCCycles = uint64(gc.NumGC)
	out.GCPauseSeconds = gc.PauseTotal.Seconds()
	if gc.NumGC > 0 {
		for _, q := range gc.PauseQuantiles {
			out.GCPauseQuantiles = append(out.GCPauseQuantiles, q.Seconds())
		}
	}
	return out
}
