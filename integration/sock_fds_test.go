package integration

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestSocketFdsStable: god's fds are the same after 100 restarts of a job with sockets (60
// `god restart`, 40 kill -9), and every restart still serves: nothing leaks per process. Pipes
// are compared by owner: god's loader pool may run 1 to 4 instances of a loader (3 pipes each),
// so every pipe god holds must be shared with a live child; sockets and other fds must match.
func TestSocketFdsStable(t *testing.T) {
	t.Parallel()
	s := startSurvivor(t)
	pid := pidOf(t, s.g.waitState("sj", "run", 10*time.Second))
	godPid := s.g.cmd.Process.Pid
	before := godFds(t, godPid)
	for i := 0; i < 100; i++ {
		if i%5 < 3 {
			s.g.mustCLI("restart", "sj")
		} else if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		j := s.g.waitJob("sj", 10*time.Second, "running a new process", func(j controlJob) bool {
			return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid != pid
		})
		pid = j.Processes[0].Pid
	}
	if a, b, c := s.askAll(t); a != pid || b != pid || c != pid {
		t.Fatalf("after 100 restarts: answers from %d %d %d, want %d", a, b, c, pid)
	}
	// The control connections of the status polls close on god's side a little later.
	var after fdSummary
	if !testutil.Poll(5*time.Second, func() bool { after = godFds(t, godPid); return after.same(before) }) {
		t.Fatalf("god's fds before 100 restarts: %+v\nafter: %+v\n%s", before, after, strings.Join(after.links, "\n"))
	}
	t.Logf("god's fds before and after 100 restarts: %d sockets, %d others, pipes %d before and %d after (no new pipe without a live child holding it)",
		after.sockets, after.others, before.pipes, after.pipes)
}

// fdSummary counts a process's fds by kind.
type fdSummary struct {
	sockets, others, pipes int
	orphanPipes            map[string]bool // pipes no live child holds (e.g. one god inherited)
	links                  []string        // every fd, for the failure message
}

// same reports whether no fd leaked between s and before.
func (s fdSummary) same(before fdSummary) bool {
	for p := range s.orphanPipes {
		if !before.orphanPipes[p] {
			return false
		}
	}
	return s.sockets == before.sockets && s.others == before.others
}

// godFds reads /proc/PID/fd of god and of its children.
func godFds(t testing.TB, pid int) fdSummary {
	t.Helper()
	links := func(pid int) map[string]string {
		dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
		ents, _ := os.ReadDir(dir)
		out := map[string]string{}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
				out[e.Name()] = l
			}
		}
		return out
	}
	childPipes := map[string]bool{}
	tasks, _ := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "children"))
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			if cpid, err := strconv.Atoi(c); err == nil {
				for _, l := range links(cpid) {
					childPipes[l] = true
				}
			}
		}
	}
	s := fdSummary{orphanPipes: map[string]bool{}}
	for fd, l := range links(pid) {
		s.links = append(s.links, fd+" -> "+l)
		switch {
		case strings.HasPrefix(l, "socket:"):
			s.sockets++
		case strings.HasPrefix(l, "pipe:"):
			s.pipes++
			if !childPipes[l] && fd != "1" && fd != "2" { // 1 and 2: the test's pipes to god
				s.orphanPipes[l] = true
			}
		default:
			s.others++
		}
	}
	return s
}

