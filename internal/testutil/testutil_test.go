package testutil

import (
	"log/slog"
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
