package reaper

import (
	"errors"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/testutil"
)

// TestReaperParallelStartsLoseNoExit starts many children that exit at once from several
// goroutines: forks run in parallel, yet the reaper must never reap a child before its Start has
// registered it (the exit would go to the orphans and its waiter would wait forever).
func TestReaperParallelStartsLoseNoExit(t *testing.T) {
	const workers, each = 8, 40
	r := New(nil)
	t.Cleanup(r.Close)
	type started struct {
		pid  int
		exit <-chan jobstate.Exit
	}
	var (
		mu   sync.Mutex
		kids []started
		wg   sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				pid, exit, err := r.Start(Attr{Path: "/bin/sh", Argv: []string{"sh", "-c", "exit 0"}, Setpgid: true})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				kids = append(kids, started{pid, exit})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.After(20 * time.Second)
	for _, k := range kids {
		select {
		case e := <-k.exit:
			if e.Pid != k.pid || !e.Success() {
				t.Errorf("pid %d: exit %+v, want its own clean exit", k.pid, e)
			}
		case <-deadline:
			t.Fatalf("pid %d: no exit delivered within 20 s (reaped before it was registered?)", k.pid)
		}
	}
	// Freeze holds back starts as well as reaping; Thaw lets them go on.
	r.Freeze()
	r.Thaw()
	pid, exit, err := r.Start(Attr{Path: "/bin/sh", Argv: []string{"sh", "-c", "exit 3"}})
	if err != nil {
		t.Fatalf("Start after Thaw: %v", err)
	}
	if e := testutil.Receive(t, exit, 20*time.Second, "the exit after Thaw"); e.Pid != pid || e.Code() != 3 {
		t.Fatalf("exit %+v, want pid %d code 3", e, pid)
	}
}

// TestReaperStaleOrphanOfReusedPid: the reaper remembers the exits of orphans it reaped (for a
// MAINPID= that arrives after its process died). pids wrap (pid_max may be 32768), so such a
// record can name a pid that a newer, live process has now: Watch and Adopt of that live process
// must register it, and deliver its own exit, not the stale one (or leave it unwatched: a
// daemon that escapes its job).
func TestReaperStaleOrphanOfReusedPid(t *testing.T) {
	r := New(nil)
	t.Cleanup(r.Close)
	for _, how := range []string{"watch", "adopt"} {
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid := cmd.Process.Pid
		stale := jobstate.Exit{Pid: pid, Time: time.Now().Add(-time.Minute)} // "exit 0" of an older process
		r.mu.Lock()
		r.rememberOrphan(stale)
		r.mu.Unlock()
		got := make(chan jobstate.Exit, 2)
		deliver := func(e jobstate.Exit) { got <- e }
		switch how {
		case "watch":
			if !r.Watch(pid, deliver) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("watch: live pid %d not watched: a stale orphan exit of its pid was taken for its own", pid)
			}
		case "adopt":
			if err := r.Adopt(pid, pid, deliver); err != nil {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("adopt %d: %v", pid, err)
			}
		}
		select {
		case e := <-got:
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("%s: the stale exit %+v was delivered for live pid %d", how, e, pid)
		default:
		}
		syscall.Kill(pid, syscall.SIGKILL)
		select {
		case e := <-got:
			if e.Status.Signal() != syscall.SIGKILL {
				t.Errorf("%s: exit %v, want its own SIGKILL", how, e.Status)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: no exit delivered for pid %d", how, pid)
		}
	}
}

// TestForkExecErrorNoFDs: Go's fork moves its exec status pipe above the highest fd the child
// gets; when that is past the open-files limit the fork fails with EBADF, which god reports as
// EMFILE (an fd shortage, which a job waits out) rather than as a bad fd.
func TestForkExecErrorNoFDs(t *testing.T) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	top := []uintptr{0, 1, uintptr(lim.Cur - 1)}
	if err := forkExecError(syscall.EBADF, top); !errors.Is(err, syscall.EMFILE) {
		t.Errorf("EBADF with fds at the limit: %v, want EMFILE", err)
	}
	if err := forkExecError(syscall.EBADF, []uintptr{0, 1, 2}); err != syscall.EBADF {
		t.Errorf("EBADF with low fds: %v, want EBADF as it is", err)
	}
	if err := forkExecError(syscall.ENOENT, top); err != syscall.ENOENT {
		t.Errorf("ENOENT: %v, want it as it is", err)
	}
}

// TestRestoredExitHeldThenClaimed: a restored child (god's new image after a re-exec) that exits
// before its job claims it is held, and Claim delivers it. The reaper holds it while the job's
// restore may be claiming other children: the held exits are guarded by the reaper's lock (the
// race detector caught a hold written without it, in the chaos soak's god upgrades).
func TestRestoredExitHeldThenClaimed(t *testing.T) {
	var pids []int
	for range 8 {
		c := exec.Command("true")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, c.Process.Pid)
	}
	r := NewRestored(nil, pids, nil)
	defer r.Close()
	// Let some exits be reaped (held) before their claims, as a restore after a re-exec does.
	testutil.Eventually(t, 10*time.Second, "an exit held", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.held) > 0
	})
	got := make(chan jobstate.Exit, len(pids))
	for _, pid := range pids {
		if err := r.Claim(pid, func(e jobstate.Exit) { got <- e }); err != nil {
			t.Fatalf("Claim(%d): %v", pid, err)
		}
	}
	seen := map[int]bool{}
	for range pids {
		e := testutil.Receive(t, got, 10*time.Second, "a claimed exit")
		if !e.Status.Exited() || e.Status.ExitStatus() != 0 || seen[e.Pid] {
			t.Fatalf("exit %+v: want each child once, exit 0", e)
		}
		seen[e.Pid] = true
	}
}

// TestReaperExpectedExits: children god expects to exit (Expect, then a signal) have their
// exits delivered, each once and to its own waiter, whether the reaper finds them by their pidfd
// or by wait4(-1) (a SIGCHLD may come first); every pidfd is closed once its child is reaped, and
// an Expect of a pid god does not wait for opens none.
func TestReaperExpectedExits(t *testing.T) {
	r := New(nil)
	t.Cleanup(r.Close)
	if r.exp == nil {
		t.Skip("no pidfds on this kernel")
	}
	const n = 50
	exits := map[int]<-chan jobstate.Exit{}
	for range n {
		pid, exit, err := r.Start(Attr{Path: "/bin/sleep", Argv: []string{"sleep", "100000"}, Setpgid: true})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		exits[pid] = exit
	}
	r.Expect(1) // not god's child: no pidfd
	for pid := range exits {
		r.Expect(pid)
		r.Expect(pid) // twice: one pidfd
	}
	r.exp.mu.Lock()
	open := len(r.exp.pidfds)
	r.exp.mu.Unlock()
	if open != n {
		t.Fatalf("%d pidfds open after Expect of %d children (and of pid 1), want %d", open, n, n)
	}
	for pid := range exits {
		if err := r.Signal(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM %d: %v", pid, err)
		}
	}
	for pid, exit := range exits {
		e := testutil.Receive(t, exit, 20*time.Second, "the exit of an expected child")
		if e.Pid != pid || e.Status.Signal() != syscall.SIGTERM {
			t.Errorf("pid %d: exit %+v, want its own SIGTERM", pid, e)
		}
	}
	// A pidfd is closed as its child is reaped, before the exit is delivered.
	r.exp.mu.Lock()
	open = len(r.exp.pidfds)
	r.exp.mu.Unlock()
	if open != 0 {
		t.Errorf("%d pidfds still open after every expected child was reaped", open)
	}
}
