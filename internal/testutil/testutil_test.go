package testutil

import (
	"log/slog"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"
)

func TestEventually(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	Eventually(t, 10*time.Second, "three increments", func() bool { return n.Load() == 3 })
}

func TestRecordsWait(t *testing.T) {
	log, recs := NewLogger()
	go func() {
		log.Info("one")
		log.Warn("two", "k", "v")
	}()
	recs.Wait(t, 10*time.Second, 1, "two", func(r slog.Record) bool { return r.Message == "two" && Attr(r, "k") == "v" })
	if n := recs.Count(func(slog.Record) bool { return true }); n != 2 {
		t.Fatalf("%d records, want 2", n)
	}
}

func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	done := make(chan struct{})
	go func() { b.Write([]byte("x")); close(done) }()
	b.Write([]byte("y"))
	<-done
	if s := b.String(); len(s) != 2 {
		t.Fatalf("%q", s)
	}
}

func TestReceive(t *testing.T) {
	ch := make(chan int)
	go func() { ch <- 7 }()
	if v := Receive(t, ch, 10*time.Second, "the value"); v != 7 {
		t.Fatalf("Receive = %d, want 7", v)
	}
}

// TestWriteScript: the script is in place, executable, and runs.
func TestWriteScript(t *testing.T) {
	path := WriteScript(t, t.TempDir(), "s", "echo hi\n")
	out, err := exec.Command(path).Output()
	if err != nil || string(out) != "hi\n" {
		t.Fatalf("%s: %q, %v", path, out, err)
	}
}
