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
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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
	ln.Close()
	<-served
	srv.Shutdown(context.Background())
	log.Println("drained, exiting")
}
