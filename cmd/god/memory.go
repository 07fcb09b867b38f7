package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/emielm/watchgod/supervisor"
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

// Start-up is god's one burst: every loader read, every job forked and logged at once. What it
// grew (heap spans, and goroutine stacks, which a collection halves at most once each) stays
// resident unless collections run, and a quiet god collects rarely. So once the first scan is
// over and god has settled, it collects trimRounds times and returns the free memory to the
// system: with 100 jobs that is 1.3 MiB of anonymous memory, every time god starts or upgrades.
const (
	trimDelay  = 5 * time.Second
	trimRounds = 4
	trimGap    = 500 * time.Millisecond
)

// trimAfterStart runs the trim described above, unless ctx ends first.
func trimAfterStart(ctx context.Context, sup *supervisor.Supervisor) {
	if _, err := sup.WaitLoaded(ctx); err != nil {
		return
	}
	t := time.NewTimer(trimDelay)
	defer t.Stop()
	for i := 0; i < trimRounds; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		debug.FreeOSMemory()
		t.Reset(trimGap)
	}
}
