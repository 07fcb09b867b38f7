package integration

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkFootprint100Jobs measures what god costs while it supervises 100 idle jobs (`sleep`),
// each checked every 1000 ms by a bash loader: god's resident memory, its loaders' memory (apart,
// since they are the user's programs), and god's CPU time over a 20 s window, as CPU seconds per
// minute and as a share of one core.
//
// For comparison (resident memory of other supervisors with a handful of services, as their
// users report it; not measured here, not asserted): runit 10 MiB, s6 13 MiB, supervisord 30 MiB,
// pm2 74 MiB.
func BenchmarkFootprint100Jobs(b *testing.B) {
	const (
		jobs   = 100
		window = 20 * time.Second
	)
	var f figures
	asTest(b, func(t *testing.T) {
		g := newGod(t)
		writeExecutable(t, g.dir, "many", []byte(manyJobsLoader(jobs, "1000")))
		g.start()
		eventually(t, 60*time.Second, fmt.Sprintf("%d jobs running with check ok", jobs), func() bool {
			n := 0
			for _, j := range g.status() {
				if j.State == "run" && j.Check == "ok" {
					n++
				}
			}
			return n == jobs
		})
		godPid := g.cmd.Process.Pid
		loaders := loadersOf(godPid)
		god0, _ := readProc(godPid)
		ld0 := map[int]procStat{}
		for _, pid := range loaders {
			if st, ok := readProc(pid); ok {
				ld0[pid] = st
			}
		}
		t0 := time.Now()
		// The measurement window: god runs undisturbed (no status polls) while the test waits.
		time.Sleep(window)
		elapsed := time.Since(t0)
		god1, ok := readProc(godPid)
		if !ok {
			g.fatalf("god (pid %d) is gone after the window", godPid)
		}
		var ldRSS int
		var ldCPU time.Duration
		loaders1 := loadersOf(godPid)
		for _, pid := range loaders1 {
			st, ok := readProc(pid)
			if !ok {
				continue
			}
			ldRSS += st.rssKB
			ldCPU += st.cpu - ld0[pid].cpu // a loader started in the window counts from 0
		}
		if n := countState(g.status(), "run"); n != jobs {
			g.fatalf("%d of %d jobs in run after the window", n, jobs)
		}

		cpu := god1.cpu - god0.cpu
		f.add("god-rss-MiB", float64(god1.rssKB)/1024, fmt.Sprintf("VmRSS of god with %d jobs", jobs))
		f.add("loaders-rss-MiB", float64(ldRSS)/1024, fmt.Sprintf("sum of VmRSS of %d bash loader processes", len(loaders1)))
		f.add("god-cpu-s/min", cpu.Seconds()/elapsed.Minutes(), fmt.Sprintf("god utime+stime %s over a %s window (10 ms ticks)", cpu, elapsed.Round(time.Millisecond)))
		f.add("god-cpu-%core", 100*cpu.Seconds()/elapsed.Seconds(), "of one core")
		f.add("loaders-cpu-%core", 100*ldCPU.Seconds()/elapsed.Seconds(), fmt.Sprintf("bash answering %d checks/s", jobs))
		f.notef("others, as reported (not measured here): runit 10 MiB, s6 13 MiB, supervisord 30 MiB, pm2 74 MiB")
	})
	f.report(b)
}
