package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
)

func TestRoundTrip(t *testing.T) {
	path, _ := startServer(t, echoHandler, nil)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	res, err := c.Do(ctx, Request{Cmd: CmdStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Type != TypeResult || res.V != Version || len(res.Jobs) != 1 || res.Jobs[0].Name != "web" {
		t.Fatalf("status result %+v", res)
	}

	// The same client runs a second request on a new connection.
	var lines []Response
	res, err = c.Do(ctx, Request{Cmd: CmdStart, Jobs: []string{"web", "db"}}, func(r Response) { lines = append(lines, r) })
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK || res.Message != "start done" {
		t.Fatalf("start result %+v", res)
	}
	if len(lines) != 2 || lines[0].Job != "web" || lines[1].Job != "db" {
		t.Fatalf("progress lines %+v, want one for web then db", lines)
	}
	for _, l := range lines {
		if l.Type != TypeProgress || l.V != Version || l.Time.IsZero() || !strings.HasPrefix(l.Message, "working on ") {
			t.Errorf("progress line %+v lacks type, version, time or message", l)
		}
	}

	res, err = c.Do(ctx, Request{Cmd: CmdVersion}, nil)
	if err != nil || res.Version != "test-1" {
		t.Fatalf("version: %+v, %v", res, err)
	}
}

func TestBadRequests(t *testing.T) {
	path, _ := startServer(t, echoHandler, nil)
	huge := `{"v":1,"cmd":"status","jobs":["` + strings.Repeat("a", MaxRequestSize) + `"]}` + "\n"
	tests := []struct {
		name, data, want string
	}{
		{"malformed JSON", "{not json\n", "bad request: malformed request"},
		{"not an object", "[\"status\"]\n", "not a JSON object"},
		{"wrong version", `{"v":2,"cmd":"status"}` + "\n", "unsupported protocol version 2: this god speaks version 1"},
		{"no version", `{"cmd":"status"}` + "\n", "missing protocol version"},
		{"unknown command", `{"v":1,"cmd":"dance"}` + "\n", `unknown command "dance"`},
		{"missing job", `{"v":1,"cmd":"stop"}` + "\n", "stop: needs at least one job"},
		{"bad job name", `{"v":1,"cmd":"stop","jobs":["a b"]}` + "\n", `invalid job name "a b"`},
		{"oversized", huge, fmt.Sprintf("request too large: more than %d bytes", MaxRequestSize)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lines := rawExchange(t, path, []byte(tt.data))
			if len(lines) != 1 {
				t.Fatalf("got %d lines %+v, want exactly one result", len(lines), lines)
			}
			wantResultError(t, lines, tt.want)
		})
	}

	t.Run("truncated", func(t *testing.T) {
		conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte(`{"v":1,"cmd":"sta`))
		conn.CloseWrite()
		wantResultError(t, readAll(t, conn), "request truncated")
	})

	t.Run("unknown fields allowed", func(t *testing.T) {
		lines := rawExchange(t, path, []byte(`{"v":1,"cmd":"rescan","new_field":{"x":[1]}}`+"\n"))
		if len(lines) != 1 || !lines[0].OK || lines[0].Message != "rescan done" {
			t.Fatalf("got %+v, want one ok result", lines)
		}
	})
}

