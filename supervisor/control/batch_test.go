package control

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestMoreBatchesLines checks that lines marked More reach the client whole and in order, the
// last of them too when the handler returns right after it (the result sends the buffer).
func TestMoreBatchesLines(t *testing.T) {
	const n = 2000
	path, _ := startServer(t, HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		for i := range n {
			r := Response{Log: &LogLine{Job: "web", Msg: fmt.Sprint("line ", i), Time: time.Unix(1700000000, 0).UTC()}, More: true}
			if err := emit(r); err != nil {
				return Response{Error: err.Error()}
			}
		}
		return Response{OK: true}
	}), nil)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(`{"v":1,"cmd":"logs","follow":true}` + "\n")); err != nil {
		t.Fatal(err)
	}
	lines := readAll(t, conn)
	if len(lines) != n+1 {
		t.Fatalf("got %d lines, want %d and a result", len(lines), n)
	}
	for i, r := range lines[:n] {
		if r.Type != TypeLog || r.V != Version || r.Log == nil || r.Log.Msg != fmt.Sprint("line ", i) {
			t.Fatalf("line %d = %+v (log %+v)", i, r, r.Log)
		}
	}
	if last := lines[n]; last.Type != TypeResult || !last.OK {
		t.Fatalf("last line %+v, want an ok result", last)
	}
}

// TestMoreLineWithoutMoreSendsAtOnce checks that a line without More sends what More lines
// before it left in the buffer, while the handler is still running.
func TestMoreLineWithoutMoreSendsAtOnce(t *testing.T) {
	release := make(chan struct{})
	path, _ := startServer(t, HandlerFunc(func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
		emit(Response{Message: "one", More: true})
		emit(Response{Message: "two"})
		select {
		case <-release:
		case <-ctx.Done():
		}
		return Response{OK: true}
	}), nil)
	defer close(release)
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(`{"v":1,"cmd":"status"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for want := 2; ; {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q so far)", err, got)
		}
		got = append(got, buf[:n]...)
		if bytes.Count(got, []byte("\n")) >= want {
			break
		}
	}
	if bytes.Count(got, []byte("\n")) != 2 {
		t.Fatalf("got %q; want the two progress lines and no result yet", got)
	}
}
