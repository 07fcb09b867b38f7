package watchgod_test

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/emielm/watchgod"
)

// A program that is both a job and its own loader. Put this in an init
// function: run as "PROGRAM godv1" by god, Init answers for the jobs and
// exits; run normally, Init returns and main runs.
func ExampleJob() {
	job := watchgod.Job("backend")
	job.Auto = true
	job.Exec = []string{os.Args[0], "-serve"}
	job.Listen = []string{"http=tcp://127.0.0.1:8080"}
	job.Ready = "notify"
	job.Check = func() string { return "ok" }
	job.Stop = []string{"SIGTERM", "10000"}

	job = watchgod.Job("postgres")
	job.Auto = true
	job.Exec = []string{"/usr/lib/postgresql/16/bin/postgres", "-D", "data/db"}
	job.Stop = func(pid string) []string { return []string{"SIGINT", "30000"} }

	watchgod.Init()
	fmt.Println("running normally")
	// Output: running normally
}

// A job whose body is a function of the program: god runs the program again
// and Init calls ExecFunc in that process.
func ExampleJobDef_execFunc() {
	job := watchgod.Job("sweeper")
	job.Auto = []string{"postgres"} // start once postgres is ready
	job.Restart = "on-failure"
	job.Watchdog = time.Minute
	job.ExecFunc = func() {
		http.Get("http://127.0.0.1:8080/sweep")
	}
	watchgod.Init()
}