func TestSlowClientIsCutOff(t *testing.T) {
	const timeout = 200 * time.Millisecond
	path, _ := startServer(t, echoHandler, func(s *Server) { s.RequestTimeout = timeout })

	// One byte, then silence.
	slow, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	start := time.Now()
	slow.Write([]byte("{"))

	// A trickler: one byte every 20 ms never completes a line in time.
	trickle, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer trickle.Close()
	trickleDone := make(chan struct{})
	go func() {
		defer close(trickleDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		msg := []byte(`{"v":1,"cmd":"status","jobs":["` + strings.Repeat("x", 60) + `"]}` + "\n")
		for _, b := range msg {
			if _, err := trickle.Write([]byte{b}); err != nil {
				return // cut off
			}
			<-tick.C
		}
	}()

	// Other clients are served meanwhile.
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if res, err := c.Do(context.Background(), Request{Cmd: CmdStatus}, nil); err != nil || !res.OK {
		t.Fatalf("status while a slow client waits: %+v, %v", res, err)
	}

	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	wantResultError(t, readAll(t, slow), "request not received within 200ms")
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("slow client cut off after %v, want about %v", elapsed, timeout)
	}

	trickle.SetReadDeadline(time.Now().Add(5 * time.Second))
	wantResultError(t, readAll(t, trickle), "request not received within 200ms")
	testutil.Receive(t, trickleDone, 5*time.Second, "the trickler to be cut off")
}

func TestCancelOnDisconnect(t *testing.T) {
	started := make(chan struct{})
	cancelled := make(chan error, 1)
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		emit(Response{Message: "waiting"})
		close(started)
		select {
		case <-ctx.Done():
			cancelled <- ctx.Err()
		case <-time.After(10 * time.Second):
			cancelled <- errors.New("ctx not cancelled within 10s")
		}
		return Response{Error: "cancelled"}
	})
	path, _ := startServer(t, h, nil)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Do(ctx, Request{Cmd: CmdLogs, Follow: true}, func(Response) { cancel() })
		done <- err
	}()
	testutil.Receive(t, started, 5*time.Second, "the handler to start")
	if err := testutil.Receive(t, done, 5*time.Second, "Do to end"); !errors.Is(err, context.Canceled) {
		t.Errorf("Do after ctx cancel: %v, want context.Canceled", err)
	}
	if err := testutil.Receive(t, cancelled, 15*time.Second, "the handler's ctx"); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}

func TestCloseWaitsForHandlers(t *testing.T) {
	started := make(chan struct{})
	sawCancel := make(chan struct{})
	release := make(chan struct{})
	var finished atomic.Bool
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		close(started)
		<-ctx.Done()
		close(sawCancel)
		<-release // some cleanup that takes a while
		finished.Store(true)
		return Response{Error: "god is shutting down"}
	})
	path := filepath.Join(shortDir(t), "god.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: h, Logger: slog.New(slog.DiscardHandler)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"v":1,"cmd":"stop","jobs":["web"]}` + "\n"))
	testutil.Receive(t, started, 5*time.Second, "the handler to start")

	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	testutil.Receive(t, sawCancel, 5*time.Second, "the handler's ctx to be cancelled by Close")
	select {
	case <-closed:
		t.Fatal("Close returned while a handler was still running")
	default:
	}
	close(release)
	if err := testutil.Receive(t, closed, 5*time.Second, "Close"); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !finished.Load() {
		t.Fatal("Close returned before the handler")
	}
	if err := testutil.Receive(t, served, 5*time.Second, "Serve"); err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	// The client still got the handler's result, then EOF.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	wantResultError(t, readAll(t, conn), "god is shutting down")
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file left after Close: %v", err)
	}
}

