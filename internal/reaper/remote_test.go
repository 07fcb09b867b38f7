package reaper

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/forkserver"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/procfs"
)

// TestMain makes the test binary the fork server when it is started as one, as god's main does.
func TestMain(m *testing.M) {
	forkserver.RunIfRequested()
	os.Exit(m.Run())
}

// highPipe opens pipes until one's write end is at least remoteFrom (a big fd table, as in a god
// with hundreds of jobs) and returns its ends; the rest are closed at cleanup.
func highPipe(t testing.TB) (rd, wr int) {
	t.Helper()
	var all []int
	t.Cleanup(func() {
		for _, fd := range all {
			unix.Close(fd)
		}
	})
	for {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatalf("pipe: %v", err)
		}
		all = append(all, p[0], p[1])
		if p[1] >= remoteFrom {
			return p[0], p[1]
		}
	}
}

// serverPid is the pid of the reaper's running fork server, 0 if none.
func serverPid(r *Reaper) int {
	r.remote.mu.Lock()
	defer r.remote.mu.Unlock()
	if r.remote.c == nil {
		return 0
	}
	return r.remote.pid
}

// waitExit waits for one exit, with a generous deadline.
func waitExit(t *testing.T, c <-chan jobstate.Exit) jobstate.Exit {
	t.Helper()
	select {
	case e := <-c:
		return e
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s")
		return jobstate.Exit{}
	}
}

// TestForkServerStartsGodsOwnChildren: with a big fd table, a child is started by the fork
// server, yet it is this process's child (CLONE_PARENT): it reports our pid as its parent, its
// exit is reaped here with its status, and an exec that fails returns its errno.
func TestForkServerStartsGodsOwnChildren(t *testing.T) {
	r := New(nil)
	r.UseForkServer("/proc/self/exe")
	t.Cleanup(r.Close)
	rd, wr := highPipe(t)
	pid, exit, err := r.Start(Attr{Path: "/bin/sh", Argv: []string{"sh", "-c", "echo $PPID; exit 7"},
		Files: []uintptr{uintptr(wr), uintptr(wr), uintptr(wr)}, Setpgid: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	server := serverPid(r)
	if server == 0 {
		t.Fatal("no fork server runs after a start from a big fd table")
	}
	if cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", server)); !strings.HasPrefix(string(cmd), "god-forkserver") {
		t.Fatalf("pid %d is not the fork server: %q", server, cmd)
	}
	e := waitExit(t, exit)
	if e.Pid != pid || !e.Status.Exited() || e.Status.ExitStatus() != 7 {
		t.Fatalf("exit = %+v (%v), want pid %d status 7", e, e.Status, pid)
	}
	buf := make([]byte, 64)
	n, err := unix.Read(rd, buf)
	if err != nil {
		t.Fatalf("read the child's output: %v", err)
	}
	if got := strings.TrimSpace(string(buf[:n])); got != strconv.Itoa(os.Getpid()) {
		t.Fatalf("the child's parent is %s, want this process, %d (the server is %d)", got, os.Getpid(), server)
	}

	_, _, err = r.Start(Attr{Path: "/nonexistent/prog", Argv: []string{"prog"},
		Files: []uintptr{uintptr(wr), uintptr(wr), uintptr(wr)}})
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("start of a missing program: err = %v, want ENOENT", err)
	}
	if serverPid(r) != server {
		t.Fatalf("the fork server changed from %d to %d", server, serverPid(r))
	}
}

// TestForkServerParallelStartsLoseNoExit is TestReaperParallelStartsLoseNoExit through the fork
// server: children that exit at once are never reaped before their Start registered them.
func TestForkServerParallelStartsLoseNoExit(t *testing.T) {
	const workers, each = 8, 25
	r := New(nil)
	r.UseForkServer("/proc/self/exe")
	t.Cleanup(r.Close)
	_, wr := highPipe(t)
	files := []uintptr{uintptr(wr), uintptr(wr), uintptr(wr)}
	var (
		mu    sync.Mutex
		exits []<-chan jobstate.Exit
		wg    sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				_, exit, err := r.Start(Attr{Path: "/bin/sh", Argv: []string{"sh", "-c", "exit 0"}, Files: files, Setpgid: true})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				exits = append(exits, exit)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("start: %v", err)
	}
	if serverPid(r) == 0 {
		t.Fatal("the starts did not go through a fork server")
	}
	for _, c := range exits {
		if e := waitExit(t, c); !e.Status.Exited() || e.Status.ExitStatus() != 0 {
			t.Fatalf("exit %+v", e)
		}
	}
}

