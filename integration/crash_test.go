package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// sigIgnored reports whether pid ignores signal sig (its SigIgn mask in /proc/PID/status).
func sigIgnored(pid, sig int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(sig-1)) != 0
		}
	}
	return false
}

// TestGodKilledAndReplaced: god is killed (kill -9) under HTTP load; its jobs run on as orphans
// (they ignore SIGPIPE, so their output pipe going away does not kill them). A new god on the same
// directory and socket takes the listening socket back from the orphaned backend, ends the
// orphans cleanly and runs its own jobs on that socket: supervised again within seconds, no
// process of the old god left, no `address already in use`, and the clients' connections wait in
// the kept socket's queue.
func TestGodKilledAndReplaced(t *testing.T) {
	t.Parallel()
	g, url := upgradeGod(t)
	// A job whose daemon left its group (setsid) while its leader still runs: god has not seen
	// it yet when it is killed, and the new god must still find it (by the job tag it carries).
	arg := strconv.Itoa(6000 + os.Getpid()%1000)
	writeLoader(t, g.dir, "forky", bashLoader{Jobs: map[string]bashJob{
		"forky": {Exec: shJob(`setsid sh -c "exec sleep ` + arg + `" & exec sleep 1000`), Auto: autoTrue},
	}})
	g.waitState("forky", "run", 10*time.Second)
	eventually(t, 10*time.Second, "forky's daemon", func() bool { return len(sleepersWith(arg)) == 1 })
	daemon := sleepersWith(arg)[0]
	t.Cleanup(func() {
		if alive(daemon) {
			syscall.Kill(daemon, syscall.SIGKILL)
		}
	})
	backend := pidOf(t, mustJob(t, g, "backend"))
	counter := pidOf(t, mustJob(t, g, "counter"))
	if !sigIgnored(counter, 13) {
		t.Fatalf("job pid %d does not ignore SIGPIPE", counter)
	}
	// The state file is written shortly after the processes change: wait for it.
	eventually(t, 10*time.Second, "the state file naming the backend", func() bool {
		b, _ := os.ReadFile(strings.TrimSuffix(g.socket, ".sock") + "-state.json")
		return strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, backend))
	})
	l := startLoad(t, loadOpts{URL: url, Workers: 4, MaxTime: 60 * time.Second})
	l.waitServed(t, 50, 10*time.Second)

	g2, t0 := killAndReplace(t, g, func() {
		// The jobs outlive god: the counter writes to its output pipe every 2 ms, and god's end
		// of it is gone (EPIPE, not SIGPIPE). Give it a few writes first.
		time.Sleep(50 * time.Millisecond) // the scenario: god has been dead a moment
		if !alive(backend) || !alive(counter) {
			t.Fatalf("the jobs died with god (backend %v, counter %v): nothing to recover", alive(backend), alive(counter))
		}
	})
	j := g2.waitJob("backend", 20*time.Second, "backend supervised again", func(j controlJob) bool {
		return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid != backend
	})
	took := time.Since(t0)
	l.waitServed(t, 50, 10*time.Second)
	l.finish()
	var failed []string
	for _, r := range l.all() {
		if r.err != "" {
			failed = append(failed, r.err)
		}
	}
	t.Logf("new god: backend supervised again (pid %d) %s after its start; %d requests, %d failed", pidOf(t, j), took.Round(time.Millisecond), len(l.all()), len(failed))
	if len(failed) > 0 {
		g2.fatalf("%d requests failed across the kill -9 and the recovery, first: %s", len(failed), failed[0])
	}
	eventually(t, 10*time.Second, "the old god's jobs gone", func() bool { return !alive(backend) && !alive(counter) && !alive(daemon) })
	if n := len(g2.logs(0, func(r record) bool { return strings.Contains(r.str("err"), "address already in use") })); n > 0 {
		g2.fatalf("the new god fought the orphan for the port (%d records)", n)
	}
	if len(g2.logs(0, func(r record) bool { return r.Msg == "recovery: took a socket back from an orphan of the dead god" })) == 0 {
		g2.fatalf("the new god did not take the socket back")
	}
}

// killAndReplace kills god (kill -9) and starts a new god on the same directory, socket and
// environment, which recovers what the first one left; between runs after the kill, before the
// new god starts. It returns the new god and when it was started.
func killAndReplace(t testing.TB, g *god, between func()) (*god, time.Time) {
	t.Helper()
	if err := g.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-g.exited
	if between != nil {
		between()
	}
	g2 := &god{t: t, dir: g.dir, socket: g.socket, pidFile: g.pidFile, env: g.env, bin: g.bin, noJobLines: g.noJobLines,
		changed: make(chan struct{}), pids: map[int]string{}, starts: map[int]uint64{}, exited: make(chan struct{})}
	t0 := time.Now()
	g2.start(g.flags...)
	return g2, t0
}
