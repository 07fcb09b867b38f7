package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// tableflipBin builds examples/tableflip once, next to god's binary (TestMain removes that
// directory), with the race detector when the tests have it.
var tableflipBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(godBin), "tableflip")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./examples/tableflip")...)
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	return out, cmd.Run()
})

// TestReloadSignalTableflip reloads examples/tableflip (reload: signal SIGHUP, ready: notify)
// under load: each reload makes the job replace itself by a child that says MAINPID= and READY=1;
// no request fails, god's status follows the new pid, and the job never counts as restarted.
func TestReloadSignalTableflip(t *testing.T) {
	t.Parallel()
	bin, err := tableflipBin()
	if err != nil {
		t.Fatalf("go build ./examples/tableflip: %v", err)
	}
	addr := freePort(t)
	g := newGod(t)
	g.env = []string{"TABLEFLIP_ADDR=" + addr}
	copyExecutable(t, bin, g.dir, "tableflip")
	g.start()
	dumpOnFailure(t, g)
	j := g.waitState("tableflip", "run", 15*time.Second)
	pid := pidOf(t, j)

	l := startLoad(t, loadOpts{URL: "http://" + addr + "/"})
	const reloads = 10
	var marks []reloadMark
	var took []time.Duration
	for k := 1; k <= reloads; k++ {
		l.waitServed(t, 10, 20*time.Second)
		m, d := g.reloadOK("tableflip")
		marks, took = append(marks, m), append(took, d)
		j := g.waitJob("tableflip", 5*time.Second, "one process after the upgrade", func(j controlJob) bool {
			return j.State == "run" && len(j.Processes) == 1
		})
		next := pidOf(t, j)
		if next == pid || j.Processes[0].Generation != m.gen || j.Generation != m.gen {
			g.fatalf("reload %d: status %+v; want a new pid (not %d) of generation %d", k, j, pid, m.gen)
		}
		if alive(pid) {
			t.Errorf("reload %d: the old main process %d still runs after god reload returned", k, pid)
		}
		if ppid := parentPid(next); ppid != g.cmd.Process.Pid {
			t.Errorf("reload %d: new main process %d has parent %d, want god %d (subreaper)", k, next, ppid, g.cmd.Process.Pid)
		}
		pid = next
	}
	l.waitServed(t, 10, 20*time.Second)
	l.finish()
	rep := l.check(marks)
	t.Logf("%d signal reloads (tableflip): %s; reload took %s", reloads, rep, durations(took))
	rep.expectClean(t)
	for _, r := range l.all() {
		if r.err == "" && r.start.After(marks[len(marks)-1].at) && r.pid != pid {
			t.Errorf("after the last reload pid %d answered, want %d", r.pid, pid)
			break
		}
	}
	if j, _ := g.job("tableflip"); j.Restarts != 0 || j.State != "run" {
		t.Errorf("after the upgrades: state %s, %d restarts (want run, 0): %+v", j.State, j.Restarts, j)
	}

	// god stops the job's current main process, the last successor.
	g.mustCLI("stop", "tableflip")
	if alive(pid) {
		t.Errorf("pid %d still runs after god stop", pid)
	}
}
