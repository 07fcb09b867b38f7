package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// BenchmarkScale measures how god's costs grow with the number of jobs: 100, 1000, 5000 and
// 10 000 trivial jobs (`sleep`, auto, no check) from one Go loader that answers at once
// (testdata/manyjobs), so that what is measured is god. At each size:
//
//   - start: god's exec to every job in run (as `god status --json` polls see it) and to the
//     last "started" record of god's log, and god's CPU time until then;
//   - status: `god status --json` (every job) and `god status JOB` (one), medians, each the
//     whole CLI run (its own start-up is about 2 ms);
//   - memory: god's RSS and PSS once every job runs and god has settled, and per job;
//   - idle: god's CPU over a quiet window with every job running and no checks;
//   - stop: SIGTERM to god's exit with every job stopped.
//
// Beside it, when runit and s6 are found (scripts/bench unpacks Debian's), runsvdir and
// s6-svscan start the same number of `sleep` services: their start, memory (PSS of the
// supervisor tree: runsvdir and a runsv per service, s6-svscan and an s6-supervise per service)
// and stop. Targets at 10 000 jobs (printed, not asserted): all running within 5 s, status --json
// under 200 ms and status JOB under 20 ms, RSS under 100 MiB, idle CPU 0, stop under 2 s.
//
// The jobs have stderr ["stdout"] (testdata/manyjobs with MANYJOBS_STDERR=stdout): one output
// stream each, as the runit and s6 services have, so one pipe each in god.
//
// WATCHGOD_SCALE=N,N,... picks the sizes. A size needs about one fd a job in god (the job's
// output pipe): where the hard open-files limit is lower, the jobs that do not fit wait for fds
// (god says so once) and the size is reported as not reached.
func BenchmarkScale(b *testing.B) {
	for _, n := range scaleSizes(b) {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var f figures
			asTest(b, func(t testing.TB) { measureScale(t, n, &f) })
			f.report(b)
		})
	}
}

// scaleSizes reads WATCHGOD_SCALE (default 100,1000,5000,10000).
func scaleSizes(tb testing.TB) []int {
	spec := os.Getenv("WATCHGOD_SCALE")
	if spec == "" {
		spec = "100,1000,5000,10000"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			tb.Fatalf("WATCHGOD_SCALE=%q: %q is not a job count", spec, f)
		}
		out = append(out, n)
	}
	return out
}

// writeManyJobs puts the loader of n trivial jobs (s00001..) into g's directory; stderr, when
// not "", is their stderr property (MANYJOBS_STDERR): "stdout" merges it into stdout's pipe.
func writeManyJobs(t testing.TB, g *god, n int, stderr string) {
	t.Helper()
	env := ""
	if stderr != "" {
		env = "MANYJOBS_STDERR=" + sq(stderr) + " "
	}
	writeExecutable(t, g.dir, "many", []byte(fmt.Sprintf("#!/bin/sh\n%sexec %s \"$1\" %d\n", env, manyjobsBin, n)))
}

// manyJobsName is the name of job i (1-based) of testdata/manyjobs.
func manyJobsName(i int) string { return fmt.Sprintf("s%05d", i) }

