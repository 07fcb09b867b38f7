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
//     connections wait in the shared accept queue for them instead of being refused;
//  2. it waits (up to 1 s) until every connection it already accepted has sent its request:
//     http.Server.Shutdown alone would close a connection accepted but not yet read, and its
//     client would see EOF;
//  3. it calls srv.Shutdown, which finishes the requests in flight (up to DrainTimeout) and
//     closes idle keep-alive connections.
//
// It returns nil after a clean drain. Use it as the last call of a job's main.
func ServeHTTP(srv *http.Server, ln net.Listener) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	fresh := &freshConns{conns: map[net.Conn]bool{}}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		fresh.track(c, s)
		if prev != nil {
			prev(c, s)
		}
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	_ = Ready()

	select {
	case err := <-served:
		return err
	case <-sigs:
	}
	_ = Stopping()
	ln.Close()
	fresh.wait(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), DrainTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) && !errors.Is(serr, net.ErrClosed) {
		return serr
	}
	return err
}

// freshConns counts connections accepted whose first request has not been read yet.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]bool
	empty chan struct{}
}

func (f *freshConns) track(c net.Conn, s http.ConnState) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s == http.StateNew {
		f.conns[c] = true
		return
	}
	delete(f.conns, c)
	if len(f.conns) == 0 && f.empty != nil {
		close(f.empty)
		f.empty = nil
	}
}

// wait returns once no connection waits for its first request to be read, or after max.
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
