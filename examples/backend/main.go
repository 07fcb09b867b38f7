// Command backend is the example of watchGoD v0.1's README, kept as it was written: one binary that
// is both a web backend and its own loader. Built into god's loader directory, god asks it (as
// `backend godv1`) which jobs exist; it defines itself ("backend", checked by a function that
// returns "ok") and a second job with a plain Exec.
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
	addr := os.Getenv("BACKEND_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8080"
	}
	fmt.Println("backend listening on", addr)
	if err := http.ListenAndServe(addr, myBackend); err != nil {
		fmt.Fprintln(os.Stderr, "backend:", err)
		os.Exit(1)
	}
}

func init() {
	job := watchgod.Job("backend")
	job.Auto = true
	job.Exec = []string{os.Args[0]}
	job.Check = func() string {
		return "ok"
	}

	// v0.1 ran postgres here; any plain command works the same way.
	job = watchgod.Job("worker")
	job.Auto = true
	job.Exec = []string{"/bin/sh", "-c", "while true; do echo worker: still working; sleep 5; done"}

	watchgod.Init()
}
