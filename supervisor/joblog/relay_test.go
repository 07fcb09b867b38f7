package joblog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// relayPaths are the two ways a stream is relayed: Relay on a reader (a goroutine per stream),
// and a Mux on the pipe's fd (one goroutine for every pipe). The tests below run on both.
var relayPaths = []string{"Relay", "Mux"}

// newPipe returns a pipe as god makes one for a job: the read end a raw fd (blocking until a
// Mux takes it), the write end a file for the writer.
func newPipe(t testing.TB) (r int, w *os.File) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	return p[0], os.NewFile(uintptr(p[1]), "pipe-w")
}

// relayFd relays the read end r until its end, by path, and returns the lines and the error.
// r is closed when it returns.
func relayFd(t *testing.T, path string, r int, meta Line, format Format) ([]Line, error) {
	t.Helper()
	var lines []Line
	add := func(l Line) { lines = append(lines, l) }
	errc := make(chan error, 1)
	switch path {
	case "Relay":
		f := os.NewFile(uintptr(r), "pipe-r")
		defer f.Close()
		go func() { errc <- Relay(f, meta, format, add) }()
	case "Mux":
		m, err := NewMux(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Add(Pipe{Fd: r, Meta: meta, Format: format, Deliver: add, Done: func(err error) { errc <- err }}); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errc:
		return lines, err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not end within 20s", path)
		return nil, nil
	}
}

// relayChild runs script under sh with its stdout (or stderr) on a real pipe
// and relays the pipe by path until EOF, returning the lines delivered.
func relayChild(t *testing.T, path, script string, stream string, format Format) []Line {
	t.Helper()
	r, w := newPipe(t)
	cmd := exec.Command("sh", "-c", script)
	if stream == StreamStderr {
		cmd.Stderr = w
	} else {
		cmd.Stdout = w
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		unix.Close(r)
		t.Fatal(err)
	}
	w.Close() // the child holds the only write end: EOF when it exits
	defer cmd.Process.Kill()
	meta := Line{Job: "job1", Generation: 2, Pid: cmd.Process.Pid, Stream: stream}
	lines, err := relayFd(t, path, r, meta, format)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	return lines
}

func TestRelayChildProcess(t *testing.T) {
	for _, path := range relayPaths {
		t.Run(path, func(t *testing.T) { testRelayChildProcess(t, path) })
	}
}

func testRelayChildProcess(t *testing.T, path string) {
	before := time.Now()
	lines := relayChild(t, path, `for i in $(seq 1 1000); do echo line $i; done; printf 'last without newline'`, StreamStdout, FormatText)
	if len(lines) != 1001 {
		t.Fatalf("got %d lines, want 1001", len(lines))
	}
	for i, l := range lines[:1000] {
		if want := fmt.Sprint("line ", i+1); l.Msg != want {
			t.Fatalf("line %d = %q, want %q", i, l.Msg, want)
		}
	}
	last := lines[1000]
	if last.Msg != "last without newline" {
		t.Errorf("final line = %q", last.Msg)
	}
	if last.Job != "job1" || last.Generation != 2 || last.Pid == 0 || last.Stream != StreamStdout ||
		last.Level != slog.LevelInfo || last.Attrs != nil || last.Seq != 0 {
		t.Errorf("meta not carried: %+v", last)
	}
	if last.Time.Before(before) || last.Time.After(time.Now()) {
		t.Errorf("Time %v not set to the read time", last.Time)
	}
}

func TestRelayStderrJSONAndCRLF(t *testing.T) {
	for _, path := range relayPaths {
		t.Run(path, func(t *testing.T) { testRelayStderrJSONAndCRLF(t, path) })
	}
}

func testRelayStderrJSONAndCRLF(t *testing.T, path string) {
	lines := relayChild(t, path, `printf '{"level":"error","msg":"bad","code":7}\r\nplain\r\n\n' >&2`, StreamStderr, FormatJSON)
	if len(lines) != 3 {
		t.Fatalf("got %d lines: %+v", len(lines), lines)
	}
	if l := lines[0]; l.Level != slog.LevelError || l.Msg != "bad" || attrsString(l.Attrs) != "code=i:7" || l.Stream != StreamStderr {
		t.Errorf("json line = %+v", l)
	}
	if l := lines[1]; l.Level != slog.LevelInfo || l.Msg != "plain" {
		t.Errorf("text on stderr = %+v, want Info \"plain\"", l)
	}
	if lines[2].Msg != "" {
		t.Errorf("empty line = %q", lines[2].Msg)
	}
}

// relayString relays s, by path, through a real pipe fed by a goroutine.
func relayString(t *testing.T, path, s string) []string {
	t.Helper()
	r, w := newPipe(t)
	go func() {
		io.WriteString(w, s)
		w.Close()
	}()
	lines, err := relayFd(t, path, r, Line{}, FormatText)
	if err != nil {
		t.Fatal(err)
	}
	return msgs(lines)
}

func TestRelayLongLines(t *testing.T) {
	for _, path := range relayPaths {
		t.Run(path, func(t *testing.T) { testRelayLongLines(t, path) })
	}
}

func testRelayLongLines(t *testing.T, path string) {
	long := strings.Repeat("x", 3*MaxLine+100)
	got := relayString(t, path, long+"\nshort\n"+long)
	want := []int{MaxLine, MaxLine, MaxLine, 100, 5, MaxLine, MaxLine, MaxLine, 100}
	if len(got) != len(want) {
		t.Fatalf("got %d pieces, want %d", len(got), len(want))
	}
	for i, n := range want {
		if len(got[i]) != n {
			t.Errorf("piece %d has %d bytes, want %d", i, len(got[i]), n)
		}
	}
	if got[4] != "short" {
		t.Errorf("piece 4 = %q", got[4])
	}
}

func TestRelaySplitKeepsRunesAndCRLF(t *testing.T) {
	for _, path := range relayPaths {
		t.Run(path, func(t *testing.T) { testRelaySplitKeepsRunesAndCRLF(t, path) })
	}
}

func testRelaySplitKeepsRunesAndCRLF(t *testing.T, path string) {
	a := strings.Repeat("a", MaxLine-1)
	got := relayString(t, path, a+"é\n"+a+"\r\n"+strings.Repeat("b", MaxLine)+"\n"+"end")
	want := []string{a, "é", a, strings.Repeat("b", MaxLine), "end"}
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: got %d bytes %.8q..., want %d bytes", i, len(got[i]), got[i], len(want[i]))
		}
	}
}