func TestBusy(t *testing.T) {
	const max = 2
	entered := make(chan struct{}, max)
	release := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		entered <- struct{}{}
		<-release
		return Response{OK: true}
	})
	path, _ := startServer(t, h, func(s *Server) { s.MaxConns = max })
	var held []net.Conn
	for range max {
		conn, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.Write([]byte(`{"v":1,"cmd":"status"}` + "\n"))
		held = append(held, conn)
	}
	for range max {
		testutil.Receive(t, entered, 5*time.Second, "a held request to reach the handler")
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Do(context.Background(), Request{Cmd: CmdStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK || !strings.HasPrefix(res.Error, "busy:") {
		t.Fatalf("request over the limit got %+v, want a busy error", res)
	}
	close(release)
	for _, conn := range held {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if lines := readAll(t, conn); len(lines) != 1 || !lines[0].OK {
			t.Fatalf("held request got %+v", lines)
		}
	}
	// With the slots free again, requests are served.
	if res, err := c.Do(context.Background(), Request{Cmd: CmdStatus}, nil); err != nil || !res.OK {
		t.Fatalf("after release: %+v, %v", res, err)
	}
}

func TestWriteStallDropsFollower(t *testing.T) {
	stopped := make(chan error, 1)
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		line := &LogLine{Job: "web", Msg: strings.Repeat("x", 16<<10)}
		for i := range 100000 {
			if err := emit(Response{Log: line}); err != nil {
				stopped <- fmt.Errorf("after %d lines: %w", i, err)
				return Response{Error: err.Error()}
			}
		}
		stopped <- errors.New("emit never failed")
		return Response{OK: true}
	})
	path, _ := startServer(t, h, func(s *Server) { s.WriteTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte(`{"v":1,"cmd":"logs","follow":true}` + "\n"))
	// Never read.
	err = testutil.Receive(t, stopped, 10*time.Second, "the stalled follower to be dropped")
	if !strings.Contains(err.Error(), "client stopped reading for 200ms") {
		t.Fatalf("emit error %v, want it to report the write stall", err)
	}
}

func TestHandlerPanic(t *testing.T) {
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		panic("boom")
	})
	path, _ := startServer(t, h, nil)
	wantResultError(t, rawExchange(t, path, []byte(`{"v":1,"cmd":"rescan"}`+"\n")), "rescan: internal error")
}

func TestEmitRules(t *testing.T) {
	emitted := make(chan func(Response) error, 1)
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		if err := emit(Response{Type: TypeResult, OK: true}); err == nil {
			return Response{Error: "emit accepted a result line"}
		}
		emit(Response{Log: &LogLine{Job: "web", Msg: "hi"}})
		emitted <- emit
		return Response{OK: true, Message: fmt.Sprintf("peer uid %d", peer.UID)}
	})
	path, _ := startServer(t, h, nil)
	lines := rawExchange(t, path, []byte(`{"v":1,"cmd":"logs"}`+"\n"))
	if len(lines) != 2 || lines[0].Type != TypeLog || lines[0].Log.Msg != "hi" || !lines[1].OK {
		t.Fatalf("got %+v, want a log line then an ok result", lines)
	}
	if want := fmt.Sprintf("peer uid %d", os.Geteuid()); lines[1].Message != want {
		t.Errorf("result %q, want %q", lines[1].Message, want)
	}
	emit := testutil.Receive(t, emitted, 5*time.Second, "the handler's emit")
	if err := emit(Response{Message: "late"}); err == nil {
		t.Error("emit after the handler returned succeeded")
	}
}

// fdsHandler answers "fds" itself, with a pipe's read end attached to the
// result line, and leaves every other command to Handle.
type fdsHandler struct{ Handler }

func (fdsHandler) HandleConn(ctx context.Context, peer Peer, req Request, conn *net.UnixConn, emit func(Response) error) (Response, bool) {
	if req.Cmd != CmdFds {
		return Response{}, false
	}
	emit(Response{Message: "sending 1 fd"})
	r, w, err := os.Pipe()
	if err != nil {
		return Response{Error: err.Error()}, false
	}
	defer r.Close()
	w.Write([]byte("through the fd"))
	w.Close()
	res := Response{Type: TypeResult, OK: true, Message: "1 fd"}
	line, _ := EncodeResponse(res)
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.WriteMsgUnix(line, unix.UnixRights(int(r.Fd())), nil); err != nil {
		return Response{Error: err.Error()}, true
	}
	return res, true
}

