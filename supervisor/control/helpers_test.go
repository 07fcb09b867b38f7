package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// shortDir returns a fresh directory with a short path (unix socket paths
// are limited to 108 bytes, and t.TempDir embeds the test name).
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startServer serves h on a fresh socket and closes the server when the test
// ends. tweak, if not nil, adjusts the server before it starts.
func startServer(t testing.TB, h Handler, tweak func(*Server)) (string, *Server) {
	t.Helper()
	path := filepath.Join(shortDir(t), "run", "god.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	if tweak != nil {
		tweak(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := testutil.Receive(t, served, 5*time.Second, "Serve's return after Close"); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return path, srv
}

// rawExchange connects to path, writes data as is, and returns every line the
// server sends until it closes the connection (bounded by a 5 s deadline).
func rawExchange(t testing.TB, path string, data []byte) []Response {
	t.Helper()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(data); err != nil {
		t.Fatal(err)
	}
	return readAll(t, conn)
}

// readAll decodes response lines from conn until EOF.
func readAll(t testing.TB, conn net.Conn) []Response {
	t.Helper()
	var out []Response
	sc := bufio.NewScanner(conn)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r Response
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad response line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	// A server that closes with unread input from us (a refused or cut-off
	// client) makes the kernel report ECONNRESET after its last line.
	if err := sc.Err(); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading responses: %v", err)
	}
	return out
}

// wantResultError checks that lines end in exactly one failed result whose
// error contains want.
func wantResultError(t testing.TB, lines []Response, want string) {
	t.Helper()
	if len(lines) == 0 {
		t.Fatalf("no response; want result error %q", want)
	}
	last := lines[len(lines)-1]
	if last.Type != TypeResult || last.V != Version || last.OK || !strings.Contains(last.Error, want) {
		t.Fatalf("last line %+v; want a failed v%d result containing %q", last, Version, want)
	}
}

// echoHandler answers every request with a result naming the command and
// jobs, after one progress line per job.
var echoHandler = HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
	for _, j := range req.Jobs {
		if err := emit(Response{Job: j, Message: "working on " + j}); err != nil {
			return Response{Error: err.Error()}
		}
	}
	switch req.Cmd {
	case CmdStatus:
		return Response{OK: true, Jobs: []JobStatus{{Name: "web", State: "run", Since: time.Unix(1700000000, 0).UTC()}}}
	case CmdVersion:
		return Response{OK: true, Version: "test-1"}
	}
	return Response{OK: true, Message: req.Cmd + " done"}
})
