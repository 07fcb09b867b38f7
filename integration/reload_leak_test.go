package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// godResources is what a reload could leak in god: open fds, child processes, goroutines. god
// keeps between one and LoaderInstances idle instances of each loader file, as many as its
// concurrent requests needed, each a child with three pipes: fds and children count without them.
type godResources struct {
	fds, children, goroutines int
	loaders                   int // loader instances (children running `FILE godv1`)
}

func (r godResources) String() string {
	return fmt.Sprintf("%d fds and %d children besides %d loader instances, %d goroutines", r.fds, r.children, r.loaders, r.goroutines)
}

// pipesPerLoader is the fds god holds for one loader instance: its stdin, stdout and stderr.
const pipesPerLoader = 3

// resources reads god's open fds and children from /proc and its goroutines from the version
// reply of its control socket.
func (g *god) resources(c *control.Client) godResources {
	g.t.Helper()
	pid := g.cmd.Process.Pid
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		g.t.Fatal(err)
	}
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	children, loaders := 0, 0
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, child := range strings.Fields(string(b)) {
			cmdline, _ := os.ReadFile("/proc/" + child + "/cmdline")
			if args := strings.Split(string(cmdline), "\x00"); len(args) > 2 && args[len(args)-2] == "godv1" {
				loaders++
				continue
			}
			children++
		}
	}
	res, err := c.Do(context.Background(), control.Request{V: control.Version, Cmd: control.CmdVersion}, nil)
	if err != nil || !res.OK {
		g.fatalf("version: %v %s", err, res.Error)
	}
	return godResources{fds: len(fds) - pipesPerLoader*loaders, children: children, loaders: loaders, goroutines: res.Goroutines}
}

// controlDo sends one request over a fresh control connection (each connection carries one).
func (g *god) controlDo(req control.Request) control.Response {
	g.t.Helper()
	c, err := control.Dial(g.socket)
	if err != nil {
		g.fatalf("dial %s: %v", g.socket, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req.V = control.Version
	res, err := c.Do(ctx, req, nil)
	if err != nil {
		g.fatalf("%s: %v", req.Cmd, err)
	}
	return res
}

// TestReloadNoLeaks reloads a small job with a socket and a check 200 times: afterwards god has
// exactly the fds and children it had before (loader instances aside), and about as many
// goroutines.
func TestReloadNoLeaks(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "tiny", bashLoader{Jobs: map[string]bashJob{"tiny": {
		Exec:  sleeper,
		Auto:  autoTrue,
		Check: checkOK("1000"),
		Props: map[string]string{"listen": "echo " + sq(jsonArray("s=tcp://"+freePort(t)))},
	}}})
	g.start()
	dumpOnFailure(t, g)
	g.waitState("tiny", "run", 10*time.Second)

	reload := func() time.Duration {
		t0 := time.Now()
		if res := g.controlDo(control.Request{Cmd: control.CmdReload, Jobs: []string{"tiny"}}); !res.OK {
			g.fatalf("reload tiny: %s", res.Error)
		}
		return time.Since(t0)
	}
	settled := func() bool {
		j, _ := g.job("tiny")
		return j.State == "run" && len(j.Processes) == 1
	}
	// One reload first, so that what god makes once (a loader instance, a buffer) exists.
	reload()
	eventually(t, 10*time.Second, "tiny settled", settled)
	c := func() *control.Client {
		c, err := control.Dial(g.socket)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	measure := func() godResources {
		cl := c()
		defer cl.Close()
		return g.resources(cl)
	}
	before := measure()

	const n = 200
	var took []time.Duration
	t0 := time.Now()
	for range n {
		took = append(took, reload())
	}
	total := time.Since(t0)
	eventually(t, 10*time.Second, "tiny settled", settled)
	var after godResources
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Loader instances and goroutines of finished work wind down on their own: poll, bounded.
		after = measure()
		if after.fds == before.fds && after.children == before.children && after.goroutines <= before.goroutines+2*(after.loaders-before.loaders)+5 {
			break
		}
		if time.Now().After(deadline) {
			g.fatalf("after %d reloads god has %s; before: %s", n, after, before)
		}
		time.Sleep(50 * time.Millisecond) // polling from the outside, bounded by the deadline
	}
	j, _ := g.job("tiny")
	t.Logf("%d reloads in %s (%s); god before: %s; after: %s; generation %d",
		n, total.Round(time.Millisecond), durations(took), before, after, j.Generation)
	if j.Generation != n+2 {
		t.Errorf("generation %d after %d reloads of generation 1, want %d", j.Generation, n+1, n+2)
	}
}
