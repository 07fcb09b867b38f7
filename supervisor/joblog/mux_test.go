package joblog

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

var waitFor = testutil.Eventually

// collector gathers what a Mux hands over for one pipe. Deliver and Done run on the Mux's
// goroutine; the test reads under mu.
type collector struct {
	mu    sync.Mutex
	lines []string
	done  chan error
}

func newCollector() *collector { return &collector{done: make(chan error, 1)} }

func (c *collector) deliver(l Line) {
	c.mu.Lock()
	c.lines = append(c.lines, l.Msg)
	c.mu.Unlock()
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

func (c *collector) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// deliverLines is deliver for a batch, as Pipe.DeliverLines gets it.
func (c *collector) deliverLines(ls []Line) {
	if len(ls) == 0 {
		panic("an empty batch")
	}
	for _, l := range ls {
		c.deliver(l)
	}
}

// pipe is a Pipe for c with the read end r. Pipes of odd i take their lines in batches
// (DeliverLines), those of even i one at a time: every test relays both ways.
func (c *collector) pipe(r int, i int) Pipe {
	p := Pipe{Fd: r, Meta: Line{Job: fmt.Sprint("job", i), Stream: StreamStdout, Pid: 1000 + i}, Format: FormatText,
		Deliver: c.deliver, Done: func(err error) { c.done <- err }}
	if i%2 == 1 {
		p.Deliver, p.DeliverLines = nil, c.deliverLines
	}
	return p
}

// waitDone waits for c's pipe to end and returns the error it ended with.
func (c *collector) waitDone(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(d):
		t.Fatalf("pipe not done within %s (%d lines)", d, c.count())
		return nil
	}
}

// writeChunks writes s to w in random pieces, some ending in the middle of a line or a rune.
func writeChunks(w *os.File, s string, rng *rand.Rand) error {
	for len(s) > 0 {
		n := min(len(s), 1+rng.IntN(9000))
		if _, err := w.WriteString(s[:n]); err != nil {
			return err
		}
		s = s[n:]
	}
	return nil
}

// muxStream is the output of pipe i in the tests: short and long lines, CRLF, runes, and a
// last line without newline.
func muxStream(i int) string {
	var b strings.Builder
	for j := range 300 {
		fmt.Fprintf(&b, "pipe %d line %d é\n", i, j)
		if j%100 == 7 {
			b.WriteString(strings.Repeat("L", MaxLine+i) + "\r\n")
		}
		if j%50 == 3 {
			fmt.Fprintf(&b, "crlf %d\r\n", j)
		}
	}
	fmt.Fprintf(&b, "pipe %d last without newline", i)
	return b.String()
}

