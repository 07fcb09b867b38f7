package reaper

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// expected tells which of god's children whose exit god expects (it just signalled them to stop)
// have exited, so that the reaper waits for each of those by its pid.
//
// wait4(-1) finds a zombie by walking god's children from the first one, the live ones included:
// with thousands of children, each exit reaped that way cost a walk of the live ones, and a stop
// of N jobs O(N²) in the kernel (measured, 2000 jobs: one batch of 1241 exits took 609 ms to
// reap, with the kernel's tasklist_lock held for reading all along, which stalls every fork and
// exit on the machine). A pidfd turns readable when its process exits, and wait4(pid) is one
// look. So when god signals a child of its own (Expect), it opens the child's pidfd into one
// epoll set, one shot each; the reaper takes the ready ones first (take) and waits for those
// pids one by one, and the wait4(-1) that follows only has the rest to find.
//
// The pidfds are opened when a stop is signalled, not at every fork: a pidfd is an fd for as long
// as its process lives, and fds are what a god of many jobs runs short of first (two pipes a
// job). When one cannot be opened (no fds, an old kernel), the exit is found by wait4(-1) as
// before: the set is a shortcut, never the only way.
type expected struct {
	ep *os.File // the epoll set of pidfds, in Go's netpoller: readable when a pidfd in it is

	mu     sync.Mutex
	pidfds map[int]int // pid -> its pidfd in the set
	ready  []int       // pids whose pidfd turned readable, not taken yet
	kick   chan struct{}
}

// newExpected makes the epoll set and the goroutine that wakes the reaper (kick) when a pidfd in
// it turns readable; nil when the kernel has no pidfds or epoll cannot be had.
func newExpected() *expected {
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return nil
	}
	unix.Close(self)
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil
	}
	x := &expected{ep: os.NewFile(uintptr(fd), "pidfd-epoll"), pidfds: map[int]int{}, kick: make(chan struct{}, 1)}
	rc, err := x.ep.SyscallConn()
	if err != nil {
		x.ep.Close()
		return nil
	}
	go x.watch(rc)
	return x
}

// watch drains the set's ready pidfds into ready and kicks the reaper, until the set is closed.
func (x *expected) watch(rc syscall.RawConn) {
	for {
		got := 0
		err := rc.Read(func(fd uintptr) bool {
			got = x.drain(int(fd))
			return got > 0 // else: wait until the set is readable
		})
		if err != nil {
			return // closed
		}
		select {
		case x.kick <- struct{}{}:
		default:
		}
	}
}

// drain moves every pid whose pidfd is readable into ready; it says how many. The reaper drains
// too before it reaps (take), so that an exit whose SIGCHLD came first is still taken by pid.
func (x *expected) drain(epfd int) int {
	var events [256]unix.EpollEvent
	total := 0
	for {
		n, err := unix.EpollWait(epfd, events[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return total
		}
		x.mu.Lock()
		for _, e := range events[:n] {
			x.ready = append(x.ready, int(e.Fd))
		}
		x.mu.Unlock()
		total += n
		if n < len(events) {
			return total
		}
	}
}

// add opens pid's pidfd into the set, once. The caller holds the reaper's lock and god waits for
// pid, so the pid is not reaped meanwhile: the pidfd is the child's.
func (x *expected) add(pid int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if _, ok := x.pidfds[pid]; ok {
		return nil
	}
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: int32(pid)}
	if err := x.withSet(func(epfd int) error { return unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &ev) }); err != nil {
		unix.Close(fd)
		return fmt.Errorf("epoll of the pidfd of %d: %w", pid, err)
	}
	x.pidfds[pid] = fd
	return nil
}

// withSet runs f with the set's fd.
func (x *expected) withSet(f func(epfd int) error) error {
	rc, err := x.ep.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// take returns the pids whose pidfd turned readable since the last take, draining the set first.
func (x *expected) take() []int {
	_ = x.withSet(func(epfd int) error { x.drain(epfd); return nil })
	x.mu.Lock()
	defer x.mu.Unlock()
	out := x.ready
	x.ready = nil
	return out
}

// forget closes pid's pidfd once pid is reaped or no longer god's to wait for (closing it takes
// it out of the set). Called with the reaper's lock held, before the pid can be reused.
func (x *expected) forget(pid int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if fd, ok := x.pidfds[pid]; ok {
		unix.Close(fd)
		delete(x.pidfds, pid)
	}
}

// close ends the watch and closes every pidfd.
func (x *expected) close() {
	x.ep.Close()
	x.mu.Lock()
	defer x.mu.Unlock()
	for pid, fd := range x.pidfds {
		unix.Close(fd)
		delete(x.pidfds, pid)
	}
}
