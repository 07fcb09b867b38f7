package crashstate

import (
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/testutil"

	"github.com/emielm/watchgod/internal/procfs"
)

func TestWriteRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "god-state.json")
	if st, err := Read(path); st != nil || err != nil {
		t.Fatalf("no file: %v, %v; want nil, nil", st, err)
	}
	want := &State{God: Self(), Jobs: []Job{{Name: "web", Procs: []Proc{{Pid: 42, Pgid: 42, Start: 7}}, Sockets: []string{"http=tcp://127.0.0.1:80"}}}}
	if err := Write(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v (%v), want 0600", fi.Mode(), err)
	}
	got, err := Read(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v, %v; want %+v", got, err, want)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("%d files beside the state file: the temporary one was left", len(ents)-1)
	}
	if err := os.WriteFile(path, []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Fatal("a broken file read as a state")
	}
}

func TestAlive(t *testing.T) {
	if !Self().Alive() {
		t.Fatal("this process is not alive")
	}
	p := Self()
	p.Start++ // the same pid, started at another time: a reused pid
	if p.Alive() {
		t.Fatal("a reused pid passed for the process")
	}
}

// TestRecover: the orphan of a dead god (here: a child of the test) that holds a listening socket
// gives it back and is ended; the socket still has the connection that waited in its queue.
func TestRecover(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command("sleep", "1000")
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waiting, err := net.Dial("tcp", addr) // queued: nobody accepts
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	start, err := procfs.StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	dead := Proc{Pid: cmd.Process.Pid, Pgid: cmd.Process.Pid, Start: start + 1} // "god": not alive
	st := &State{God: dead, Jobs: []Job{{Name: "web", Sockets: []string{"http=tcp://" + addr},
		Procs: []Proc{{Pid: cmd.Process.Pid, Pgid: cmd.Process.Pid, Start: start}}}}}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	rec, err := Recover(st, "", 5*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Ended) != 1 || len(rec.Sockets["http"]) != 1 {
		t.Fatalf("recovered %+v, want one orphan ended and the socket http", rec)
	}
	testutil.Receive(t, done, 10*time.Second, "the orphan's end")
	spec, _ := fdpass.ParseSpec("http=tcp://" + addr)
	kept := rec.Sockets["http"][0]
	if !fdpass.Matches(kept, spec) {
		t.Fatal("the socket taken back does not serve the spec")
	}
	l2, err := net.FileListener(kept)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	c, err := l2.Accept()
	if err != nil {
		t.Fatalf("the connection that waited in the queue is gone: %v", err)
	}
	c.Close()
}
