package joblog

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// heldLogger is a JSON logger from NewLogger on a fresh temp file, and a func reading the file.
func heldLogger(t *testing.T) (*slog.Logger, func() string) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	l, err := NewLogger(f, ModeJSON, slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	return l, func() string {
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// TestAddHeldWaitsForFlush checks that AddHeld lines stay in the buffer until Flush, and that a
// record of god's own writes them first, in order.
func TestAddHeldWaitsForFlush(t *testing.T) {
	logger, read := heldLogger(t)
	h := NewHub(logger, 10)
	h.AddHeld(Line{Job: "web", Stream: StreamStdout, Msg: "one"})
	h.AddHeld(Line{Job: "web", Stream: StreamStdout, Msg: "two"})
	if got := read(); got != "" {
		t.Fatalf("held lines written before Flush: %q", got)
	}
	logger.Info("god says")
	got := read()
	i1, i2, i3 := strings.Index(got, `"msg":"one"`), strings.Index(got, `"msg":"two"`), strings.Index(got, `"msg":"god says"`)
	if i1 < 0 || i2 < i1 || i3 < i2 {
		t.Fatalf("want one, two, god says in order; got %q", got)
	}
	h.AddHeld(Line{Job: "web", Stream: StreamStdout, Msg: "three"})
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := read(); !strings.Contains(got, `"msg":"three","job":"web"`) || strings.Count(got, "\n") != 4 {
		t.Fatalf("after Flush: %q", got)
	}
	// Add writes at once.
	h.Add(Line{Job: "web", Stream: StreamStdout, Msg: "four"})
	if got := read(); !strings.Contains(got, `"msg":"four"`) {
		t.Fatalf("Add did not write at once: %q", got)
	}
}

// TestAddHeldBounded checks that held records are written once maxHeld bytes wait, flush or not.
func TestAddHeldBounded(t *testing.T) {
	logger, read := heldLogger(t)
	h := NewHub(logger, 10)
	msg := strings.Repeat("x", 1000)
	for range maxHeld/1000 + 1 {
		h.AddHeld(Line{Job: "web", Stream: StreamStdout, Msg: msg})
	}
	if got := read(); len(got) < maxHeld {
		t.Fatalf("%d bytes written after more than %d held", len(got), maxHeld)
	}
}

// TestAddHeldOtherLogger checks that AddHeld writes at once through a logger not made by
// NewLogger, and that Flush and the package's Flush are harmless there.
func TestAddHeldOtherLogger(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	h := NewHub(logger, 10)
	h.AddHeld(Line{Job: "web", Msg: "one"})
	if !strings.Contains(buf.String(), `"msg":"one"`) {
		t.Fatalf("AddHeld held a line in a foreign logger: %q", buf.String())
	}
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := Flush(logger); err != nil {
		t.Fatal(err)
	}
	if err := Flush(nil); err != nil {
		t.Fatal(err)
	}
	if err := NewHub(nil, 10).Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestMuxFlushesBeforeWaiting checks that a Mux relaying through AddHeld writes a line to god's
// log while the job is still running and silent: it flushes after each round, not only at the
// end of the pipe.
func TestMuxFlushesBeforeWaiting(t *testing.T) {
	logger, read := heldLogger(t)
	h := NewHub(logger, 10)
	m, err := NewMux(func() { h.Flush() })
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	r, w := newPipe(t)
	defer w.Close()
	if err := m.Add(Pipe{Fd: r, Meta: Line{Job: "web", Stream: StreamStdout}, Format: FormatText, Deliver: h.AddHeld}); err != nil {
		t.Fatal(err)
	}
	waitLog := func(want string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(read(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s not in god's log within 5 s while the pipe stays open: %q", want, read())
			}
			time.Sleep(time.Millisecond) // polls a file: there is no event to wait on
		}
	}
	for i := range 3 {
		if _, err := fmt.Fprintf(w, "line %d\n", i); err != nil {
			t.Fatal(err)
		}
		waitLog(fmt.Sprintf(`"msg":"line %d"`, i))
	}
	// Pausing hands back the pipe, open, with the unfinished line; the whole one before it is
	// in the log.
	fmt.Fprint(w, "last\npart")
	waitLog(`"msg":"last"`)
	paused := m.Pause()
	if len(paused) != 1 || string(paused[0].Rest) != "part" || paused[0].Cut || paused[0].Fd != r {
		t.Fatalf("Pause = %+v; want the pipe with rest \"part\"", paused)
	}
	defer unix.Close(r)
	if _, err := unix.FcntlInt(uintptr(r), unix.F_GETFD, 0); err != nil {
		t.Fatalf("paused pipe's fd: %v", err)
	}
}
