package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

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
	// trimWaitMax bounds the wait for the starts to settle.
	trimWaitMax = 3 * time.Minute
)

// waitStartsSettled returns true once starts() has not changed for quiet (looked at every
// fifth of the shorter of quiet and max), or once max has passed; false when ctx ends first.
func waitStartsSettled(ctx context.Context, starts func() uint64, quiet, max time.Duration) bool {
	tick := time.NewTicker(min(quiet, max) / 5)
	defer tick.Stop()
	deadline := time.Now().Add(max)
	last, since := starts(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return false
		case now := <-tick.C:
			if n := starts(); n != last {
				last, since = n, now
			}
			if now.Sub(since) >= quiet || now.After(deadline) {
				return true
			}
		}
	}
}

// trimAfterStart runs the trim described above, unless ctx ends first. "Settled" is trimDelay
// without a process started: with thousands of jobs the starts go on long after the loaders
// were read (10 000 jobs: about a minute on 2 cores), and a trim in the middle of them left what
// the rest of the burst grew. A god whose starts never stop (a job in a crash loop) trims
// trimWaitMax after its loaders were read.
func trimAfterStart(ctx context.Context, sup *supervisor.Supervisor) {
	if _, err := sup.WaitLoaded(ctx); err != nil {
		return
	}
	if !waitStartsSettled(ctx, sup.Starts, trimDelay, trimWaitMax) {
		return
	}
	t := time.NewTimer(0)
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
	dropStartupText()
}

// The pages of god's binary that start-up ran (flags, the loaders' first read, every job's
// first start, the control server's first requests) stay mapped long after, and count in god's
// resident set: 5.3 of 11.9 MiB with 100 jobs. Once god has settled, it drops its binary's
// read-only, private mappings (code and constants: never written, so nothing is lost, unlike a
// writable mapping's pages). What god runs from then on faults back in from the page cache, a
// minor fault per page; what only start-up ran no longer counts as god's.
func dropStartupText() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(maps), "\n") {
		// START-END PERMS OFFSET DEV INODE PATH; PATH may hold spaces (" (deleted)" too).
		f := strings.SplitN(line, " ", 6)
		if len(f) < 6 || strings.TrimLeft(f[5], " ") != exe || len(f[1]) != 4 || f[1][1] == 'w' || f[1][3] != 'p' {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if !ok || err1 != nil || err2 != nil || end <= start {
			continue
		}
		unix.Syscall(unix.SYS_MADVISE, uintptr(start), uintptr(end-start), unix.MADV_DONTNEED)
	}
}
