package control_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/emielm/watchgod/supervisor/control"
)

// A daemon serves requests with a Handler; a client sends one and prints the
// progress lines and the result.
func Example() {
	dir, _ := os.MkdirTemp("", "god")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "god.sock")

	ln, err := control.Listen(path)
	if err != nil {
		log.Fatal(err)
	}
	srv := &control.Server{Handler: control.HandlerFunc(
		func(ctx context.Context, peer control.Peer, req control.Request, emit func(control.Response) error) control.Response {
			for _, job := range req.Jobs {
				emit(control.Response{Job: job, Message: "starting"})
			}
			return control.Response{OK: true, Message: fmt.Sprintf("started %d jobs", len(req.Jobs))}
		})}
	go srv.Serve(ln)
	defer srv.Close()

	c, err := control.Dial(path)
	if err != nil {
		log.Fatal(err) // errors.Is(err, control.ErrUnreachable): no god there
	}
	defer c.Close()
	res, err := c.Do(context.Background(), control.Request{Cmd: control.CmdStart, Jobs: []string{"web", "db"}},
		func(line control.Response) { fmt.Println(line.Job, line.Message) })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.OK, res.Message)
	// Output:
	// web starting
	// db starting
	// true started 2 jobs
}

func ExampleDecodeRequest() {
	req, err := control.DecodeRequest([]byte(`{"v":1,"cmd":"logs","jobs":["web"],"lines":20}`))
	fmt.Println(req.Cmd, req.Jobs, req.Lines, err)
	_, err = control.DecodeRequest([]byte(`{"v":1,"cmd":"stop"}`))
	fmt.Println(err)
	// Output:
	// logs [web] 20 <nil>
	// stop: needs at least one job name
}
