package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestForkServer runs 300 jobs: past about 250, the fds god hands a child are numbered above 512
// and god starts children from its fork server (internal/forkserver). Every job is still god's
// own child; the server's end comes with god's: `god upgrade` closes it (a restart after the
// upgrade gets a new server), and so does a kill -9 of god.
func TestForkServer(t *testing.T) {
	const n = 300
	g := newGod(t)
	writeManyJobs(t, g, n, "")
	g.start()
	servers := map[int]bool{}
	god := g.cmd.Process.Pid
	eventually(t, 2*time.Minute, "300 jobs in run", func() bool {
		for _, pid := range forkServersOf(god) {
			servers[pid] = true
		}
		return countState(g.status(), "run") == n
	})
	if len(servers) != 1 {
		t.Fatalf("fork servers seen while 300 jobs started: %v, want one", servers)
	}
	var server int
	for pid := range servers {
		server = pid
	}
	for _, j := range g.status() {
		for _, p := range j.Processes {
			if ppid := parentPid(p.Pid); ppid != god {
				t.Errorf("job %s: process %d has parent %d, not god (%d)", j.Name, p.Pid, ppid, god)
			}
		}
	}

	g.upgrade()
	eventually(t, 30*time.Second, "the fork server of the old image exits", func() bool { return !alive(server) })
	last := manyJobsName(n)
	before, _ := g.job(last)
	g.mustCLI("restart", last)
	after := g.waitJob(last, time.Minute, "restarted after the upgrade", func(j controlJob) bool {
		return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid != before.Processes[0].Pid
	})
	if ppid := parentPid(after.Processes[0].Pid); ppid != god {
		t.Errorf("restarted job: parent %d, not god (%d)", ppid, god)
	}
	now := forkServersOf(god)
	if len(now) != 1 || now[0] == server {
		t.Fatalf("fork servers after the upgrade's restart: %v (the old image's was %d)", now, server)
	}

	g2, _ := killAndReplace(t, g, func() {
		eventually(t, 30*time.Second, "the fork server exits once god was killed", func() bool { return !alive(now[0]) })
	})
	eventually(t, 2*time.Minute, "the new god finds the 300 jobs", func() bool {
		return countState(g2.status(), "run") == n
	})
}

// forkServersOf lists the children of pid that are god's fork server.
func forkServersOf(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			kid, err := strconv.Atoi(c)
			if err != nil {
				continue
			}
			if cmd, _ := os.ReadFile("/proc/" + c + "/cmdline"); strings.HasPrefix(string(cmd), "god-forkserver\x00") && alive(kid) {
				out = append(out, kid)
			}
		}
	}
	return out
}
