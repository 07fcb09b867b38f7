package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/supervisor/control"
)

// nofileJob is a job that writes its open-files limits, "SOFT HARD", to out and runs on.
func nofileJob(out string) bashJob {
	return bashJob{Exec: shJob(`echo "$(ulimit -Sn) $(ulimit -Hn)" > ` + sq(out) + `; exec sleep 1000`), Auto: []string{"true"}}
}

// godUnderUlimit makes g run god through sh after `ulimit ARGS` (the limit god is started with).
func godUnderUlimit(t *testing.T, g *god, args string) {
	t.Helper()
	g.bin = writeExecutable(t, t.TempDir(), "god-ulimit", []byte("#!/bin/sh\nulimit "+args+" || exit 1\nexec "+sq(godBin)+` "$@"`+"\n"))
}

// nofileOf reads a process's RLIMIT_NOFILE.
func nofileOf(t *testing.T, pid int) unix.Rlimit {
	t.Helper()
	var l unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &l); err != nil {
		t.Fatalf("prlimit of pid %d: %v", pid, err)
	}
	return l
}

// waitFile waits until path holds a line, and returns it.
func waitFile(t *testing.T, path string) string {
	t.Helper()
	var s string
	eventually(t, 10*time.Second, path+" written", func() bool {
		b, _ := os.ReadFile(path)
		s = string(b)
		return strings.HasSuffix(s, "\n")
	})
	return strings.TrimSpace(s)
}

// TestJobsGetStartLimitAfterRaise: as root, god started with a hard open-files limit below what
// its jobs need (1024, and an fd for each output pipe of a job's: 2 for this one) raises it, soft and hard, and its jobs still get the limit god
// was started with. (Without a raise, Go's own restore gives jobs that limit:
// TestJobLimitNofile.)
func TestJobsGetStartLimitAfterRaise(t *testing.T) {
	t.Parallel()
	// Raising a hard limit needs CAP_SYS_RESOURCE (root in a container may lack it).
	if err := exec.Command("sh", "-c", "ulimit -Hn $(($(ulimit -Hn) + 1))").Run(); err != nil {
		t.Skip("this user may not raise a hard limit")
	}
	g := newGod(t)
	godUnderUlimit(t, g, "-n 256")
	out := filepath.Join(t.TempDir(), "limits")
	writeLoader(t, g.dir, "lim", bashLoader{Jobs: map[string]bashJob{"lim": nofileJob(out)}})
	g.start()
	if got := waitFile(t, out); got != "256 256" {
		t.Errorf("the job's limits %q, want \"256 256\" (god's at its start)", got)
	}
	r := g.waitLog(10*time.Second, "the raise said", func(r record) bool { return r.Msg == "raised the open-files limit for the jobs" })
	if r.int("from") != 256 || r.int("to") != 1026 {
		t.Errorf("raise record %s, want from 256 to 1026 (1024 + its stdout and stderr pipes)", r.Raw)
	}
	if l := nofileOf(t, g.cmd.Process.Pid); l.Cur != 1026 || l.Max != 1026 {
		t.Errorf("god's limit %d:%d, want 1026:1026", l.Cur, l.Max)
	}
}

