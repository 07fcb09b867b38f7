// Command backend is the example of watchGoD v0.1's README, grown up: one binary that is both a
// web backend and its own loader. Built into god's loader directory, god asks it (as
// `backend godv1`) which jobs exist; it defines itself ("backend", checked by a function that
// returns "ok", serving HTTP on a socket god opens and keeps) and a second job with a plain Exec.
//
// Run alone (`./backend`), it listens on the address its definition declares by itself.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/emielm/watchgod"
)

var started = time.Now()

var myBackend = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "hello from backend pid %d, generation %s, up %s\n",
		os.Getpid(), os.Getenv("GOD_GENERATION"), time.Since(started).Round(time.Millisecond))
})

func main() {
	ln, err := watchgod.Listener("http")
	if err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
	fmt.Println("backend serving on", ln.Addr())
	// ServeHTTP says READY=1 to god, and drains on SIGTERM without failing a request.
	if err := watchgod.ServeHTTP(&http.Server{Handler: myBackend}, ln); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func init() {
	// god passes its environment to loaders: these let one binary serve several setups.
	listen := "tcp://127.0.0.1:8080"
	if addr := os.Getenv("BACKEND_ADDR"); addr != "" {
		listen = "tcp://" + addr
	}
	if l := os.Getenv("BACKEND_LISTEN"); l != "" {
		listen = l // any listen address, e.g. unix:///run/backend.sock
	}

	job := watchgod.Job("backend")
	job.Auto = true
	job.Exec = []string{os.Args[0]}
	job.Listen = []string{"http=" + listen}
	if n := os.Getenv("BACKEND_INSTANCES"); n != "" {
		job.Instances = n // processes sharing the socket
	}
	if mode := os.Getenv("BACKEND_RELOAD"); mode != "" {
		job.Reload = mode // "overlap" (the default with a socket) or "restart"
	}
	job.Ready = "notify" // a new generation serves once its main says so: god reloads on that
	job.Check = func() string {
		return "ok"
	}

	// v0.1 ran postgres here; any plain command works the same way.
	job = watchgod.Job("worker")
	job.Auto = true
	job.Exec = []string{"/bin/sh", "-c", "while true; do echo worker: still working; sleep 5; done"}

	watchgod.Init()
}
