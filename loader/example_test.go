package loader_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/emielm/watchgod/loader"
)

// hello is a loader that defines one job.
type hello struct{}

func (hello) Jobs() []string { return []string{"hello"} }

func (hello) Answer(job, prop string, args []string) []string {
	if job != "hello" {
		return nil
	}
	switch prop {
	case "exec":
		return []string{"/bin/echo", "hello"}
	case "auto":
		return []string{"true"}
	case "check":
		return []string{"ok", "2000"} // args[0] is the pid
	}
	return nil // not defined here: god uses the default
}

// A loader's main function is one call to Serve on stdin and stdout; god
// talks to it with a Client. Here both ends run in one process, over pipes.
func Example() {
	reqR, reqW, _ := os.Pipe()
	repR, repW, _ := os.Pipe()
	defer reqR.Close()
	defer repR.Close()
	go func() {
		loader.Serve(reqR, repW, hello{}) // in a loader: loader.Serve(os.Stdin, os.Stdout, h)
		repW.Close()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := loader.NewClient(repR, reqW)
	jobs, err := c.Handshake(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println("jobs:", jobs)

	def, err := c.Define(ctx, "hello")
	if err != nil {
		panic(err)
	}
	fmt.Println("exec:", def.Exec, "auto:", def.Auto.Start, "restart:", def.Restart)

	reply, _ := c.Ask(ctx, "hello", "check", "4242")
	check, _ := loader.ParseCheck(reply)
	fmt.Println("check:", check.Kind, check.Next)

	reqW.Close()
	// Output:
	// jobs: [hello]
	// exec: [/bin/echo hello] auto: true restart: always
	// check: ok 2s
}

func ExampleParseStop() {
	for _, reply := range []loader.Message{{}, {"3000"}, {"SIGINT", "10000"}, {"quit"}} {
		stop, err := loader.ParseStop(reply)
		fmt.Println(loader.SignalName(stop.Signal), stop.Timeout, err)
	}
	// Output:
	// SIGTERM 5s <nil>
	// 0 3s <nil>
	// SIGINT 10s <nil>
	// SIGQUIT 5s <nil>
}
