package supervisor

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// TestRelayPauseResume pauses the relays mid-line as an upgrade does, then resumes them as a
// failed exec does: the line arrives once, whole, and the pipe still counts once for the
// waits on output (waitOutput, waitRelays), which end with its end of file.
func TestRelayPauseResume(t *testing.T) {
	hub := joblog.NewHub(nil, 100)
	s, err := New(Config{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Hub: hub})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.devNull.Close() })
	if s.relayMux, err = joblog.NewMux(func() { _ = hub.Flush() }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.relayMux.Close() })

	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	w := os.NewFile(uintptr(p[1]), "w")
	defer w.Close()
	const pid = 4242
	s.startRelay(joblog.Pipe{Fd: p[0], Meta: joblog.Line{Job: "web", Pid: pid, Stream: joblog.StreamStdout}, Format: joblog.FormatText}, pid)
	msgs := func() (out []string) {
		for _, l := range hub.Tail([]string{"web"}, 0) {
			out = append(out, l.Msg)
		}
		return out
	}
	if _, err := w.WriteString("one\ntw"); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "line one relayed", func() bool { return len(msgs()) >= 1 })

	paused := s.pauseRelays()
	if len(paused) != 1 || string(paused[0].Rest) != "tw" {
		t.Fatalf("pauseRelays = %+v, want one pipe with rest \"tw\"", paused)
	}
	s.resumeRelays(paused)
	s.relayMu.Lock()
	n := s.relayPids[pid]
	s.relayMu.Unlock()
	if n != 1 {
		t.Errorf("after pause and resume the process has %d pipes relayed, want 1", n)
	}

	if _, err := w.WriteString("o\nthree"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	start := time.Now()
	s.waitOutput(map[int]bool{pid: true}, 10*time.Second)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("waitOutput took %s: the pipe's end was not noticed", took)
	}
	if got := msgs(); len(got) != 3 || got[1] != "two" || got[2] != "three" {
		t.Errorf("lines = %q, want one, two, three", got)
	}
	done := make(chan struct{})
	go func() { s.relays.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("a relay is still counted after its pipe ended")
	}
}
