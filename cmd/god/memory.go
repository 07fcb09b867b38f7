package main

import (
	"os"
	"runtime"
	"runtime/debug"
)

// god is small and lives long: with 100 jobs its live heap is about 1.5 MiB, and Go's defaults
// would let the heap grow to at least 4 MiB before collecting, and keep that memory. The daemon
// collects at 50 % growth instead of 100 % (GOGC, when set, still wins): a collection of so
// small a heap costs well under a millisecond, and god allocates little while it runs.
const daemonGCPercent = 50

// The heap profiler samples an allocation every 512 KiB by default and keeps a table of the
// stacks it saw; only --memprofile needs it. Set before main, so the daemon's allocations are
// never sampled unless asked for.
func init() { runtime.MemProfileRate = 0 }

// tuneMemory applies the daemon's memory settings; memProfile re-enables heap sampling.
func tuneMemory(memProfile bool) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(daemonGCPercent)
	}
	if memProfile {
		runtime.MemProfileRate = 512 << 10
	}
}
