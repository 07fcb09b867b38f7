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
	prevState := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		fresh.track(c, s)
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