// TestForkServerKilledIsReplaced: a fork server killed between starts (by anyone with god's
// rights) costs no start: the next one starts a new server, and the old one's exit is reaped.
func TestForkServerKilledIsReplaced(t *testing.T) {
	r := New(nil)
	r.UseForkServer("/proc/self/exe")
	t.Cleanup(r.Close)
	_, wr := highPipe(t)
	files := []uintptr{uintptr(wr), uintptr(wr), uintptr(wr)}
	_, exit, err := r.Start(Attr{Path: "/bin/true", Argv: []string{"true"}, Files: files})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	waitExit(t, exit)
	old := serverPid(r)
	r.remote.mu.Lock()
	gone := r.remote.gone
	r.remote.mu.Unlock()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the fork server %d: %v", old, err)
	}
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatalf("the killed fork server %d was not reaped", old)
	}
	_, exit, err = r.Start(Attr{Path: "/bin/true", Argv: []string{"true"}, Files: files})
	if err != nil {
		t.Fatalf("start after the server was killed: %v", err)
	}
	if e := waitExit(t, exit); e.Status.ExitStatus() != 0 {
		t.Fatalf("exit %+v", e)
	}
	if now := serverPid(r); now == 0 || now == old {
		t.Fatalf("fork server after the kill: %d (killed %d)", now, old)
	}
}

// TestForkServerClosedWithReaper: Close ends the fork server, and waits until it is reaped, so
// that god leaves no process of its own behind.
func TestForkServerClosedWithReaper(t *testing.T) {
	r := New(nil)
	r.UseForkServer("/proc/self/exe")
	_, wr := highPipe(t)
	_, exit, err := r.Start(Attr{Path: "/bin/true", Argv: []string{"true"}, Files: []uintptr{uintptr(wr), uintptr(wr), uintptr(wr)}})
	if err != nil {
		r.Close()
		t.Fatalf("start: %v", err)
	}
	waitExit(t, exit)
	server := serverPid(r)
	r.Close()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", server)); err == nil {
		t.Fatalf("fork server %d still exists after Close", server)
	}
}

// TestSmallTableForksItself: below remoteFrom no fork server is started.
func TestSmallTableForksItself(t *testing.T) {
	r := New(nil)
	r.UseForkServer("/proc/self/exe")
	t.Cleanup(r.Close)
	_, exit, err := r.Start(Attr{Path: "/bin/true", Argv: []string{"true"}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	waitExit(t, exit)
	if pid := serverPid(r); pid != 0 {
		t.Fatalf("fork server %d started for a small fd table", pid)
	}
}

// BenchmarkStartManyFDs starts /bin/true from a process holding 10 000 fds (a god with 5000 jobs'
// pipes), forking itself and through the fork server, and reports the wall time and the CPU
// (this process's, and the children's: their exec closes the fds a fork copied; the fork
// server's own included) per start.
func BenchmarkStartManyFDs(b *testing.B) {
	_, wr := highPipe(b)
	for range 5000 {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			b.Fatalf("pipe: %v", err)
		}
		b.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	}
	files := []uintptr{uintptr(wr), uintptr(wr), uintptr(wr)}
	for _, server := range []bool{false, true} {
		b.Run(map[bool]string{false: "self", true: "forkserver"}[server], func(b *testing.B) {
			r := New(nil)
			defer r.Close()
			if server {
				r.UseForkServer("/proc/self/exe")
			}
			var self0, kids0 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
			syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids0)
			b.ResetTimer()
			for range b.N {
				_, exit, err := r.Start(Attr{Path: "/bin/true", Argv: []string{"true"}, Files: files})
				if err != nil {
					b.Fatalf("start: %v", err)
				}
				<-exit
			}
			b.StopTimer()
			var serverCPU float64 // the server is reaped (counted in RUSAGE_CHILDREN) only at Close
			if pid := serverPid(r); pid != 0 {
				s, _ := procfs.Usage(pid, make([]byte, 1024))
				serverCPU = s * 1e6
			}
			var self1, kids1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
			syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids1)
			cpu := func(a, b syscall.Rusage) float64 {
				return float64(b.Utime.Nano()+b.Stime.Nano()-a.Utime.Nano()-a.Stime.Nano()) / 1e3
			}
			b.ReportMetric(cpu(self0, self1)/float64(b.N), "self-µs/op")
			b.ReportMetric((cpu(kids0, kids1)+serverCPU)/float64(b.N), "children-µs/op")
		})
	}
}
