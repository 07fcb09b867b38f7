package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFootprint100Jobs measures what god costs while it supervises 100 idle jobs (`sleep`):
// memory as the proportional set size (Pss of /proc/PID/smaps_rollup: each shared page divided by
// the processes that map it, so a library shared by 101 processes is not counted 101 times), the
// way the brief's bar was measured, and as RSS split into anonymous and file pages, once god has
// settled (10 s after start); and god's CPU time over a 20 s window.
//
// Two set-ups: the jobs without checks (god alone: the idle loader instance exits after
// --loader-idle), and each job checked every 1000 ms by a bash loader (the loader instances that
// answer 100 checks a second count apart: they are the user's programs).
//
// When runit's runsvdir and runsv are found (in PATH, or in WATCHGOD_RUNIT_BIN, which
// scripts/bench fills from Debian's runit package), the same 100 jobs run under runsvdir and its
// 101 supervisor processes are measured the same way, on the same machine.
func BenchmarkFootprint100Jobs(b *testing.B) {
	const (
		jobs   = 100
		window = 20 * time.Second
		settle = 10 * time.Second
	)
	var f figures
	asTest(b, func(t testing.TB) {
		// God alone: no checks, so once every job runs nobody asks its loader anything.
		g := newGod(t)
		writeExecutable(t, g.dir, "many", []byte(manyJobsLoader(jobs, "")))
		g.start("--loader-idle", "1s")
		waitJobsRunning(t, g, jobs, false)
		godPid := g.cmd.Process.Pid
		eventually(t, 30*time.Second, "the idle loader instance gone", func() bool { return len(loadersOf(godPid)) == 0 })
		// Steady state: god trims its start-up memory about 7 s after its first scan
		// (cmd/god/memory.go); a supervisor is measured as it runs for days, not as it starts.
		time.Sleep(settle)
		m := readMem(godPid)
		f.add("god-pss-MiB", m.pssMiB(), fmt.Sprintf("god with %d jobs, no checks (RSS %.1f MiB: anon %.1f, file %.1f)",
			jobs, m.rssMiB(), float64(m.anonKB)/1024, float64(m.fileKB)/1024))
		g.signal(syscall.SIGTERM)
		g.wait(30 * time.Second)

		// With a check every second per job.
		g = newGod(t)
		writeExecutable(t, g.dir, "many", []byte(manyJobsLoader(jobs, "1000")))
		g.start()
		waitJobsRunning(t, g, jobs, true)
		godPid = g.cmd.Process.Pid
		god0, _ := readProc(godPid)
		ld0 := map[int]procStat{}
		for _, pid := range loadersOf(godPid) {
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
		gm := readMem(godPid)
		var lm memFigures
		var ldCPU time.Duration
		loaders := loadersOf(godPid)
		for _, pid := range loaders {
			st, ok := readProc(pid)
			if !ok {
				continue
			}
			lm.add(readMem(pid))
			ldCPU += st.cpu - ld0[pid].cpu // a loader started in the window counts from 0
		}
		if n := countState(g.status(), "run"); n != jobs {
			g.fatalf("%d of %d jobs in run after the window", n, jobs)
		}
		cpu := god1.cpu - god0.cpu
		f.add("god-checked-pss-MiB", gm.pssMiB(), fmt.Sprintf("god with %d jobs checked every second (RSS %.1f MiB)", jobs, gm.rssMiB()))
		f.add("loaders-pss-MiB", lm.pssMiB(), fmt.Sprintf("%d bash loader processes answering the checks (RSS %.1f MiB)", len(loaders), lm.rssMiB()))
		f.add("god-cpu-%core", 100*cpu.Seconds()/elapsed.Seconds(), fmt.Sprintf("god utime+stime %s over %s (10 ms ticks)", cpu, elapsed.Round(time.Millisecond)))
		f.add("loaders-cpu-%core", 100*ldCPU.Seconds()/elapsed.Seconds(), fmt.Sprintf("bash answering %d checks/s", jobs))

		if rm, n, err := runitFootprint(t, jobs); err != nil {
			f.notef("runit: not measured (%v)", err)
		} else {
			f.add("runit-pss-MiB", rm.pssMiB(), fmt.Sprintf("runsvdir and %d runsv processes, same %d jobs (RSS %.1f MiB)", n-1, jobs, rm.rssMiB()))
		}
		f.notef("others, as the brief measured them: runit 10 MiB, s6 13 MiB, supervisord 30 MiB, pm2 74 MiB")
	})
	f.report(b)
}

// waitJobsRunning waits until n jobs are in run (and, with checked, their check is ok).
func waitJobsRunning(t testing.TB, g *god, n int, checked bool) {
	t.Helper()
	eventually(t, 60*time.Second, fmt.Sprintf("%d jobs running", n), func() bool {
		k := 0
		for _, j := range g.status() {
			if j.State == "run" && (!checked || j.Check == "ok") {
				k++
			}
		}
		return k == n
	})
}

// memFigures is a process's memory (or a sum over processes) in KiB.
type memFigures struct{ pssKB, rssKB, anonKB, fileKB int }

func (m memFigures) pssMiB() float64 { return float64(m.pssKB) / 1024 }
func (m memFigures) rssMiB() float64 { return float64(m.rssKB) / 1024 }

func (m *memFigures) add(o memFigures) {
	m.pssKB += o.pssKB
	m.rssKB += o.rssKB
	m.anonKB += o.anonKB
	m.fileKB += o.fileKB
}

// readMem reads Pss from /proc/PID/smaps_rollup and RSS, RssAnon and RssFile from
// /proc/PID/status; a process that is gone reads as zero.
func readMem(pid int) memFigures {
	var m memFigures
	field := func(file, key string) int {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, key+":"); ok {
				n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				return n
			}
		}
		return 0
	}
	m.pssKB = field("smaps_rollup", "Pss")
	m.rssKB = field("status", "VmRSS")
	m.anonKB = field("status", "RssAnon")
	m.fileKB = field("status", "RssFile")
	return m
}

// findRunit finds one of runit's programs in WATCHGOD_RUNIT_BIN or PATH.
func findRunit(name string) (string, error) {
	if d := os.Getenv("WATCHGOD_RUNIT_BIN"); d != "" {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found (install Debian's runit, or set WATCHGOD_RUNIT_BIN)", name)
	}
	return p, nil
}