// TestMuxManyPipes relays many pipes at once, written concurrently in random pieces: each
// pipe's lines arrive whole, in order, and each pipe ends (Done nil) only after its lines were
// flushed.
func TestMuxManyPipes(t *testing.T) {
	var unflushed, flushes atomic.Int64
	m, err := NewMux(func() { unflushed.Store(0); flushes.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	const pipes = 64
	cs := make([]*collector, pipes)
	var writers sync.WaitGroup
	for i := range pipes {
		c := newCollector()
		cs[i] = c
		r, w := newPipe(t)
		p := c.pipe(r, i)
		p.Deliver = func(l Line) { unflushed.Add(1); c.deliver(l) }
		p.Done = func(err error) {
			if n := unflushed.Load(); n != 0 && err == nil {
				err = fmt.Errorf("Done with %d lines not flushed", n)
			}
			c.done <- err
		}
		if err := m.Add(p); err != nil {
			t.Fatal(err)
		}
		writers.Add(1)
		go func() {
			defer writers.Done()
			defer w.Close()
			if err := writeChunks(w, muxStream(i), rand.New(rand.NewPCG(uint64(i), 1))); err != nil {
				t.Error(err)
			}
		}()
	}
	for i, c := range cs {
		if err := c.waitDone(t, 30*time.Second); err != nil {
			t.Errorf("pipe %d: %v", i, err)
		}
		if got, want := c.got(), specLines([]byte(muxStream(i))); !equalLines(got, want) {
			t.Errorf("pipe %d: %s", i, diffLines(got, want))
		}
	}
	writers.Wait()
	t.Logf("%d pipes, %d flushes", pipes, flushes.Load())
}

// TestMuxDataLeftAfterWriterClosed adds a pipe whose writer wrote and closed before the Mux saw
// it, and one fed by a process that exits with a megabyte still in flight: every byte is read
// before the pipe counts as ended.
func TestMuxDataLeftAfterWriterClosed(t *testing.T) {
	m, err := NewMux(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	r, w := newPipe(t)
	in := strings.Repeat("0123456789abcdef\n", 3000) + "no newline"
	if _, err := w.WriteString(in); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c := newCollector()
	if err := m.Add(c.pipe(r, 1)); err != nil {
		t.Fatal(err)
	}
	if err := c.waitDone(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := c.got(), specLines([]byte(in)); !equalLines(got, want) {
		t.Errorf("closed writer: %s", diffLines(got, want))
	}

	r, w = newPipe(t)
	cmd := exec.Command("sh", "-c", `i=0; while [ $i -lt 20000 ]; do echo "line $i of a process that exits at once"; i=$((i+1)); done; printf end`)
	cmd.Stdout = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	c = newCollector()
	if err := m.Add(c.pipe(r, 2)); err != nil {
		t.Fatal(err)
	}
	if err := c.waitDone(t, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	got := c.got()
	if len(got) != 20001 || got[19999] != "line 19999 of a process that exits at once" || got[20000] != "end" {
		t.Errorf("process: %d lines, last %q", len(got), got[len(got)-1])
	}
}

// TestMuxPauseMidLine pauses with half a line read and hands the pipe to a fresh Mux, as god
// does across its re-exec: the line arrives once, whole.
func TestMuxPauseMidLine(t *testing.T) {
	m, err := NewMux(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, w := newPipe(t)
	defer w.Close()
	c := newCollector()
	if err := m.Add(c.pipe(r, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("one\ntw"); err != nil { // one write: one read gets it all
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "line one", func() bool { return c.count() == 1 })
	paused := m.Pause()
	if len(paused) != 1 || string(paused[0].Rest) != "tw" || paused[0].Fd != r {
		t.Fatalf("Pause = %+v, want the pipe with rest \"tw\"", paused)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		t.Fatalf("paused pipe ended by Close: %v", err)
	default:
	}
	if _, err := w.WriteString("o\nthree\n"); err != nil {
		t.Fatal(err)
	}
	w.Close()
	fresh, err := NewMux(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if err := fresh.Add(paused[0]); err != nil {
		t.Fatal(err)
	}
	if err := c.waitDone(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := c.got(); !equal(got, []string{"one", "two", "three"}) {
		t.Errorf("lines = %q", got)
	}
}

// TestMuxPauseResumeUnderLoad pauses and resumes many pipes again and again while their writers
// write, half the time resuming in a fresh Mux: every pipe's lines arrive exactly once, in order.
func TestMuxPauseResumeUnderLoad(t *testing.T) {
	m, err := NewMux(nil)
	if err != nil {
		t.Fatal(err)
	}
	const pipes = 8
	cs := make([]*collector, pipes)
	var writing atomic.Int32
	writing.Store(pipes)
	for i := range pipes {
		c := newCollector()
		cs[i] = c
		r, w := newPipe(t)
		if err := m.Add(c.pipe(r, i)); err != nil {
			t.Fatal(err)
		}
		go func() {
			defer writing.Add(-1)
			defer w.Close()
			if err := writeChunks(w, muxStream(i), rand.New(rand.NewPCG(uint64(i), 2))); err != nil {
				t.Error(err)
			}
		}()
	}
	rounds, restsSeen := 0, 0
	for ; writing.Load() > 0 || rounds < 200; rounds++ {
		paused := m.Pause()
		for _, p := range paused {
			if len(p.Rest) > 0 {
				restsSeen++
			}
		}
		if rounds%2 == 1 {
			m.Close()
			if m, err = NewMux(nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range paused {
			if err := m.Add(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer m.Close()
	for i, c := range cs {
		if err := c.waitDone(t, 30*time.Second); err != nil {
			t.Errorf("pipe %d: %v", i, err)
		}
		if got, want := c.got(), specLines([]byte(muxStream(i))); !equalLines(got, want) {
			t.Errorf("pipe %d: %s", i, diffLines(got, want))
		}
	}
	t.Logf("%d pause rounds, %d pipes paused mid-line", rounds, restsSeen)
}

// openFds counts this process's open fds.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestMuxCloseWithPipes closes a Mux that still relays pipes (writers open, lines unfinished):
// each pipe is told ErrMuxClosed, and no fd is left open; Add then fails and closes its fd.
func TestMuxCloseWithPipes(t *testing.T) {
	before := openFds(t)
	m, err := NewMux(nil)
	if err != nil {
		t.Fatal(err)
	}
	var ws []*os.File
	var cs []*collector
	for i := range 20 {
		r, w := newPipe(t)
		ws = append(ws, w)
		c := newCollector()
		cs = append(cs, c)
		if err := m.Add(c.pipe(r, i)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "whole %d\nhalf", i)
	}
	waitFor(t, 5*time.Second, "the whole lines", func() bool {
		for _, c := range cs {
			if c.count() == 0 {
				return false
			}
		}
		return true
	})
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if err := c.waitDone(t, time.Second); !errors.Is(err, ErrMuxClosed) || !strings.Contains(err.Error(), fmt.Sprintf("job%d stdout", i)) {
			t.Errorf("pipe %d ended with %v, want ErrMuxClosed naming it", i, err)
		}
		if got := c.got(); !equal(got, []string{fmt.Sprint("whole ", i)}) {
			t.Errorf("pipe %d: %q", i, got)
		}
	}
	for _, w := range ws {
		w.Close()
	}
	r, w := newPipe(t)
	w.Close()
	if err := m.Add(Pipe{Fd: r}); !errors.Is(err, ErrMuxClosed) {
		t.Errorf("Add after Close: %v", err)
	}
	if m.Pause() != nil {
		t.Error("Pause after Close returned pipes")
	}
	m.Close()
	if after := openFds(t); after != before {
		t.Errorf("%d fds open before the Mux, %d after Close", before, after)
	}
}

// TestMuxFloodDoesNotStarveQuiet relays a pipe its writer keeps full beside a quiet one: the
// quiet pipe's line arrives while the flood goes on.
func TestMuxFloodDoesNotStarveQuiet(t *testing.T) {
	m, err := NewMux(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	flood, quiet := newCollector(), newCollector()
	fr, fw := newPipe(t)
	qr, qw := newPipe(t)
	defer qw.Close()
	// The flood's sink is slow (a loaded log), so its writer refills the pipe faster than the
	// Mux empties it: a Mux that read a pipe until it is empty would never leave it.
	fp := flood.pipe(fr, 1)
	fp.Deliver = func(l Line) {
		for t0 := time.Now(); time.Since(t0) < 2*time.Microsecond; {
		}
		flood.deliver(l)
	}
	if err := m.Add(fp); err != nil {
		t.Fatal(err)
	}
	// The quiet pipe's line notes how far the flood had got when it arrived.
	var floodAtHello atomic.Int64
	qp := quiet.pipe(qr, 2)
	qp.Deliver = func(l Line) {
		floodAtHello.Store(int64(flood.count()))
		quiet.deliver(l)
	}
	if err := m.Add(qp); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	const floodLine = "flood flood flood flood flood\n"
	flooding := make(chan error, 1)
	go func() {
		chunk := []byte(strings.Repeat(floodLine, 2000))
		for !stop.Load() {
			if _, err := fw.Write(chunk); err != nil {
				flooding <- err
				return
			}
		}
		flooding <- fw.Close()
	}()
	waitFor(t, 10*time.Second, "the flood under way", func() bool { return flood.count() > 3000 })
	atWrite := flood.count()
	if _, err := qw.WriteString("hello\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the quiet pipe's line during the flood", func() bool { return quiet.count() == 1 })
	// Each round reads at most one buffer of the flood; the round under way when hello was
	// written and the next one deliver hello.
	atHello := int(floodAtHello.Load())
	if most := 3 * muxBufSize / len(floodLine); atHello-atWrite > most {
		t.Errorf("%d flood lines went before the quiet line, want at most %d (a round reads one buffer a pipe)", atHello-atWrite, most)
	}
	// The flood still runs: it did not have to end for the quiet line to get through.
	waitFor(t, 10*time.Second, "more flood after hello", func() bool { return flood.count() > atHello+3000 })
	stop.Store(true)
	if err := <-flooding; err != nil {
		t.Fatal(err)
	}
	if err := flood.waitDone(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := quiet.got(); !equal(got, []string{"hello"}) {
		t.Errorf("quiet = %q", got)
	}
}

// BenchmarkMux measures lines per second through a Mux from one pipe kept full by a writer.
func BenchmarkMux(b *testing.B) {
	line := "2024-05-06 GET /index.html 200 1532 bytes in 1.2ms\n"
	chunk := []byte(strings.Repeat(line, 1000))
	m, err := NewMux(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	r, w := newPipe(b)
	var n atomic.Int64
	done := make(chan error, 1)
	if err := m.Add(Pipe{Fd: r, Format: FormatText, Deliver: func(Line) { n.Add(1) }, Done: func(err error) { done <- err }}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	for i := 0; i < b.N; i += 1000 {
		if _, err := w.Write(chunk[:len(line)*min(1000, b.N-i)]); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "lines/s")
}
