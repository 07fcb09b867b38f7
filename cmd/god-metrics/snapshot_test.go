package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/supervisor/control"
)

// fakeGod serves the control protocol on a socket in a temporary directory with handle.
func fakeGod(t testing.TB, handle control.HandlerFunc) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "god.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	srv := &control.Server{Handler: handle, Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return path
}

// testSnapshot has a bit of everything the JSON form must carry: states, exit codes as keys,
// histogram buckets, runtime figures.
func testSnapshot() control.MetricsSnapshot {
	return control.MetricsSnapshot{
		Live: true,
		Jobs: []control.JobMetrics{{
			Name: "web", State: "run", Restarts: 2, Reloads: 1,
			Exits: map[int]uint64{143: 1}, LogLines: map[string]uint64{"stdout": 7},
		}},
		Loaders:        []control.LoaderMetrics{{Path: "/d/web", Failures: 1}},
		CheckDuration:  control.Histogram{Count: 2, Sum: 0.003, Buckets: map[float64]uint64{0.001: 1, 0.005: 2}},
		ReloadDuration: control.Histogram{Buckets: map[float64]uint64{1: 0}},
		Runtime:        control.RuntimeMetrics{GoVersion: "go1.26", Goroutines: 12, GCCycles: 3, GCPauseSeconds: 0.001},
	}
}

// TestSnapshotClient asks a god for its snapshot over the control protocol and gets it whole.
func TestSnapshotClient(t *testing.T) {
	want := testSnapshot()
	sock := fakeGod(t, func(ctx context.Context, peer control.Peer, req control.Request, emit func(control.Response) error) control.Response {
		if req.Cmd != control.CmdMetrics {
			return control.Response{Error: "unexpected " + req.Cmd}
		}
		b, err := json.Marshal(want)
		if err != nil {
			return control.Response{Error: err.Error()}
		}
		return control.Response{OK: true, Metrics: b}
	})
	c := &snapshotClient{socket: sock, timeout: 5 * time.Second}
	got, err := c.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("snapshot:\n got  %+v\n want %+v", got, want)
	}
}

// TestSnapshotClientErrors: an old god that does not know the command, and no god at all, are
// errors that say so.
func TestSnapshotClientErrors(t *testing.T) {
	// A god from before the metrics command refuses it at validation; answer as it does.
	path := filepath.Join(t.TempDir(), "old.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			bufio.NewReader(conn).ReadString('\n')
			conn.Write([]byte(`{"v":1,"type":"result","ok":false,"error":"bad request: unknown command \"metrics\""}` + "\n"))
			conn.Close()
		}
	}()
	c := &snapshotClient{socket: path, timeout: 5 * time.Second}
	if _, err := c.snapshot(); err == nil || !strings.Contains(err.Error(), `unknown command "metrics"`) {
		t.Errorf("old god: %v", err)
	}
	c = &snapshotClient{socket: filepath.Join(t.TempDir(), "none.sock"), timeout: 5 * time.Second}
	if _, err := c.snapshot(); err == nil || !strings.Contains(err.Error(), "cannot reach god") {
		t.Errorf("no god: %v", err)
	}
}

// TestSnapshotShared: scrapes that arrive while a request is under way share it, so god serves
// one request for all of them.
func TestSnapshotShared(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	sock := fakeGod(t, func(ctx context.Context, peer control.Peer, req control.Request, emit func(control.Response) error) control.Response {
		requests.Add(1)
		<-release
		b, _ := json.Marshal(testSnapshot())
		return control.Response{OK: true, Metrics: b}
	})
	c := &snapshotClient{socket: sock, timeout: 10 * time.Second}
	const scrapes = 8
	var wg sync.WaitGroup
	errs := make(chan error, scrapes)
	for i := 0; i < scrapes; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.snapshot()
			errs <- err
		}()
	}
	testutil.Eventually(t, 5*time.Second, "every scrape waits for the one request", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.cur != nil && c.cur.waiters == scrapes
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("god got %d requests for %d simultaneous scrapes, want 1", n, scrapes)
	}
	// The next scrape asks again: answers are not cached.
	if _, err := c.snapshot(); err != nil {
		t.Fatal(err)
	}
	if n := requests.Load(); n != 2 {
		t.Fatalf("god got %d requests after one more scrape, want 2", n)
	}
}