// TestSocketBadInput: sockets that cannot be opened (a bad address, a relative unix path, a port
// in use, a directory the job may not write) leave their job with a clear reason that names the
// job and the address, in status and in the log, while the other jobs run.
func TestSocketBadInput(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	jobs := map[string]bashJob{
		"good": sockJob([]string{sockjobBin, "serve", "-names", "web"}, []string{"web=tcp://" + freePort(t)}, []string{"notify"}, nil),
	}
	want := map[string]string{ // job -> the address its reason must name
		"badaddr": "tcp://999.1.1.1:80",
		"relunix": "unix://relative",
		"inuse":   "tcp://" + busy.Addr().String(),
		// an option that does not apply to the kind, and one the kernel refuses
		"badopt":  "udp://127.0.0.1:1?backlog=5",
		"refused": "tcp://127.0.0.1:0?bind-to-device=nosuchdev9",
	}
	wantOpt := map[string]string{"badopt": "option backlog: does not apply to udp", "refused": "option bind-to-device=nosuchdev9: setsockopt"}
	// A directory the job may not create its socket in: one without write permission, or, for
	// root (who writes anywhere), sysfs, which refuses new files to everyone.
	noperm := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(noperm, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		noperm = "/sys"
	}
	want["noperm"] = "unix://" + filepath.Join(noperm, "watchgod-test-"+strconv.Itoa(os.Getpid())+".sock")
	for job, addr := range want {
		jobs[job] = sockJob([]string{sockjobBin, "serve", "-names", "web"}, []string{"web=" + addr}, []string{"notify"}, nil)
	}
	g := newGod(t)
	writeLoader(t, g.dir, "bad", bashLoader{Jobs: jobs})
	g.start("--restart-limit", "2", "--backoff-max", "200ms")
	for job, addr := range want {
		j := g.waitJob(job, 10*time.Second, "failed with a reason", func(j controlJob) bool {
			return j.State == "failed" || j.State == "backoff"
		})
		if !strings.Contains(j.Reason, "job "+job) || !strings.Contains(j.Reason, addr) {
			t.Errorf("job %s: reason %q does not name the job and %s", job, j.Reason, addr)
		}
		if opt := wantOpt[job]; !strings.Contains(j.Reason, opt) {
			t.Errorf("job %s: reason %q does not name the option (%s)", job, j.Reason, opt)
		}
		g.waitLog(5*time.Second, "an error about "+job, func(r record) bool {
			return r.Level == "ERROR" && strings.Contains(r.Raw, "job "+job) && strings.Contains(r.Raw, addr)
		})
	}
	g.waitState("good", "run", 10*time.Second)
	for _, r := range g.logs(0, func(r record) bool { return r.Level == "ERROR" && strings.Contains(r.Raw, "listen") }) {
		t.Logf("log: %s", r.Raw)
	}
}

// TestSocketListenChanges: a loader whose listen changes gives the job its new socket on the next
// rescan and restart; the old address is closed.
func TestSocketListenChanges(t *testing.T) {
	t.Parallel()
	oldAddr, newAddr := freePort(t), freePort(t)
	g := newGod(t)
	write := func(addr string) {
		writeLoader(t, g.dir, "moving", bashLoader{Jobs: map[string]bashJob{
			"mover": sockJob([]string{sockjobBin, "serve", "-names", "web"}, []string{"web=tcp://" + addr}, []string{"notify"}, nil),
		}})
	}
	write(oldAddr)
	g.start()
	pid := pidOf(t, g.waitState("mover", "run", 10*time.Second))
	if r, err := ask("tcp", oldAddr, 10*time.Second); err != nil || answeredBy(r) != pid {
		g.fatalf("old address: %q %v", r, err)
	}
	write(newAddr)
	g.mustCLI("rescan")
	g.mustCLI("restart", "mover")
	j := g.waitJob("mover", 10*time.Second, "serving the new socket", func(j controlJob) bool {
		return j.State == "run" && len(j.Sockets) == 1 && j.Sockets[0] == "web=tcp://"+newAddr && len(j.Processes) == 1 && j.Processes[0].Pid != pid
	})
	pid = j.Processes[0].Pid
	if r, err := ask("tcp", newAddr, 10*time.Second); err != nil || answeredBy(r) != pid {
		g.fatalf("new address: %q %v, want an answer from %d", r, err, pid)
	}
	eventually(t, 5*time.Second, "the old address closed", func() bool {
		c, err := net.DialTimeout("tcp", oldAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
}
