package watchgod

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// DrainTimeout bounds how long ServeHTTP waits, after god asked the process to stop, for the
// requests it already accepted; connections still busy then are closed.
var DrainTimeout = 30 * time.Second

// IdleExit, when positive, makes ServeHTTP shut down gracefully and return nil (the process
// exits 0) once no connection has been busy (new, or serving a request) for that long. When it
// is 0, ServeHTTP reads the duration from GOD_IDLE_EXIT ("30s"), which god sets for a job with
// the idle-exit property; unset or invalid: no idle exit. A job of auto ["socket"] sleeps after
// such an exit and god starts it again on the next connection.
var IdleExit time.Duration

// ServeHTTP serves srv on ln, tells god the job is ready (READY=1, when NOTIFY_SOCKET is set),
// and on SIGTERM or SIGINT drains without failing a request:
//
//  1. it closes its listener: the socket stays open in god and in the next generation, so new
//     connections wait in the shared accept queue for them instead of being refused; it waits
//     until srv.Serve has returned, so every connection it accepted is tracked;
//  2. it waits (up to 1 s) until the first request of every connection it already accepted has
//     reached the handler: once Shutdown began, http.Server closes a connection whose request it
//     reads next without answering, and its client would see EOF (golang/go#65802);
//  3. it calls srv.Shutdown, which finishes the requests in flight (up to DrainTimeout) and
//     closes idle keep-alive connections.
//
// With an idle exit (IdleExit, GOD_IDLE_EXIT), it drains the same way once idle that long.
//
// It returns nil after a clean drain. Use it as the last call of a job's main. It wraps srv's
// ConnState, ConnContext and Handler (calling those already set) to see its connections.
func ServeHTTP(srv *http.Server, ln net.Listener) error {
	return ServeHTTPContext(context.Background(), srv, ln)
}

// ServeHTTPContext is ServeHTTP that also drains when ctx is done: for a process that is told to
// go by something other than a signal, such as a successor that took over (tableflip's
// Upgrader.Exit).
func ServeHTTPContext(ctx context.Context, srv *http.Server, ln net.Listener) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	fresh := &freshConns{conns: map[net.Conn]bool{}}
	idle := newIdleTimer(idleExit())
	defer idle.stop()
	prevState := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		fresh.track(c, s)
		idle.track(c, s)
		if prevState != nil {
			prevState(c, s)
		}
	}
	prevCtx := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevCtx != nil {
			ctx = prevCtx(ctx, c)
		}
		return context.WithValue(ctx, connKey{}, c)
	}
	h := srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			fresh.handled(c)
		}
		h.ServeHTTP(w, r)
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	_ = Ready()

	select {
	case err := <-served:
		return err
	case <-sigs:
	case <-ctx.Done():
	case <-idle.C:
	}
	_ = Stopping()
	ln.Close()
	// Serve returns once Accept fails on the closed listener. Before that, a connection it has
	// just accepted may not be tracked yet (no StateNew): neither fresh.wait nor Shutdown would
	// see it, and the process would exit under it. After it, every accepted one is tracked.
	serr := <-served
	fresh.wait(time.Second)
	drain, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	err := srv.Shutdown(drain)
	if serr != nil && !errors.Is(serr, http.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) {
		return serr
	}
	return err
}

// connKey is the context key under which ServeHTTP keeps a request's connection.
type connKey struct{}

// freshConns counts connections accepted whose first request has not reached the handler yet.
// http.Server drops such a connection without an answer once Shutdown began: after reading a
// request it checks for shutdown before calling the handler. StateActive is set before that
// check, so only the handler's start proves the request will be answered.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
	empty chan struct{}
}

// track adds a new connection and forgets one that is closed or hijacked.
func (f *freshConns) track(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		f.mu.Lock()
		f.conns[c] = true
		f.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		f.done(c)
	}
}

// handled forgets a connection whose request reached the handler.
func (f *freshConns) handled(c net.Conn) { f.done(c) }

func (f *freshConns) done(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.conns[c] {
		return
	}
	delete(f.conns, c)
	if len(f.conns) == 0 && f.empty != nil {
		close(f.empty)
		f.empty = nil
	}
}

// wait returns once no connection waits for its first request to be handled, or after max.
func (f *freshConns) wait(max time.Duration) {
	f.mu.Lock()
	if len(f.conns) == 0 {
		f.mu.Unlock()
		return
	}
	ch := make(chan struct{})
	f.empty = ch
	f.mu.Unlock()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// idleExitEnv is how god passes a job's idle-exit to its processes.
const idleExitEnv = "GOD_IDLE_EXIT"

// idleExit is the idle time after which ServeHTTP exits: IdleExit, else GOD_IDLE_EXIT; 0: never.
func idleExit() time.Duration {
	if IdleExit > 0 {
		return IdleExit
	}
	d, err := time.ParseDuration(os.Getenv(idleExitEnv))
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// idleTimer tells when a server has had no busy connection for a while: a connection is busy
// from its acceptance until its request is answered (new or active), and again with each request
// on it; an idle keep-alive connection does not keep the server up (Shutdown closes it).
type idleTimer struct {
	C <-chan struct{} // receives once the server has been idle for d; nil with no idle exit

	d     time.Duration
	c     chan struct{}
	mu    sync.Mutex
	conns map[net.Conn]bool // busy, by connection
	busy  int
	seq   int // the armed timer's number: a timer armed before the last change does nothing
	t     *time.Timer
}

// newIdleTimer starts the count: with no connection yet, the server is idle from now.
func newIdleTimer(d time.Duration) *idleTimer {
	it := &idleTimer{d: d}
	if d <= 0 {
		return it
	}
	it.c = make(chan struct{}, 1)
	it.C = it.c
	it.conns = map[net.Conn]bool{}
	it.mu.Lock()
	it.armLocked()
	it.mu.Unlock()
	return it
}

// track follows one connection's state and arms or disarms the timer.
func (it *idleTimer) track(c net.Conn, s http.ConnState) {
	if it.d <= 0 {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	was := it.conns[c]
	now := s == http.StateNew || s == http.StateActive
	if s == http.StateClosed || s == http.StateHijacked {
		delete(it.conns, c)
	} else {
		it.conns[c] = now
	}
	switch {
	case now && !was:
		it.busy++
		it.disarmLocked()
	case !now && was:
		it.busy--
		if it.busy == 0 {
			it.armLocked()
		}
	}
}

// armLocked starts the idle count again.
func (it *idleTimer) armLocked() {
	it.disarmLocked()
	seq := it.seq
	it.t = time.AfterFunc(it.d, func() {
		it.mu.Lock()
		defer it.mu.Unlock()
		if it.seq == seq && it.busy == 0 {
			select {
			case it.c <- struct{}{}:
			default:
			}
		}
	})
}

// disarmLocked stops the idle count; a timer already firing sees the new seq and does nothing.
func (it *idleTimer) disarmLocked() {
	it.seq++
	if it.t != nil {
		it.t.Stop()
		it.t = nil
	}
}

// stop ends the timer when ServeHTTP returns.
func (it *idleTimer) stop() {
	if it.d <= 0 {
		return
	}
	it.mu.Lock()
	it.disarmLocked()
	it.mu.Unlock()
}
