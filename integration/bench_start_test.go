package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStart1000Jobs measures a cold start: the time from exec of god to 1000 trivial jobs
// (`sleep`, no check, one bash loader) all in state run, as `god status --json` polls see it and
// as god's log dates the last "started" record. Target: under 2 s (printed, not asserted). It
// also reports god's memory with 1000 jobs and the time SIGTERM takes to stop them all. With
// GOD_BENCH_PROFILE=DIR god writes DIR/start1000.cpu and DIR/start1000.heap for `go tool pprof`.
func BenchmarkStart1000Jobs(b *testing.B) {
	const jobs = 1000
	var f figures
	asTest(b, func(t testing.TB) {
		g := newGod(t)
		writeExecutable(t, g.dir, "many", []byte(manyJobsLoader(jobs, "")))
		var flags []string
		if dir := os.Getenv("GOD_BENCH_PROFILE"); dir != "" {
			// Profiles of god for pprof: CPU over the whole run, heap when SIGTERM arrives.
			flags = []string{"--cpuprofile", filepath.Join(dir, "start1000.cpu"), "--memprofile", filepath.Join(dir, "start1000.heap")}
		}
		t0 := time.Now()
		g.start(flags...)
		serving := time.Since(t0)
		polls := 0
		eventually(t, 60*time.Second, fmt.Sprintf("%d jobs in run", jobs), func() bool {
			polls++
			return countState(g.status(), "run") == jobs
		})
		allRun := time.Since(t0)
		starts := g.logs(0, func(r record) bool { return r.Msg == "started" && r.str("job") != "" })
		if len(starts) != jobs {
			g.fatalf("%d started records, want %d", len(starts), jobs)
		}
		lastStart := starts[0].Time
		for _, r := range starts {
			if r.Time.After(lastStart) {
				lastStart = r.Time
			}
		}
		godPid := g.cmd.Process.Pid
		st, _ := readProc(godPid)

		t1 := time.Now()
		g.signal(syscall.SIGTERM)
		if code := g.wait(60 * time.Second); code != 0 {
			g.fatalf("god exited %d after SIGTERM", code)
		}
		stopAll := time.Since(t1)

		f.add("start-to-all-run-ms", inMS(allRun), fmt.Sprintf("exec of god to status showing %d jobs in run (%d status polls; target < 2000)", jobs, polls))
		f.add("start-to-last-started-ms", inMS(lastStart.Sub(t0)), "exec of god to its last \"started\" record")
		f.add("start-to-serving-ms", inMS(serving), "exec of god to its \"god running\" record")
		f.add("god-rss-1000-MiB", float64(st.rssKB)/1024, fmt.Sprintf("VmRSS of god with %d jobs", jobs))
		f.add("sigterm-to-exit-ms", inMS(stopAll), fmt.Sprintf("SIGTERM to god's exit, every job stopped (%d × sleep)", jobs))
	})
	f.report(b)
}