// errAfter yields data once and then fails.
type errAfter struct {
	data string
	err  error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.data == "" {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}

func TestRelayReadError(t *testing.T) {
	boom := errors.New("boom")
	var got []string
	err := Relay(&errAfter{data: "one\ntwo", err: boom}, Line{Job: "web", Stream: StreamStdout, Pid: 9}, FormatText,
		func(l Line) { got = append(got, l.Msg) })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "web stdout (pid 9)") {
		t.Errorf("err = %v, want boom naming the job", err)
	}
	if !equal(got, []string{"one", "two"}) {
		t.Errorf("delivered %q before the error", got)
	}
}

// stuck never returns data or an error.
type stuck struct{}

func (stuck) Read([]byte) (int, error) { return 0, nil }

func TestRelayNoProgress(t *testing.T) {
	if err := Relay(stuck{}, Line{}, FormatText, func(Line) {}); !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("err = %v, want io.ErrNoProgress", err)
	}
}

// repeatReader yields chunk n times, like a chatty job's pipe.
type repeatReader struct {
	chunk []byte
	off   int
	n     int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.chunk[r.off:])
	r.off += k
	if r.off == len(r.chunk) {
		r.off = 0
		r.n--
	}
	return k, nil
}

// BenchmarkRelay measures lines per second from a reader through Parse to
// add, and through a Hub that logs JSON to io.Discard.
func BenchmarkRelay(b *testing.B) {
	lines := map[Format]string{
		FormatText:   "2024-05-06 GET /index.html 200 1532 bytes in 1.2ms\n",
		FormatJSON:   `{"time":"2024-05-06T07:08:09Z","level":"INFO","msg":"request","method":"GET","path":"/index.html","status":200,"ms":1.2}` + "\n",
		FormatLogfmt: `time=2024-05-06T07:08:09Z level=INFO msg=request method=GET path=/index.html status=200 ms=1.2` + "\n",
	}
	for _, format := range []Format{FormatText, FormatJSON, FormatLogfmt} {
		line := lines[format]
		b.Run(string(format), func(b *testing.B) {
			r := &repeatReader{chunk: []byte(line), n: b.N}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			b.ResetTimer()
			count := 0
			if err := Relay(r, Line{Job: "bench"}, format, func(Line) { count++ }); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(count)/b.Elapsed().Seconds(), "lines/s")
		})
		b.Run(string(format)+"/hub", func(b *testing.B) {
			h := NewHub(slog.New(slog.NewJSONHandler(io.Discard, nil)), 1000)
			r := &repeatReader{chunk: []byte(line), n: b.N}
			b.SetBytes(int64(len(line)))
			b.ReportAllocs()
			b.ResetTimer()
			if err := Relay(r, Line{Job: "bench", Stream: StreamStdout}, format, h.Add); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
