package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// tableflipStockBin builds examples/tableflip-stock once, next to god's binary.
var tableflipStockBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(godBin), "tableflip-stock")
	args := []string{"build", "-o", out}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./examples/tableflip-stock")...)
	cmd.Dir = ".."
	cmd.Stderr = os.Stderr
	return out, cmd.Run()
})

// pidFileJob starts god with a bash loader for examples/tableflip-stock: reload signal SIGHUP,
// pid-file, ready left at its default (the program says nothing).
func pidFileJob(t *testing.T) (g *god, addr, pidFile string) {
	bin, err := tableflipStockBin()
	if err != nil {
		t.Fatalf("go build ./examples/tableflip-stock: %v", err)
	}
	addr = freePort(t)
	pidFile = filepath.Join(t.TempDir(), "web.pid")
	g = newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god") // its own binary, for god upgrade
	writeLoader(t, g.dir, "stock", bashLoader{Jobs: map[string]bashJob{"web": {
		Exec: []string{bin, "-listen", addr, "-pid-file", pidFile},
		Auto: []string{"true"},
		Props: map[string]string{
			"reload":   "echo " + sq(jsonArray("signal", "SIGHUP")),
			"pid-file": "echo " + sq(jsonArray(pidFile)),
		},
	}}})
	g.start()
	dumpOnFailure(t, g)
	return g, addr, pidFile
}

// firstPidFile waits until the web job runs and its first process wrote its pid to the pid file,
// and returns that pid.
func firstPidFile(t *testing.T, g *god, pidFile string) int {
	t.Helper()
	pid := pidOf(t, g.waitState("web", "run", 15*time.Second))
	eventually(t, 15*time.Second, "the first process writes its pid file", func() bool { return readPid(pidFile) == pid })
	return pid
}

// readPid reads the pid file; 0 while it is missing or partial.
func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// TestReloadPidFileTableflipStock reloads a stock tableflip program (no god code: it writes its
// pid file, nothing else) 10 times under HTTP load, with a god upgrade half-way: no request
// fails, and after each reload god's status shows exactly one process, the pid the pid file
// names, whose parent is god.
func TestReloadPidFileTableflipStock(t *testing.T) {
	t.Parallel()
	g, addr, pidFile := pidFileJob(t)
	pid := firstPidFile(t, g, pidFile)

	l := startLoad(t, loadOpts{URL: "http://" + addr + "/"})
	const reloads = 10
	for k := 1; k <= reloads; k++ {
		l.waitServed(t, 10, 20*time.Second)
		if k == reloads/2 {
			g.upgrade() // the new image goes on following the pid file
		}
		g.mustCLI("reload", "web")
		eventually(t, 30*time.Second, "a new pid in the pid file", func() bool { n := readPid(pidFile); return n != 0 && n != pid })
		next := readPid(pidFile)
		j := g.waitJob("web", 30*time.Second, "god follows the pid file's pid alone", func(j controlJob) bool {
			return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid == next
		})
		if ppid := parentPid(next); ppid != g.cmd.Process.Pid {
			t.Errorf("reload %d: new main process %d has parent %d, want god %d (subreaper)", k, next, ppid, g.cmd.Process.Pid)
		}
		if j.Restarts != 0 {
			t.Errorf("reload %d: %d restarts, want 0", k, j.Restarts)
		}
		pid = next
	}
	l.waitServed(t, 10, 20*time.Second)
	l.finish()
	rep := l.check(nil)
	t.Logf("%d signal reloads (stock tableflip, pid-file): %s", reloads, rep)
	rep.expectClean(t)

	g.mustCLI("stop", "web")
	if alive(pid) {
		t.Errorf("pid %d still runs after god stop", pid)
	}
}

// TestPidFileIgnoresStrangers writes what is not the job's into its pid file: garbage, and the
// pid of a process outside the job's process group. God logs each and keeps its process.
func TestPidFileIgnoresStrangers(t *testing.T) {
	t.Parallel()
	g, _, pidFile := pidFileJob(t)
	pid := firstPidFile(t, g, pidFile)

	if err := os.WriteFile(pidFile, []byte("not a pid\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.waitLog(15*time.Second, "garbage logged", func(r record) bool {
		return r.Msg == "pid-file: ignored" && strings.Contains(r.str("err"), "is not a pid")
	})

	stranger := exec.Command("sleep", "60")
	if err := stranger.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stranger.Process.Kill(); stranger.Wait() })
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(stranger.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g.waitLog(15*time.Second, "stranger logged", func(r record) bool {
		return r.Msg == "pid-file: names a process that is not the job's: ignored" && r.str("pid") == strconv.Itoa(stranger.Process.Pid)
	})
	if j := g.waitState("web", "run", 5*time.Second); len(j.Processes) != 1 || j.Processes[0].Pid != pid {
		t.Fatalf("after a stranger's pid: %+v, want pid %d alone", j.Processes, pid)
	}
}

// TestSuccessorLinesTagged: a successor that inherited its predecessor's stdout (a job that
// hands over to a child through its pid file, as tableflip and nginx do) has its lines tagged
// in god's log with its own pid once god follows it, and still after a god upgrade.
func TestSuccessorLinesTagged(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "job.pid")
	g := newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god")
	// The first process notes itself, starts its successor (same stdout) and exits once the
	// successor wrote its pid; the successor prints a numbered line every 20 ms.
	script := `echo $$ > "$1"; echo "first $$"; ` +
		`sh -c 'echo $$ >> "$GOD_TEST_PIDS"; echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; i=0; while :; do i=$((i+1)); echo "succ $$ $i"; sleep 0.02; done' sh "$1" & ` +
		`while [ "$(cat "$1")" = "$$" ]; do sleep 0.01; done; exit 0`
	writeLoader(t, g.dir, "handover", bashLoader{Jobs: map[string]bashJob{"web": {
		Exec:  []string{"/bin/sh", "-c", `echo $$ >> "$GOD_TEST_PIDS"; ` + script, "sh", pidFile},
		Auto:  autoTrue,
		Props: map[string]string{"pid-file": "echo " + sq(jsonArray(pidFile))},
	}}})
	g.start()
	// The first process names itself in the pid file before its successor does: the successor is
	// the pid there once it is not the first's.
	firstLine := g.waitLog(30*time.Second, "the first process's line", func(r record) bool {
		return r.str("job") == "web" && strings.HasPrefix(r.Msg, "first ")
	})
	first, err := strconv.Atoi(strings.TrimPrefix(firstLine.Msg, "first "))
	if err != nil {
		t.Fatalf("first line %q: %v", firstLine.Msg, err)
	}
	succ := 0
	j := g.waitJob("web", 30*time.Second, "following the successor", func(j controlJob) bool {
		succ = readPid(pidFile)
		return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid == succ && succ != 0 && succ != first
	})
	mark := g.mark()
	prefix := fmt.Sprintf("succ %d ", succ)
	isSucc := func(r record) bool { return r.str("job") == "web" && strings.HasPrefix(r.Msg, prefix) }
	g.waitLogFrom(mark, 20*time.Second, "a successor line after god followed it", isSucc)
	check := func(from int, when string) {
		for _, r := range g.logs(from, isSucc) {
			if r.int("pid") != succ {
				g.fatalf("%s: line %q tagged pid %d, want the successor's %d (status %+v)", when, r.Msg, r.int("pid"), succ, j)
			}
		}
	}
	check(mark, "after god followed the successor")
	g.upgrade()
	mark = g.mark()
	g.waitLogFrom(mark, 20*time.Second, "a successor line after the upgrade", isSucc)
	check(mark, "after the upgrade")
}
