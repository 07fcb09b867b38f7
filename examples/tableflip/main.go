// Command tableflip is an HTTP job that upgrades itself, under god, with
// github.com/cloudflare/tableflip: on SIGHUP it starts a new copy of its binary that inherits the
// listening socket, and the old copy drains and exits. It is also its own loader, so built into
// god's loader directory it defines the job:
//
//	listen http=tcp://$TABLEFLIP_ADDR (default 127.0.0.1:8081)
//	ready  notify
//	reload signal SIGHUP
//
// `god reload tableflip` then sends SIGHUP and waits for READY=1. Three things keep the job
// supervised and its socket served through an upgrade:
//
//   - the first process takes the socket from god (watchgod.Listener) and hands it to tableflip;
//     each successor inherits it from its parent. god keeps its own copy, so connections wait in
//     the socket's queue whenever no process accepts;
//   - the successor says MAINPID=<its pid> before its parent may exit: god, the subreaper that
//     inherits it, follows it instead of counting the parent's exit as the job's;
//   - the successor waits until its parent has drained and exited before it serves and says
//     READY=1, so once `god reload` returns only the new process answers.
//
// Its answer names god's generation: the one god started it with, plus one per upgrade (god
// counts a generation per reload, and here each reload is one upgrade).
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/cloudflare/tableflip"

	"github.com/emielm/watchgod"
)

var started = time.Now()

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tableflip:", err)
		os.Exit(1)
	}
}

// run serves until god stops the process or a successor takes over.
func run() error {
	upg, err := tableflip.New(tableflip.Options{})
	if err != nil {
		return err
	}
	defer upg.Stop()
	// Before READY=1: god may send SIGHUP as soon as it has heard it.
	go upgradeOnHUP(upg)

	ln, err := listener(upg)
	if err != nil {
		return err
	}
	if upg.HasParent() {
		// Before Ready: once the parent hears it, it drains and exits.
		if err := watchgod.MainPID(); err != nil {
			return err
		}
	}
	if err := upg.Ready(); err != nil {
		return err
	}
	wait, cancel := context.WithTimeout(context.Background(), watchgod.DrainTimeout+5*time.Second)
	err = upg.WaitForParent(wait)
	cancel()
	if err != nil {
		return err
	}

	gen := os.Getenv("GOD_GENERATION")
	fmt.Printf("tableflip pid %d serving generation %s on %s\n", os.Getpid(), gen, ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from tableflip pid %d, generation %s, up %s\n",
			os.Getpid(), gen, time.Since(started).Round(time.Millisecond))
	})}
	// Drain on SIGTERM (god stops the job) or once a successor is ready (upg.Exit).
	done, stop := context.WithCancel(context.Background())
	defer stop()
	go func() {
		select {
		case <-upg.Exit():
			stop()
		case <-done.Done():
		}
	}()
	return watchgod.ServeHTTPContext(done, srv, ln) // says READY=1 once it serves
}

// listener is the job's socket: inherited from the parent after an upgrade, else taken from god
// and registered with tableflip so that successors inherit it. It is registered under a network
// name of its own, so tableflip never unlinks a unix socket path that god owns.
func listener(upg *tableflip.Upgrader) (net.Listener, error) {
	const network, name = "god", "http"
	if ln, err := upg.Listener(network, name); ln != nil || err != nil {
		return ln, err
	}
	ln, err := watchgod.Listener(name)
	if err != nil {
		return nil, err
	}
	tl, ok := ln.(tableflip.Listener)
	if !ok {
		return nil, fmt.Errorf("socket %q (%T) has no file descriptor to pass on", name, ln)
	}
	if err := upg.AddListener(network, name, tl); err != nil {
		return nil, err
	}
	return ln, nil
}

// upgradeOnHUP starts a successor on each SIGHUP. The successor gets the next generation number
// in its environment; a failed upgrade leaves this process serving, and god's reload times out.
func upgradeOnHUP(upg *tableflip.Upgrader) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	for range sig {
		gen, _ := strconv.Atoi(os.Getenv("GOD_GENERATION"))
		os.Setenv("GOD_GENERATION", strconv.Itoa(gen+1))
		if err := upg.Upgrade(); err != nil {
			os.Setenv("GOD_GENERATION", strconv.Itoa(gen))
			fmt.Fprintln(os.Stderr, "tableflip: upgrade failed:", err)
			continue
		}
		fmt.Printf("tableflip pid %d: upgraded; draining\n", os.Getpid())
		return
	}
}

func init() {
	addr := os.Getenv("TABLEFLIP_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8081"
	}
	job := watchgod.Job("tableflip")
	job.Auto = true
	job.Exec = []string{os.Args[0]}
	job.Listen = []string{"http=tcp://" + addr}
	job.Ready = "notify"
	job.Reload = syscall.SIGHUP
	watchgod.Init()
}