func TestConnHandler(t *testing.T) {
	path, _ := startServer(t, fdsHandler{echoHandler}, nil)
	// Other commands fall through to Handle.
	if lines := rawExchange(t, path, []byte(`{"v":1,"cmd":"rescan"}`+"\n")); len(lines) != 1 || lines[0].Message != "rescan done" {
		t.Fatalf("rescan through a ConnHandler: %+v", lines)
	}

	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	conn.Write([]byte(`{"v":1,"cmd":"fds","jobs":["web"]}` + "\n"))
	var data []byte
	var fds []int
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for range 10 { // a few reads: the progress line, then the result with its fd
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if flags&unix.MSG_CTRUNC != 0 {
			t.Fatal("control message truncated")
		}
		data = append(data, buf[:n]...)
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				got, err := unix.ParseUnixRights(&m)
				if err != nil {
					t.Fatal(err)
				}
				fds = append(fds, got...)
			}
		}
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "passed") // owns fd from here on
		defer files[i].Close()
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("got %q, want a progress line and a result", data)
	}
	var res Response
	json.Unmarshal(lines[1], &res)
	if !res.OK || res.Type != TypeResult || res.Message != "1 fd" {
		t.Fatalf("result %s", lines[1])
	}
	if len(fds) != 1 {
		t.Fatalf("received %d fds, want 1", len(fds))
	}
	got, _ := io.ReadAll(files[0])
	if string(got) != "through the fd" {
		t.Errorf("read %q through the passed fd", got)
	}
}

func TestDialUnreachable(t *testing.T) {
	path := filepath.Join(shortDir(t), "nobody.sock")
	_, err := Dial(path)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Dial to a missing socket: %v, want ErrUnreachable", err)
	}
	if want := "cannot reach god at " + path + ": connect: no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// A socket file with no listener: connection refused.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Dial(path); !errors.Is(err, ErrUnreachable) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("Dial to a stale socket: %v, want ErrUnreachable wrapping ECONNREFUSED", err)
	}
}

func TestClientResultMissing(t *testing.T) {
	// A "server" that closes after a progress line, without a result.
	path := filepath.Join(shortDir(t), "god.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1024)
		conn.Read(buf)
		conn.Write([]byte(`{"v":1,"type":"progress","message":"half"}` + "\n"))
	}()
	defer wg.Wait()
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Do(context.Background(), Request{Cmd: CmdRescan}, nil)
	if err == nil || !strings.Contains(err.Error(), "closed the connection before the result of rescan") {
		t.Fatalf("Do without a result line: %v", err)
	}
}

// TestPeerRefused runs a client as uid 65534 (nobody) against a socket that
// anyone may connect to: the server must refuse it by its credentials.
func TestPeerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a client as uid 65534 to check SO_PEERCRED refusal")
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary may sit in a directory nobody cannot enter: copy it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := testutil.CopyExecutable(t, self, dir, "client.test")
	path := filepath.Join(dir, "god.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o666) // only SO_PEERCRED keeps nobody out
	var logs testutil.LockedBuffer
	var handled atomic.Bool
	h := HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		handled.Store(true)
		return Response{OK: true}
	})
	srv := &Server{Handler: h, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	go srv.Serve(ln)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestHelperClient$")
	cmd.Env = append(os.Environ(), "CONTROL_HELPER_SOCKET="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "RESULT ok=false error=permission denied: uid 65534") {
		t.Fatalf("helper output:\n%s\nwant a permission denied result", out)
	}
	if handled.Load() {
		t.Error("the handler ran for a refused peer")
	}
	if l := logs.String(); !strings.Contains(l, "permission denied") || !strings.Contains(l, "uid=65534") || !strings.Contains(l, "pid=") {
		t.Errorf("log %q should record the refused peer's pid and uid", l)
	}
}

// TestHelperClient is run by TestPeerRefused in a child process; on its own
// it does nothing.
func TestHelperClient(t *testing.T) {
	path := os.Getenv("CONTROL_HELPER_SOCKET")
	if path == "" {
		t.Skip("helper for TestPeerRefused")
	}
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, Request{Cmd: CmdStatus}, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("RESULT ok=%v error=%s\n", res.OK, res.Error)
}
