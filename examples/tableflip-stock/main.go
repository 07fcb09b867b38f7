// Command tableflip-stock is an HTTP server that upgrades itself with github.com/cloudflare/tableflip
// exactly as tableflip's README shows, with nothing of god in it: no watchgod import, no
// MAINPID=, no READY=1. On SIGHUP it starts a new copy of its binary that inherits the listening
// socket; the new copy writes its pid to the PIDFile once it is ready, and the old one drains
// and exits. That pid file is all god needs to follow it: a loader declares
//
//	exec     ["/path/to/tableflip-stock", "-listen", "127.0.0.1:8080", "-pid-file", "/run/web.pid"]
//	reload   ["signal", "SIGHUP"]
//	pid-file ["/run/web.pid"]
//
// and leaves `ready` at its default (ready once started): the program says nothing when it is
// ready, and its successor is ready by the time it writes the pid file (tableflip writes it in
// Ready, after Listen). See docs/protocol.md, "pid-file".
//
// It drains as a careful net/http server must (see the end of main): close the listener, let
// Serve return, wait until every accepted connection has its request, then Shutdown.
//
// Its answer names its pid and how many upgrades led to it ("generation"), counted by the
// program itself in its environment, which each copy passes to the next.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"
)

// generationEnv carries the upgrade count from a copy to its successor.
const generationEnv = "TABLEFLIP_STOCK_GENERATION"

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "`address` to listen on")
	pidFile := flag.String("pid-file", "", "`path` of the pid file")
	flag.Parse()
	log.SetPrefix(fmt.Sprintf("%d ", os.Getpid()))

	gen, _ := strconv.Atoi(os.Getenv(generationEnv))
	upg, err := tableflip.New(tableflip.Options{PIDFile: *pidFile})
	if err != nil {
		log.Fatalln("tableflip:", err)
	}
	defer upg.Stop()

	// Upgrade on SIGHUP; the new copy counts one generation more.
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP)
		for range sig {
			os.Setenv(generationEnv, strconv.Itoa(gen+1))
			if err := upg.Upgrade(); err != nil {
				log.Println("upgrade failed:", err)
			}
		}
	}()

	// SIGTERM (a stop) ends the process the way an upgrade does: drain, then exit.
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		<-sig
		upg.Stop()
	}()

	ln, err := upg.Listen("tcp", *listen)
	if err != nil {
		log.Fatalln("listen:", err)
	}
	fresh := newFreshConns()
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         fresh.track,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fresh.handled(r.Context().Value(connKey{}).(net.Conn))
			fmt.Fprintf(w, "tableflip-stock: pid %d, generation %d\n", os.Getpid(), gen)
		}),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, net.ErrClosed) && err != http.ErrServerClosed {
			log.Println("serve:", err)
		}
	}()

	log.Printf("ready, generation %d", gen)
	if err := upg.Ready(); err != nil {
		log.Fatalln("ready:", err)
	}
	<-upg.Exit()

	// A deadline on the drain: no later upgrade can happen while this copy lives.
	time.AfterFunc(30*time.Second, func() {
		log.Println("drain timed out")
		os.Exit(1)
	})
	// Close the listener and let Serve return before Shutdown: Shutdown alone may find no
	// connection while Serve still holds one it has just accepted, return, and let the process
	// exit under it (the client sees EOF). The successor keeps the socket open: no connection
	// waiting in its queue is lost.
	// And Shutdown closes a connection whose request was not read yet (golang/go#65802): wait,
	// briefly, until every accepted connection has its request.
	ln.Close()
	<-served
	fresh.wait(time.Second)
	srv.Shutdown(context.Background())
	log.Println("drained, exiting")
}

// connKey is the context key of a request's connection.
type connKey struct{}

// freshConns counts the connections accepted whose first request has not reached the handler.
// Not StateActive: net/http sets it before it checks for Shutdown, and drops the request then.
type freshConns struct {
	mu   sync.Mutex
	cond *sync.Cond
	n    map[net.Conn]bool
}

func newFreshConns() *freshConns {
	f := &freshConns{n: map[net.Conn]bool{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// track is the server's ConnState hook: a new connection is fresh until handled or closed.
func (f *freshConns) track(c net.Conn, s http.ConnState) {
	switch s {
	case http.StateNew:
		f.mu.Lock()
		f.n[c] = true
		f.mu.Unlock()
	case http.StateClosed, http.StateHijacked:
		f.handled(c)
	}
}

// handled forgets c: its request reached the handler, or it is gone.
func (f *freshConns) handled(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.n, c)
	if len(f.n) == 0 {
		f.cond.Broadcast()
	}
}

// wait returns once no connection is fresh, or after d.
func (f *freshConns) wait(d time.Duration) {
	expired := false
	t := time.AfterFunc(d, func() {
		f.mu.Lock()
		expired = true
		f.mu.Unlock()
		f.cond.Broadcast()
	})
	defer t.Stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.n) > 0 && !expired {
		f.cond.Wait()
	}
}
