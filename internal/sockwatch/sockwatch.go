// Package sockwatch tells when a listening socket has a client waiting, without accepting it.
//
// god starts an on-demand job (auto ["socket"]) on the first connection or datagram on one of
// its sockets. A pending connection makes a listening socket readable, as a datagram does a
// datagram socket: an epoll set sees it, and the connection stays in the kernel's queue for the
// job's process to accept. One goroutine serves every watch, so a thousand sleeping jobs cost
// one thread blocked in epoll_wait, not one each.
//
// The watcher polls copies (dups) of the fds it is given: the caller may close its own at any
// time, and the copies share the socket's file description, so the blocking mode that job
// processes rely on is left as it is (epoll does not need O_NONBLOCK).
package sockwatch

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrClosed is the error of Watch after Close.
var ErrClosed = errors.New("sockwatch: closed")

// wakeKey is the epoll key of the eventfd that wakes the loop for Close.
const wakeKey = 0

// Watcher watches sockets for readability; it is safe for concurrent use.
type Watcher struct {
	epfd   int
	wakefd int
	done   chan struct{}

	mu      sync.Mutex
	closed  bool
	nextKey int32
	byKey   map[int32]*watch // every registered fd, by its epoll key
}

// watch is one Watch call: a set of fds that fires once, on the first that is readable.
type watch struct {
	fds  map[int32]int // epoll key -> our dup
	fire func()
}

// New starts a Watcher and its goroutine.
func New() (*Watcher, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("sockwatch: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("sockwatch: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeKey}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wakefd)
		return nil, fmt.Errorf("sockwatch: add eventfd: %w", err)
	}
	w := &Watcher{epfd: epfd, wakefd: wakefd, done: make(chan struct{}), nextKey: wakeKey + 1, byKey: map[int32]*watch{}}
	go w.loop()
	return w, nil
}

// Watch calls fire once, from the Watcher's goroutine, when any of fds is readable (at once if one
// already is), unless cancel was called first. fire must not block: it hands the news on. fds
// stay the caller's; the Watcher polls dups of them. cancel is idempotent; after it returns,
// fire is not called (unless it already runs).
func (w *Watcher) Watch(fds []int, fire func()) (cancel func(), err error) {
	return w.watch(fds, unix.EPOLLIN, fire)
}

// WatchHangup calls fire once, like Watch, when fd hangs up or has an error (EPOLLHUP,
// EPOLLERR: a connection whose peer closed it, a pipe whose writers are gone), not when it is
// readable. An fd epoll cannot watch (a regular file) is an error wrapping unix.EPERM.
func (w *Watcher) WatchHangup(fd int, fire func()) (cancel func(), err error) {
	return w.watch([]int{fd}, 0, fire) // epoll always reports EPOLLHUP and EPOLLERR
}

func (w *Watcher) watch(fds []int, events uint32, fire func()) (cancel func(), err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	wt := &watch{fds: map[int32]int{}, fire: fire}
	for _, fd := range fds {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			w.dropLocked(wt)
			return nil, fmt.Errorf("sockwatch: dup fd %d: %w", fd, err)
		}
		key := w.nextKey
		w.nextKey++
		if w.nextKey <= wakeKey { // wrapped around after 2^31 watches
			w.nextKey = wakeKey + 1
		}
		wt.fds[key] = dup
		w.byKey[key] = wt
		ev := unix.EpollEvent{Events: events | unix.EPOLLONESHOT, Fd: key}
		if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, dup, &ev); err != nil {
			w.dropLocked(wt)
			return nil, fmt.Errorf("sockwatch: watch fd %d: %w", fd, err)
		}
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.dropLocked(wt)
	}, nil
}

// dropLocked unregisters a watch and closes its dups; it is a no-op for one already dropped.
func (w *Watcher) dropLocked(wt *watch) {
	for key, fd := range wt.fds {
		if w.byKey[key] == wt {
			delete(w.byKey, key)
		}
		_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		unix.Close(fd)
	}
	clear(wt.fds)
}

// loop waits for readable sockets and fires their watches.
func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 64)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		var fire []func()
		w.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == wakeKey {
				if w.closed {
					w.mu.Unlock()
					return
				}
				continue
			}
			if wt := w.byKey[ev.Fd]; wt != nil {
				w.dropLocked(wt)
				fire = append(fire, wt.fire)
			}
		}
		w.mu.Unlock()
		for _, f := range fire {
			f()
		}
	}
}

// Close ends every watch (none fires) and the goroutine.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	for _, wt := range w.byKey {
		w.dropLocked(wt)
	}
	var one [8]byte
	one[0] = 1 // an eventfd counter, native endian: 1 on little-endian hosts, non-zero on any
	_, _ = unix.Write(w.wakefd, one[:])
	w.mu.Unlock()
	<-w.done
	unix.Close(w.epfd)
	unix.Close(w.wakefd)
	return nil
}
