package supervisor

import (
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

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
func readRuntimeMetrics() control.RuntimeMetrics {
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
	out := control.RuntimeMetrics{
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
