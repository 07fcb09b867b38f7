package reaper

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emielm/watchgod/internal/forkserver"
	"github.com/emielm/watchgod/internal/jobstate"
)

// A fork copies the caller's fd table and the exec closes the copy's close-on-exec fds: from a
// god with thousands of jobs' pipes open, every start costs milliseconds of kernel time, and a
// start of N jobs O(N²). Once god's table is big, its children are started by a fork server
// (internal/forkserver), a child of god with an almost empty table, which makes them god's own
// children with CLONE_PARENT. It is started when first needed and exits when idle, so that a
// small god (the common case) has no extra process, and an idle big one neither.

// remoteFrom is the fd number from which god's fd table counts as big: once god has had an fd
// this high open, starts go through the fork server (below, a fork costs less than the round
// trip). A fork's cost follows the highest open fd, not the count: fds are allocated lowest
// first, so the highest fd handed to a child so far tells it without a syscall, and a new image
// after god upgrade, whose inherited fds leave holes below them, learns its highest fd from
// /proc/self/fd once (UseForkServer). The mark only rises: a god that shrank keeps using the
// server, whose cost is about a fork's.
const remoteFrom = 512

// remoteIdle is how long the fork server stays without a start before god closes it.
const remoteIdle = 10 * time.Second

// remote is the reaper's fork server, while one runs.
type remote struct {
	mu       sync.Mutex
	exe      string // the binary to run as the server; "" until UseForkServer
	c        *forkserver.Client
	pid      int
	inflight int
	last     time.Time
	idle     *time.Timer
	gone     chan struct{} // closed when the server's exit is reaped
	said     bool          // a failure to start it was logged
	fdHigh   atomic.Int64  // the highest fd number seen open (remoteFrom)
}

// UseForkServer lets the reaper start its children through a fork server, god's binary at exe
// run with forkserver.Env, once god's fd table is big. The binary must call
// forkserver.RunIfRequested first thing.
func (r *Reaper) UseForkServer(exe string) {
	r.remote.mu.Lock()
	r.remote.exe = exe
	r.remote.mu.Unlock()
	r.remote.noteFd(highestOpenFd())
}

// noteFd raises the high-water mark of god's fd numbers to fd.
func (m *remote) noteFd(fd int) {
	for {
		cur := m.fdHigh.Load()
		if int64(fd) <= cur || m.fdHigh.CompareAndSwap(cur, int64(fd)) {
			return
		}
	}
}

// highestOpenFd is the highest fd number open in god now, from /proc/self/fd (0 if unreadable).
func highestOpenFd() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	high := 0
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			high = max(high, fd)
		}
	}
	return high
}

// forkExec starts a's child: through the fork server when it is worth it and running or
// startable, else with a fork of god's own. Called with r.forking held for reading.
func (r *Reaper) forkExec(a Attr, attr *syscall.ProcAttr) (int, error) {
	if r.worthRemote(a.Files) {
		if c := r.remoteClient(); c != nil {
			pid, err := c.Spawn(forkserver.Attr{
				Path: a.Path, Argv: a.Argv, Env: a.Env, Dir: a.Dir, Files: a.Files,
				Setpgid: a.Setpgid, CgroupFD: a.CgroupFD, Credential: a.Credential,
			})
			r.remoteDone(c)
			if !errors.Is(err, forkserver.ErrUnavailable) {
				return pid, err
			}
		}
	}
	return syscall.ForkExec(a.Path, a.Argv, attr)
}

// worthRemote says whether god's fd table is big enough for the fork server (remoteFrom), noting
// the child's fds in the high-water mark first.
func (r *Reaper) worthRemote(files []uintptr) bool {
	high := 0
	for _, f := range files {
		high = max(high, int(f))
	}
	r.remote.noteFd(high)
	return r.remote.fdHigh.Load() >= remoteFrom
}

// remoteClient returns the running fork server's client, counted as in use until remoteDone,
// starting the server if there is none. nil: god forks itself (no server allowed, or it cannot
// start: said once).
func (r *Reaper) remoteClient() *forkserver.Client {
	m := &r.remote
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.exe == "" {
		return nil
	}
	if m.c != nil && m.c.Down() {
		m.c.Close()
		m.c = nil
	}
	if m.c == nil {
		if err := r.startRemote(); err != nil {
			if !m.said && r.log != nil {
				m.said = true
				r.log.Warn("cannot start the fork server: god forks its children itself", "err", err)
			}
			return nil
		}
	}
	m.inflight++
	return m.c
}

// remoteDone ends a use of c, and arms the idle timer when it was the last.
func (r *Reaper) remoteDone(c *forkserver.Client) {
	m := &r.remote
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inflight--
	m.last = time.Now()
	if m.inflight == 0 && m.c == c && m.idle == nil {
		m.idle = time.AfterFunc(remoteIdle, r.remoteIdleCheck)
	}
}

// remoteIdleCheck closes the server once no start used it for remoteIdle.
func (r *Reaper) remoteIdleCheck() {
	m := &r.remote
	m.mu.Lock()
	defer m.mu.Unlock()
	m.idle = nil
	if m.c == nil || m.inflight > 0 {
		return
	}
	if wait := remoteIdle - time.Since(m.last); wait > 0 {
		m.idle = time.AfterFunc(wait, r.remoteIdleCheck)
		return
	}
	m.c.Close() // the server exits; its exit is reaped like any child's
	m.c = nil
}

// startRemote starts a fork server as a child of god, registered like any child so that its exit
// is reaped and known. Called with r.remote.mu and r.forking (for reading) held.
func (r *Reaper) startRemote() error {
	m := &r.remote
	godEnd, serverEnd, err := forkserver.Pair()
	if err != nil {
		return err
	}
	defer serverEnd.Close()
	c, err := forkserver.NewClient(godEnd)
	if err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		c.Close()
		return err
	}
	defer null.Close()
	pid, err := syscall.ForkExec(m.exe, []string{"god-forkserver"}, &syscall.ProcAttr{
		Env: []string{forkserver.Env + "=1"},
		// fd 2 by number: os.Stderr.Fd() would put god's own stderr into blocking mode.
		Files: []uintptr{null.Fd(), null.Fd(), uintptr(syscall.Stderr), serverEnd.Fd()},
	})
	if err != nil {
		c.Close()
		return err
	}
	// Its reaped exit is when god knows for sure the server is gone: the client is closed then,
	// so that the next start starts a new server rather than find a dead one's socket.
	gone := make(chan struct{})
	r.mu.Lock()
	r.waiting[pid] = func(jobstate.Exit) { c.Close(); close(gone) }
	delete(r.orphans, pid)
	r.mu.Unlock()
	m.c, m.pid, m.gone = c, pid, gone
	return nil
}

// stopRemote closes the fork server and waits a while for its exit, so that god leaves no
// process behind when it exits.
func (r *Reaper) stopRemote() {
	m := &r.remote
	m.mu.Lock()
	c, gone := m.c, m.gone
	m.c, m.gone = nil, nil
	if m.idle != nil {
		m.idle.Stop()
		m.idle = nil
	}
	m.mu.Unlock()
	if c != nil {
		c.Close()
	}
	if gone != nil {
		select {
		case <-gone:
		case <-time.After(2 * time.Second):
		}
	}
}
