// Command jobbin is the job binary the watchgod tests run: the v0.1 README
// example (with "os" imported) plus jobs that exercise the value rules.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/emielm/watchgod"
)

var myBackend http.Handler = http.NotFoundHandler()

func main() {
	if os.Getenv("JOBBIN_SERVE") == "" {
		fmt.Println("main ran")
		return
	}
	http.ListenAndServe(":80", myBackend)
}

func init() {
	job := watchgod.Job("backend")
	job.Auto = true
	job.Exec = []string{os.Args[0]}
	job.Check = func() string {
		return "ok"
	}

	job = watchgod.Job("postgres")
	job.Auto = true
	job.Exec = []string{"/usr/lib/postgresql/9.5/bin/postgres", "-D", "data/db"}

	job = watchgod.Job("worker")
	job.Auto = []string{"backend", "postgres"}
	job.ExecFunc = func() { fmt.Println("worker ran") }
	job.Env = []string{"A=1"}
	job.Check = func(args []string) []string {
		fmt.Println("stray output from a check") // must not reach god
		return []string{"degrade", "250"}
	}
	job.Stop = func(pid string) []string { return []string{"SIGINT", "1500"} }
	job.OnExit = func(args []string) string { return "exit " + args[0] + " of " + args[1] }
	job.Listen = []string{"http=tcp://127.0.0.1:0"}
	job.Instances = 3
	job.Ready = 200 * time.Millisecond
	job.Reload = "overlap"
	job.Restart = "on-failure"
	job.Dir = "/tmp"
	job.Log = "json"
	job.Watchdog = 30 * time.Second

	job = watchgod.Job("fragile")
	job.Exec = "/bin/true"
	job.Check = func() string { panic("check exploded") }
	job.Env = func() []string { panic("env exploded") }
	job.Auto = 3.5 // unsupported type

	watchgod.Init()
}