// TestOpenFilesShortage: god runs out of fds with 40 jobs to start (its limit lowered with
// prlimit once it runs). It says so once, with the numbers; the jobs that fit run, the others
// wait (not backoff, not failed, no record per attempt), and they start once stopped jobs free
// their fds.
func TestOpenFilesShortage(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		// prlimit on god's pid works for the same user as well; only the restore is root's
		// when the hard limit was lowered.
		t.Log("not root: god's hard limit is lowered for good")
	}
	g := newGod(t)
	const n = 40
	jobs := map[string]bashJob{"gate": {Exec: sleeper, Auto: []string{"false"}}}
	// Ready 10 ms after their start, without asking the loader: the loader's instances (and the
	// fds they take) stay few, so that the number of jobs that fit does not vary much.
	ready := map[string]string{"ready": "echo " + sq(jsonArray("delay", "10"))}
	for i := range n {
		jobs[fmt.Sprintf("j%02d", i)] = bashJob{Exec: sleeper, Auto: []string{"gate"}, Props: ready}
	}
	writeLoader(t, g.dir, "many", bashLoader{Jobs: jobs})
	g.start()
	g.waitState("j39", "wait", 10*time.Second)
	pid := g.cmd.Process.Pid
	orig := nofileOf(t, pid)

	// Room for the gate and about 25 jobs: each keeps its stdout and stderr pipes in god, a
	// start needs 4 more for a moment (the write ends, and Go's exec status pipe), and the
	// loader's instances and the control connections take some too.
	open := countFDs(t, pid)
	limit := uint64(open + 2*36 + 6)
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// god needs fds to stop its jobs; as root, give it its limit back.
		unix.Prlimit(pid, unix.RLIMIT_NOFILE, &orig, nil)
	})
	mark := g.mark()
	g.mustCLI("start", "gate")

	isShort := func(r record) bool { return strings.HasPrefix(r.Msg, "out of file descriptors") }
	r := g.waitLogFrom(mark, 20*time.Second, "the shortage said", isShort)
	if r.Level != "ERROR" || r.int("limit") != int(limit) || r.int("fds_open") <= 0 || r.int("jobs_waiting") < 1 {
		t.Errorf("shortage record %s: want an error with fds_open, limit %d and jobs_waiting", r.Raw, limit)
	}

	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range g.logs(mark, func(r record) bool { return r.Level != "INFO" && r.str("job") != "" }) {
				t.Log(r.Raw)
			}
		}
	})
	// Every job either runs or waits for fds. (Some that failed in the rush of starts find room
	// on their next try: the counts still move.)
	var running, waiting []string
	eventually(t, 30*time.Second, "every job running or waiting for fds", func() bool {
		running, waiting = running[:0], waiting[:0]
		for _, j := range g.status() {
			switch {
			case j.Name == "gate":
			case j.State == "run":
				running = append(running, j.Name)
			case j.State == "wait" && j.Reason == jobstate.ReasonNoFDs:
				waiting = append(waiting, j.Name)
			}
		}
		return len(running)+len(waiting) == n
	})
	t.Logf("limit %d: %d running, %d waiting", limit, len(running), len(waiting))
	if len(running) < 5 || len(waiting) < 1 {
		t.Fatalf("%d running, %d waiting: want the jobs that fit running and the others waiting", len(running), len(waiting))
	}
	for _, j := range g.status() {
		if j.State == "backoff" || j.State == "failed" || j.Restarts > 0 {
			t.Errorf("job %s: %s, %d restarts: flapping for want of fds", j.Name, j.State, j.Restarts)
		}
	}

	// Stopping the jobs that ran frees their fds: those that waited start.
	g.mustCLI(append([]string{"stop"}, running...)...)
	for _, name := range waiting {
		g.waitState(name, "run", 30*time.Second)
	}
	g.waitLogFrom(mark, 10*time.Second, "the shortage's end said", func(r record) bool {
		return r.Msg == "file descriptors free again: every job that waited for them started"
	})
	if k := len(g.logs(mark, isShort)); k != 1 {
		t.Errorf("the shortage was said %d times, want once", k)
	}
	if k := len(g.logs(mark, func(r record) bool { return strings.HasPrefix(r.Msg, "cannot start") })); k > 0 {
		t.Errorf("%d records of a job that cannot start: want none (one for the shortage)", k)
	}
	var st []control.JobStatus = g.status()
	for _, j := range st {
		if j.Restarts > 0 {
			t.Errorf("job %s restarted %d times", j.Name, j.Restarts)
		}
	}
}

// countFDs is how many fds process pid has open.
func countFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
