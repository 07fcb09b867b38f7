package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countLines counts the lines of file that contain substr.
func countLines(t testing.TB, file, substr string) int {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(data), substr)
}

// TestChecksGoOnAcrossUpgrades: a job checked every 200 ms keeps being checked at that rate
// across three god upgrades (a restored job has its timers armed by construction).
func TestChecksGoOnAcrossUpgrades(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god")
	requests := filepath.Join(t.TempDir(), "requests")
	writeLoader(t, g.dir, "checked", bashLoader{Record: requests, Jobs: map[string]bashJob{
		"checked": {Exec: sleeper, Auto: autoTrue, Check: checkOK("200")},
	}})
	g.start()
	pid := pidOf(t, g.waitState("checked", "run", 10*time.Second))
	checks := func() int { return countLines(t, requests, `"checked","check"`) }
	for i := range 3 {
		before := checks()
		g.mustCLI("upgrade")
		t0 := time.Now()
		eventually(t, 10*time.Second, "10 checks after an upgrade", func() bool { return checks() >= before+10 })
		t.Logf("upgrade %d: 10 checks in %s after it (at 200 ms: 2 s)", i+1, time.Since(t0).Round(time.Millisecond))
	}
	if j, _ := g.job("checked"); j.State != "run" || pidOf(t, j) != pid {
		g.fatalf("after 3 upgrades: %+v, want run on pid %d", j, pid)
	}
}

// TestReadyDelayAcrossUpgrade: a `ready: delay` process in its delay when god upgrades becomes
// run on the same pid once its delay is over.
func TestReadyDelayAcrossUpgrade(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god")
	writeLoader(t, g.dir, "slow", bashLoader{Jobs: map[string]bashJob{
		"slow": {Exec: sleeper, Auto: autoTrue, Props: map[string]string{"ready": echoReply("delay", "4000")}},
	}})
	g.start()
	j := g.waitState("slow", "start", 10*time.Second)
	pid := pidOf(t, j)
	g.mustCLI("upgrade")
	if j, _ := g.job("slow"); j.State != "start" {
		t.Logf("state %s right after the upgrade (the machine is slow; the delay may be over)", j.State)
	}
	j = g.waitState("slow", "run", 20*time.Second)
	if pidOf(t, j) != pid || j.Restarts != 0 {
		g.fatalf("after the delay: %+v, want run on pid %d with no restart", j, pid)
	}
	started := j.Processes[0].Started
	if ran := j.Since.Sub(started); ran < 4*time.Second {
		g.fatalf("run %s after the start, before its 4 s delay was over", ran)
	}
}

// TestWatchdogArmedAtReady: a notify job with a 300 ms watchdog that needs 1 s to become ready
// reaches run on its first process, and is then held to its pings.
func TestWatchdogArmedAtReady(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"slowdog": sockJob([]string{sockjobBin, "serve", "-start-delay", "1s", "-watchdog-for", "2s"}, nil, []string{"notify"},
			map[string][]string{"watchdog": {"300"}}),
	}})
	g.start()
	first := pidOf(t, g.waitState("slowdog", "start", 10*time.Second))
	j := g.waitState("slowdog", "run", 15*time.Second)
	if pidOf(t, j) != first || j.Restarts != 0 {
		g.fatalf("run on pid %d after %d restarts, want the first process %d: the watchdog fired during start-up", pidOf(t, j), j.Restarts, first)
	}
	g.waitLog(15*time.Second, "the watchdog firing once the job stops pinging", func(r record) bool {
		return r.str("job") == "slowdog" && strings.HasPrefix(r.Msg, "watchdog: no WATCHDOG=1") && r.int("pid") == first
	})
}

// TestServingJobRestartsAtOnce: a job that is ready and serving, SIGKILLed 12 times 1.5 s
// apart, is restarted at once every time (no back-off: it is not crash-looping) and is run at
// the end.
func TestServingJobRestartsAtOnce(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	requests := filepath.Join(t.TempDir(), "requests")
	writeLoader(t, g.dir, "victim", bashLoader{Record: requests, Jobs: map[string]bashJob{
		"victim": {Exec: sleeper, Auto: autoTrue, Check: checkOK("1000")},
	}})
	g.start()
	j := g.waitState("victim", "run", 10*time.Second)
	var worst time.Duration
	for i := range 12 {
		pid := pidOf(t, j)
		// Let it serve 1.5 s (more than the 1 s min-uptime) before the kill: the scenario's pace.
		time.Sleep(time.Until(j.Processes[0].Started.Add(1500 * time.Millisecond)))
		from := g.mark()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		exited := g.waitLogFrom(from, 10*time.Second, "the exit", func(r record) bool { return r.Msg == "exited" && r.int("pid") == pid })
		started := g.waitLogFrom(from, 10*time.Second, "the restart", func(r record) bool { return r.Msg == "started" && r.str("job") == "victim" })
		gap := started.Time.Sub(exited.Time)
		worst = max(worst, gap)
		// A bound far above what god does (well under 100 ms) and far below a back-off's
		// (100 ms doubling to 10 s from the second kill on: 6.4 s by the ninth).
		if gap > 3*time.Second {
			g.fatalf("kill %d: restarted %s after the exit: backed off", i+1, gap)
		}
		j = g.waitJob("victim", 10*time.Second, "run on a new pid", func(j controlJob) bool {
			return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid != pid
		})
	}
	t.Logf("12 kills of a serving job: slowest exit -> restart %s", worst)
	if n := countLines(t, requests, `"onBackoff"`); n > 0 {
		g.fatalf("the job backed off %d times", n)
	}
	if j.Restarts != 12 {
		g.fatalf("restarts %d, want 12", j.Restarts)
	}
}

// TestJobRestartRules: a job's own restart rules win over god's: restart-limit and cool-down
// from the loader, and an exit status that prevents a restart.
func TestJobRestartRules(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "rules", bashLoader{Jobs: map[string]bashJob{
		"limited": {Exec: shJob("exit 1"), Auto: autoTrue, Props: map[string]string{
			"restart-limit": echoReply("1"), "restart-delay": echoReply("0"), "cool-down": echoReply("0")}},
		"prevented": {Exec: shJob("exit 3"), Auto: autoTrue, Props: map[string]string{
			"restart-prevent-exit-status": echoReply("3")}},
	}})
	g.start("--restart-limit", "50", "--cool-down", "1s")
	j := g.waitState("limited", "failed", 10*time.Second)
	if !strings.Contains(j.Reason, "flapping: 2 quick failures") || !j.Next.IsZero() {
		g.fatalf("limited: %+v; want failed after 2 quick failures, with no retry (cool-down 0)", j)
	}
	j = g.waitState("prevented", "failed", 10*time.Second)
	if j.Restarts != 0 || !strings.Contains(j.Reason, "restart-prevent-exit-status") {
		g.fatalf("prevented: %+v; want failed at once, not restarted", j)
	}
}