func measureScale(t testing.TB, n int, f *figures) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < uint64(n+200) {
		f.notef("%d jobs: not reached here: they need about %d fds in god and the hard open-files limit is %d "+
			"(god raises it only with CAP_SYS_RESOURCE)", n, n+200, lim.Max)
		return
	}
	g := newGod(t)
	// One output each, stderr into stdout's pipe: as the runit and s6 services below have (and
	// one fd a job in god).
	writeManyJobs(t, g, n, "stdout")
	t0 := time.Now()
	g.start()
	polls := 0
	eventually(t, 60*time.Second+time.Duration(n)*10*time.Millisecond, fmt.Sprintf("%d jobs in run", n), func() bool {
		polls++
		return countState(g.status(), "run") == n
	})
	allRun := time.Since(t0)
	godPid := g.cmd.Process.Pid
	startCPU, _ := readProc(godPid)
	var lastStart time.Time
	starts := 0
	for _, r := range g.logs(0, func(r record) bool { return r.Msg == "started" && r.str("job") != "" }) {
		starts++
		if r.Time.After(lastStart) {
			lastStart = r.Time
		}
	}
	if starts != n {
		g.fatalf("%d started records, want %d", starts, n)
	}
	if fails := g.logs(0, func(r record) bool { return r.Level == "ERROR" }); len(fails) > 0 {
		g.fatalf("god logged %d errors while %d jobs started, the first: %s %v", len(fails), n, fails[0].Msg, fails[0].Attrs)
	}

	var all, one []time.Duration
	for range 5 {
		t1 := time.Now()
		g.mustCLI("status", "--json")
		all = append(all, time.Since(t1))
	}
	for i := range 20 {
		t1 := time.Now()
		g.mustCLI("status", manyJobsName(1+i*(n-1)/19))
		one = append(one, time.Since(t1))
	}
	// god trims its memory about 7 s after its loaders were read (cmd/god/memory.go: four full
	// collections), and its loader instances exit 10 s after their last request (--loader-idle):
	// the idle window and the memory reading come after both. Then god runs undisturbed while
	// the benchmark waits.
	time.Sleep(time.Until(t0.Add(10 * time.Second)))
	if !testutil.Poll(60*time.Second, func() bool {
		for _, pid := range childrenByParent()[godPid] {
			if isLoader(pid) {
				return false
			}
		}
		return true
	}) {
		f.notef("(a loader instance was still running when the idle window began)")
	}
	idle0, _ := readProc(godPid)
	const window = 10 * time.Second
	time.Sleep(window)
	idle1, _ := readProc(godPid)
	mem := readMem(godPid)

	t2 := time.Now()
	g.signal(syscall.SIGTERM)
	if code := g.wait(60*time.Second + time.Duration(n)*10*time.Millisecond); code != 0 {
		g.fatalf("god exited %d after SIGTERM", code)
	}
	stop := time.Since(t2)

	f.metric("start-to-all-run-ms", inMS(allRun))
	f.metric("start-to-last-started-ms", inMS(lastStart.Sub(t0)))
	f.metric("start-god-cpu-ms", inMS(startCPU.cpu))
	f.notef("%d jobs: start %s to all in run (%d polls of status --json), %s to the last \"started\" record; god's CPU %s (target at 10 000: all run < 5 s)",
		n, allRun.Round(time.Millisecond), polls, lastStart.Sub(t0).Round(time.Millisecond), startCPU.cpu)
	sa, so := statsOf(all), statsOf(one)
	f.metric("status-json-p50-ms", inMS(sa.p50))
	f.metric("status-job-p50-ms", inMS(so.p50))
	f.notef("status --json (all jobs): %s; status JOB: %s (targets at 10 000: < 200 ms, < 20 ms)", sa, so)
	f.metric("god-rss-MiB", float64(mem.rssKB)/1024)
	f.metric("god-pss-MiB", mem.pssMiB())
	f.metric("idle-cpu-ms", inMS(idle1.cpu-idle0.cpu))
	f.notef("god: RSS %.1f MiB, PSS %.1f MiB, %.1f KiB a job (target at 10 000: < 100 MiB); CPU over %s idle: %s (target 0)",
		float64(mem.rssKB)/1024, mem.pssMiB(), float64(mem.rssKB)/float64(n), window, idle1.cpu-idle0.cpu)
	f.metric("sigterm-to-exit-ms", inMS(stop))
	f.notef("SIGTERM to god's exit with all %d jobs stopped: %s (target at 10 000: < 2 s)", n, stop.Round(time.Millisecond))

	trees := []struct {
		name, stop string
		max        int // services the tree supervises at most (0: no bound)
		run        func(testing.TB, int) (treeRun, error)
	}{
		{"runit", "SIGHUP", runitMaxServices, runRunit},
		{"s6", "s6-svscanctl -t", 0, runS6},
	}
	for _, tr := range trees {
		if tr.max > 0 && n > tr.max {
			f.notef("%s: not measured: it supervises at most %d services (given 5000, it ran %d and left the rest)", tr.name, tr.max, tr.max)
			continue
		}
		r, err := tr.run(t, n)
		if err != nil {
			f.notef("%s: not measured (%v)", tr.name, err)
			continue
		}
		f.metric(tr.name+"-start-ms", inMS(r.start))
		f.metric(tr.name+"-pss-MiB", r.mem.pssMiB())
		f.metric(tr.name+"-stop-ms", inMS(r.stop))
		f.notef("%s: start %s (exec to all running, /proc polled), PSS %.1f MiB (%d processes besides the services; RSS %.1f MiB), stop %s (%s)",
			tr.name, r.start.Round(time.Millisecond), r.mem.pssMiB(), r.procs, r.mem.rssMiB(), r.stop.Round(time.Millisecond), tr.stop)
	}
}

// metric records a figure without a line of its own (the testing package shows a benchmark's
// first 9 lines of log: the scale benchmark says several figures a line).
func (f *figures) metric(unit string, value float64) {
	f.metrics = append(f.metrics, metric{unit, value})
}

// runitMaxServices is runsvdir's own bound on the services of one directory (measured here:
// given 5000, it ran 1000 and never more).
const runitMaxServices = 1000
