package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// freePort returns a loopback address no one listens on right now.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// get fetches url and returns its body, or "" on any error.
func get(url string) string {
	c := &http.Client{Timeout: time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestReadmeExample runs v0.1's README example (a Go binary that is its own loader): backend and
// worker come up, backend serves HTTP, restart gives it a new pid that serves, and worker stops
// and starts on command.
func TestReadmeExample(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	g := newGod(t)
	g.env = []string{"BACKEND_ADDR=" + addr}
	copyExecutable(t, backendBin, g.dir, "backend")
	g.start()

	backend := g.waitState("backend", "run", 10*time.Second)
	g.waitState("worker", "run", 10*time.Second)
	pid := pidOf(t, backend)
	url := "http://" + addr + "/"
	eventually(t, 5*time.Second, "backend answering", func() bool {
		return strings.Contains(get(url), fmt.Sprintf("pid %d,", pid))
	})

	r := g.mustCLI("restart", "backend")
	if !strings.Contains(r.stdout, "restarted backend") {
		t.Errorf("god restart backend: stdout %q", r.stdout)
	}
	backend = g.waitState("backend", "run", 5*time.Second)
	newPid := pidOf(t, backend)
	if newPid == pid {
		t.Fatalf("restart kept pid %d", pid)
	}
	eventually(t, 5*time.Second, "new backend answering", func() bool {
		return strings.Contains(get(url), fmt.Sprintf("pid %d,", newPid))
	})
	if alive(pid) {
		t.Errorf("old backend pid %d still runs after restart", pid)
	}

	g.mustCLI("stop", "worker")
	if j, _ := g.job("worker"); j.State != "stopped" || len(j.Processes) != 0 {
		t.Fatalf("after god stop worker: %+v", j)
	}
	g.mustCLI("start", "worker")
	if j, _ := g.job("worker"); j.State != "run" {
		t.Fatalf("after god start worker: %+v", j)
	}
}

// TestShellLoader runs examples/shell/clock: the job runs, its check says ok, and its output
// reaches god logs.
func TestShellLoader(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	copyExecutable(t, clockFile, g.dir, "clock")
	g.start()
	g.waitJob("clock", 10*time.Second, "run with check ok", func(j controlJob) bool {
		return j.State == "run" && j.Check == "ok"
	})
	g.waitLog(10*time.Second, "a line of clock", func(r record) bool {
		return r.str("job") == "clock" && r.str("stream") == "stdout" && strings.HasPrefix(r.Msg, "clock: ")
	})
	r := g.mustCLI("logs", "clock")
	if !strings.Contains(r.stdout, "clock: ") || !strings.Contains(r.stdout, "clock[") {
		t.Fatalf("god logs clock:\n%s", r.stdout)
	}
}
