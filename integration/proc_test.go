package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/procfs"
)

// readPids reads a file of pids, one a line, as a job wrote them.
func readPids(t testing.TB, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q is not a pid", path, f)
		}
		out = append(out, pid)
	}
	return out
}

// TestStopKillsWholeTree: a job whose processes all ignore SIGTERM, with stop reply
// ["SIGTERM","300"], is gone entirely (every process of its group) soon after the timeout.
func TestStopKillsWholeTree(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	pids := filepath.Join(t.TempDir(), "tree.pids")
	writeLoader(t, g.dir, "tree", bashLoader{Jobs: map[string]bashJob{
		"tree": {
			Exec: []string{"/bin/bash", "-c", `trap '' TERM; sleep 1000 & echo $! >> "$0"; sleep 1000 & echo $! >> "$0"; ` +
				`echo $$ >> "$0"; wait; wait`, pids},
			Auto: autoTrue, Stop: []string{"SIGTERM", "300"},
		},
	}})
	g.start()
	j := g.waitState("tree", "run", 10*time.Second)
	leader := pidOf(t, j)
	eventually(t, 5*time.Second, "three pids noted", func() bool { return len(readPids(t, pids)) == 3 })
	tree := readPids(t, pids)
	for _, pid := range tree {
		g.addPid(pid, "tree member")
		if pgid := procPgid(pid); pgid != leader {
			t.Fatalf("pid %d is in group %d, want the job's group %d", pid, pgid, leader)
		}
	}

	t0 := time.Now()
	g.mustCLI("stop", "tree")
	took := time.Since(t0)
	for _, pid := range tree {
		if alive(pid) {
			t.Errorf("pid %d of the job's tree still runs after god stop", pid)
		}
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("god stop took %v; want about the 300 ms stop timeout", took)
	}
	if j, _ := g.job("tree"); j.State != "stopped" {
		t.Errorf("state after stop: %s", j.State)
	}
	g.waitLog(time.Second, "the kill", func(r record) bool {
		return r.str("job") == "tree" && r.Msg == "killing process group" && r.int("pgid") == leader
	})
}

// TestOrphanReaped: a one-shot job that double-forks a daemon (setsid, so it leaves the job's
// group) and exits does not leave the daemon behind: the daemon is reparented to god (its
// subreaper), attributed to the job by its GOD_UNIT tag, ended with what is left of the job, and
// reaped: no zombie, no orphan.
func TestOrphanReaped(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	writeLoader(t, g.dir, "forker", bashLoader{Jobs: map[string]bashJob{
		"forker": {
			Exec: []string{"/bin/sh", "-c", `setsid sh -c 'echo $$ >> "$GOD_TEST_PIDS"; echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 1000' sh "$0" & ` +
				// Like a real daemon's parent, exit once the child is detached, not before.
				`for i in $(seq 500); do [ -e "$0" ] && exit 0; sleep 0.01; done; exit 1`, pidFile},
			Auto: autoTrue, Restart: []string{"never"},
		},
	}})
	g.start()
	g.waitState("forker", "done", 10*time.Second)
	eventually(t, 5*time.Second, "the daemon's pid noted", func() bool { return len(readPids(t, pidFile)) == 1 })
	daemon := readPids(t, pidFile)[0]
	g.waitLog(10*time.Second, "the daemon kept with its job", func(r record) bool {
		return r.str("job") == "forker" && strings.HasPrefix(r.Msg, "a process left its job's process group") && r.int("pid") == daemon
	})
	eventually(t, 10*time.Second, "the daemon ended with its job and reaped", func() bool { return procfs.State(daemon) == 0 })
}

// parentPid is the parent of pid from /proc/PID/stat, or 0 when pid is gone.
func parentPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}
