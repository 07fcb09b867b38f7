package joblog

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// newTestFiles is a Files in a temp dir, closed when the test ends, logging to recs.
func newTestFiles(t *testing.T, cfg FilesConfig) (*Files, *testutil.Records) {
	t.Helper()
	logger, recs := testutil.NewLogger()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Logger = logger
	fs, err := NewFiles(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs, recs
}

// numbered is line i of job, as a relay delivers it.
func numbered(job string, i int) *Line {
	return &Line{Time: time.Now(), Job: job, Generation: 1, Pid: 42, Stream: StreamStdout, Msg: fmt.Sprintf("line %06d", i)}
}

// jobFiles returns the rotated files of job in age order, then current, with their lines.
func jobFiles(t *testing.T, fs *Files, job string) (names []string, lines [][]string) {
	t.Helper()
	dir := filepath.Join(fs.cfg.Dir, job)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != fileCurrent {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	names = append(names, fileCurrent)
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		s := string(b)
		if s != "" && !strings.HasSuffix(s, "\n") {
			t.Fatalf("%s does not end with a newline: %q", n, s[max(0, len(s)-40):])
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(s, "\n"), "\n"))
		if s == "" {
			lines[len(lines)-1] = nil
		}
	}
	return names, lines
}

var recordRe = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z (stdout|stderr|god) pid=\d+ gen=\d+ (.*)$`)

// TestFilesRecord: the record format, the raw text of structured lines, escaping.
func TestFilesRecord(t *testing.T) {
	at := time.Date(2026, 12, 7, 15, 4, 5, 123456789, time.FixedZone("X", 3600))
	for _, c := range []struct {
		l    Line
		want string
	}{
		{Line{Time: at, Stream: StreamStdout, Pid: 4242, Generation: 3, Msg: "hello world"},
			"2026-12-07T14:04:05.123456Z stdout pid=4242 gen=3 hello world\n"},
		{Line{Time: at, Stream: StreamStderr, Pid: 1, Generation: 1, Msg: "hi", Raw: `{"msg":"hi","level":"warn"}`},
			`2026-12-07T14:04:05.123456Z stderr pid=1 gen=1 {"msg":"hi","level":"warn"}` + "\n"},
		{Line{Time: at, Stream: StreamStdout, Pid: 1, Generation: 1, Msg: "a\x1b[31mred\tx\x00\xff"},
			"2026-12-07T14:04:05.123456Z stdout pid=1 gen=1 a\\x1b[31mred\\tx\\x00\ufffd\n"},
		{Line{Time: at.Truncate(time.Second), Stream: StreamStdout, Pid: 1, Generation: 1},
			"2026-12-07T14:04:05.000000Z stdout pid=1 gen=1 \n"},
	} {
		if got := string(AppendRecord(nil, &c.l)); got != c.want {
			t.Errorf("AppendRecord(%+v)\n got %q\nwant %q", c.l, got, c.want)
		}
		if got := string(AppendClean(nil, c.l.Msg)); got != Clean(c.l.Msg) {
			t.Errorf("AppendClean(%q) = %q, Clean = %q", c.l.Msg, got, Clean(c.l.Msg))
		}
	}
	// A json job's line goes to the file as written, through the Splitter and the Hub.
	fs, _ := newTestFiles(t, FilesConfig{})
	h := NewHub(nil, 10)
	h.SetFiles(fs)
	sp := NewSplitter(Line{Job: "j", Pid: 7, Generation: 2, Stream: StreamStdout}, FormatJSON, h.AddHeld)
	sp.Feed([]byte(`{"level":"error","msg":"boom","k":1}`+"\n"), at)
	fs.Sync(10 * time.Second)
	_, lines := jobFiles(t, fs, "j")
	if want := `2026-12-07T14:04:05.123456Z stdout pid=7 gen=2 {"level":"error","msg":"boom","k":1}`; len(lines) != 1 || len(lines[0]) != 1 || lines[0][0] != want {
		t.Errorf("file holds %q, want %q", lines, want)
	}
	if tail := h.Tail(nil, 0); len(tail) != 1 || tail[0].Raw != "" || tail[0].Msg != "boom" {
		t.Errorf("ring holds %+v, want Msg boom and no Raw", tail)
	}
}

// TestFilesRotateAtSize: current never exceeds Size, rotation happens only at line boundaries,
// and every line is in exactly one file, in order.
func TestFilesRotateAtSize(t *testing.T) {
	recLen := len(AppendRecord(nil, numbered("j", 0)))
	const perFile = 5
	fs, _ := newTestFiles(t, FilesConfig{Size: int64(perFile * recLen), Keep: 100})
	const n = 53
	for i := range n {
		fs.Write(numbered("j", i))
		if i%7 == 0 {
			fs.Sync(10 * time.Second) // batches of several sizes across the boundary
		}
	}
	fs.Sync(10 * time.Second)
	names, lines := jobFiles(t, fs, "j")
	if want := n/perFile + 1; len(names) != want {
		t.Errorf("%d files %v, want %d", len(names), names, want)
	}
	next := 0
	for i, ls := range lines {
		if i < len(lines)-1 && len(ls) != perFile {
			t.Errorf("%s holds %d lines, want %d (a full file)", names[i], len(ls), perFile)
		}
		for _, l := range ls {
			m := recordRe.FindStringSubmatch(l)
			if m == nil || m[2] != fmt.Sprintf("line %06d", next) {
				t.Fatalf("%s: %q, want line %d", names[i], l, next)
			}
			next++
		}
	}
	if next != n {
		t.Errorf("%d lines in the files, want %d", next, n)
	}
	for _, name := range names[:len(names)-1] {
		if !regexp.MustCompile(`^@\d{8}T\d{6}\.\d{6}Z\.log$`).MatchString(name) {
			t.Errorf("rotated file %q is not @YYYYMMDDTHHMMSS.UUUUUUZ.log", name)
		}
	}
	// A line longer than Size goes alone into a file of its own.
	long := numbered("j", 0)
	long.Msg = strings.Repeat("x", 3*perFile*recLen)
	fs.Write(long)
	fs.Write(numbered("j", n))
	fs.Sync(10 * time.Second)
	names2, lines2 := jobFiles(t, fs, "j")
	if len(names2) != len(names)+2 {
		t.Fatalf("after a long line: files %v, want 2 more than %v", names2, names)
	}
	if got := lines2[len(lines2)-2]; len(got) != 1 || !strings.HasSuffix(got[0], long.Msg) {
		t.Errorf("the long line's file holds %d lines", len(got))
	}
	if got := lines2[len(lines2)-1]; len(got) != 1 || !strings.HasSuffix(got[0], fmt.Sprintf("line %06d", n)) {
		t.Errorf("current after the long line holds %q", got)
	}
}

// TestFilesKeep: only the newest Keep rotated files stay, and they hold the newest lines.
func TestFilesKeep(t *testing.T) {
	recLen := len(AppendRecord(nil, numbered("j", 0)))
	fs, _ := newTestFiles(t, FilesConfig{Size: int64(2 * recLen), Keep: 3})
	const n = 40
	for i := range n {
		fs.Write(numbered("j", i))
		fs.Sync(10 * time.Second) // one rotation per write at most: distinct, sortable names
	}
	names, lines := jobFiles(t, fs, "j")
	if len(names) != 4 {
		t.Fatalf("files %v, want 3 rotated and current", names)
	}
	var all []string
	for _, ls := range lines {
		all = append(all, ls...)
	}
	if len(all) != 8 || !strings.HasSuffix(all[0], fmt.Sprintf("line %06d", n-8)) || !strings.HasSuffix(all[7], fmt.Sprintf("line %06d", n-1)) {
		t.Errorf("kept lines %q, want the last 8", all)
	}

	// Many rotations in one batch, then more in the next: the names still sort by age, so the
	// newest files are the ones kept.
	fsb, _ := newTestFiles(t, FilesConfig{Size: int64(2 * recLen), Keep: 3})
	for batch := range 3 {
		for i := range 20 {
			fsb.Write(numbered("b", batch*20+i))
		}
		fsb.Sync(10 * time.Second)
	}
	_, lines = jobFiles(t, fsb, "b")
	all = all[:0]
	for _, ls := range lines {
		all = append(all, ls...)
	}
	for i, l := range all {
		if want := fmt.Sprintf("line %06d", 60-len(all)+i); !strings.HasSuffix(l, want) {
			t.Fatalf("batched rotations kept %q, want the last %d lines in order", all, len(all))
		}
	}

	// Keep 0: no rotated file stays.
	fs0, _ := newTestFiles(t, FilesConfig{Size: int64(2 * recLen), Keep: 0})
	for i := range 10 {
		fs0.Write(numbered("k", i))
		fs0.Sync(10 * time.Second)
	}
	if names, _ := jobFiles(t, fs0, "k"); len(names) != 1 {
		t.Errorf("Keep 0: files %v, want current only", names)
	}
}

// TestFilesReopen: a current removed with its directory, or the whole log directory, is made
// anew at the next write; an existing current is appended to, a cut last line ended first.
func TestFilesReopen(t *testing.T) {
	fs, _ := newTestFiles(t, FilesConfig{})
	fs.Write(numbered("j", 0))
	fs.Sync(10 * time.Second)
	if err := os.RemoveAll(filepath.Join(fs.cfg.Dir, "j")); err != nil {
		t.Fatal(err)
	}
	fs.Write(numbered("j", 1))
	fs.Sync(10 * time.Second)
	if _, lines := jobFiles(t, fs, "j"); len(lines[0]) != 1 || !strings.HasSuffix(lines[0][0], "line 000001") {
		t.Errorf("after the job's directory was removed: %q, want line 1", lines)
	}
	if err := os.RemoveAll(fs.cfg.Dir); err != nil {
		t.Fatal(err)
	}
	fs.Write(numbered("j", 2))
	fs.Sync(10 * time.Second)
	if _, lines := jobFiles(t, fs, "j"); len(lines[0]) != 1 || !strings.HasSuffix(lines[0][0], "line 000002") {
		t.Errorf("after the log directory was removed: %q, want line 2", lines)
	}
	fs.Close()

	// A new Files (god after an upgrade or a crash) appends, ending a cut line.
	f, err := os.OpenFile(fs.Path("j"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("2026-12-07T14:04:05.123456Z stdout pid=1 gen=1 cut sho")
	f.Close()
	fs2, _ := newTestFiles(t, FilesConfig{Dir: fs.cfg.Dir})
	fs2.Write(numbered("j", 3))
	fs2.Sync(10 * time.Second)
	_, lines := jobFiles(t, fs2, "j")
	if len(lines[0]) != 3 || !strings.HasSuffix(lines[0][1], "cut sho") || !strings.HasSuffix(lines[0][2], "line 000003") {
		t.Errorf("appended file: %q", lines)
	}
	if fi, err := os.Stat(fs.Path("j")); err != nil || fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("current: %v, mode wider than 0640", err)
	}
}

// TestFilesFailing: a file that cannot be written is reported once, its lines are counted as
// lost, and writing resumes (with a note of the loss) once it can.
func TestFilesFailing(t *testing.T) {
	fs, recs := newTestFiles(t, FilesConfig{})
	blocker := filepath.Join(fs.cfg.Dir, "j")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil { // a file where the job's directory goes
		t.Fatal(err)
	}
	for i := range 5 {
		fs.Write(numbered("j", i))
		fs.Sync(10 * time.Second)
	}
	failed := func(r slog.Record) bool { return strings.HasPrefix(r.Message, "log file: cannot write") }
	if n := recs.Count(failed); n != 1 {
		t.Errorf("%d failure records, want 1 (rate-limited)", n)
	}
	recs.Wait(t, time.Second, 1, "failure names job and path", func(r slog.Record) bool {
		return failed(r) && testutil.Attr(r, "job") == "j" && testutil.Attr(r, "path") == fs.Path("j")
	})
	// Another job is not disturbed.
	fs.Write(numbered("other", 0))
	fs.Sync(10 * time.Second)
	if _, lines := jobFiles(t, fs, "other"); len(lines[0]) != 1 {
		t.Errorf("other job: %q", lines)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	i := 5
	testutil.Eventually(t, 30*time.Second, "writing resumes", func() bool {
		fs.Write(numbered("j", i))
		i++
		fs.Sync(10 * time.Second)
		b, _ := os.ReadFile(fs.Path("j"))
		return len(b) > 0
	})
	_, lines := jobFiles(t, fs, "j")
	if len(lines[0]) != 2 || !strings.Contains(lines[0][0], " god pid=0 gen=0 ") || !strings.Contains(lines[0][0], " lines lost while the file could not be written") {
		t.Errorf("resumed file: %q, want the loss noted, then the line", lines)
	}
	recs.Wait(t, time.Second, 1, "resume reported", func(r slog.Record) bool {
		return r.Message == "log file: writing again" && testutil.Attr(r, "lines_lost") == strconv.Itoa(i-1)
	})
}

// TestFilesConcurrentJobs: many jobs written at once from many goroutines, with rotation, lose
// and mix no line.
func TestFilesConcurrentJobs(t *testing.T) {
	recLen := len(AppendRecord(nil, numbered("job0", 0)))
	fs, _ := newTestFiles(t, FilesConfig{Size: int64(1000 * recLen), Keep: 100})
	const jobs, n = 8, 20000
	var wg sync.WaitGroup
	for j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			job := fmt.Sprintf("job%d", j)
			for i := range n {
				fs.Write(numbered(job, i))
				if i%5000 == 0 {
					fs.Sync(10 * time.Second)
				}
			}
		}()
	}
	wg.Wait()
	fs.Close() // writes everything
	for j := range jobs {
		job := fmt.Sprintf("job%d", j)
		_, lines := jobFiles(t, fs, job)
		next := 0
		for _, ls := range lines {
			for _, l := range ls {
				if !strings.HasSuffix(l, fmt.Sprintf(" line %06d", next)) {
					if strings.Contains(l, " god ") && strings.Contains(l, "lines dropped") {
						t.Fatalf("%s: lines dropped on a fast disk: %q", job, l)
					}
					t.Fatalf("%s: %q, want line %d", job, l, next)
				}
				next++
			}
		}
		if next != n {
			t.Errorf("%s: %d lines, want %d", job, next, n)
		}
	}
}

// TestFilesNote: god's records about a job go into its file with pid and gen in their fields
// and the other attrs after the message; debug records stay out.
func TestFilesNote(t *testing.T) {
	fs, _ := newTestFiles(t, FilesConfig{})
	at := time.Date(2026, 12, 7, 15, 0, 0, 0, time.UTC)
	fs.Note("j", at, slog.LevelInfo, "started", "pid", 42, "gen", 3, "instance", 0)
	fs.Note("j", at, slog.LevelDebug, "chatter")
	fs.Note("j", at, slog.LevelWarn, "exited", "pid", 42, "gen", 3, "exit", "signal 9 (SIGKILL)", "ran", "1.5s")
	fs.Sync(10 * time.Second)
	_, lines := jobFiles(t, fs, "j")
	want := []string{
		"2026-12-07T15:00:00.000000Z god pid=42 gen=3 started instance=0",
		`2026-12-07T15:00:00.000000Z god pid=42 gen=3 exited level=WARN exit="signal 9 (SIGKILL)" ran=1.5s`,
	}
	if !slices.Equal(lines[0], want) {
		t.Errorf("notes:\n got %q\nwant %q", lines[0], want)
	}
}

// openFd reports whether this process holds path open.
func openFd(path string) bool {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == path {
			return true
		}
	}
	return false
}

// TestFilesForget: a removed job's lines are written and its file closed (no fd per job ever
// removed); a job of the same name that comes back appends to the same file.
func TestFilesForget(t *testing.T) {
	fs, _ := newTestFiles(t, FilesConfig{})
	h := NewHub(nil, 10)
	h.SetFiles(fs)
	l := numbered("j", 0)
	h.AddHeld(*l)
	fs.Sync(10 * time.Second)
	if !openFd(fs.Path("j")) {
		t.Fatalf("current not open after a write")
	}
	h.AddHeld(*numbered("j", 1))
	h.Forget("j")
	fs.Sync(10 * time.Second)
	if openFd(fs.Path("j")) {
		t.Errorf("current still open after Forget")
	}
	h.AddHeld(*numbered("j", 2))
	fs.Sync(10 * time.Second)
	_, lines := jobFiles(t, fs, "j")
	if len(lines[0]) != 3 || !strings.HasSuffix(lines[0][1], "line 000001") || !strings.HasSuffix(lines[0][2], "line 000002") {
		t.Errorf("file after Forget and return: %q", lines)
	}
}

// TestFilesStuckDisk: a file whose writes block (a FIFO nobody reads stands in for a hung disk)
// never blocks Write: past 4 MiB waiting, lines are dropped and counted, and the count is in the
// file once it drains, so lines written plus lines dropped is every line.
func TestFilesStuckDisk(t *testing.T) {
	fs, _ := newTestFiles(t, FilesConfig{})
	if err := os.MkdirAll(filepath.Join(fs.cfg.Dir, "j"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fs.Path("j"), 0o640); err != nil {
		t.Fatal(err)
	}
	const n = 100_000 // ~6 MB of records: more than the pipe and the 4 MiB buffer hold
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			fs.Write(numbered("j", i))
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Write blocked behind a file that does not take writes")
	}
	got := make(chan []byte)
	go func() {
		f, err := os.Open(fs.Path("j"))
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(f) // until the writer closes its end
		f.Close()
		got <- b
	}()
	fs.Close()
	var b []byte
	select {
	case b = <-got:
	case <-time.After(60 * time.Second):
		t.Fatal("the FIFO never reached end of file")
	}
	lines, dropped := 0, 0
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if m := regexp.MustCompile(` god pid=0 gen=0 (\d+) lines dropped`).FindStringSubmatch(l); m != nil {
			k, _ := strconv.Atoi(m[1])
			dropped += k
		} else if recordRe.MatchString(l) {
			lines++
		} else {
			t.Fatalf("not a record: %q", l)
		}
	}
	if dropped == 0 || lines+dropped != n {
		t.Errorf("%d lines written, %d dropped: want some dropped and %d in all", lines, dropped, n)
	}
	t.Logf("%d lines written, %d dropped and counted", lines, dropped)
}

// TestFilesSetLimits: a job's own size and keep (log-size, log-keep) replace the Files' for that
// job only; size 0 and keep -1 go back to the Files' own.
func TestFilesSetLimits(t *testing.T) {
	recLen := len(AppendRecord(nil, numbered("j", 0)))
	fs, _ := newTestFiles(t, FilesConfig{Size: int64(100 * recLen), Keep: 5})
	fs.SetLimits("own", int64(2*recLen), 1)
	for i := range 20 {
		fs.Write(numbered("own", i))
		fs.Write(numbered("other", i))
		fs.Sync(10 * time.Second)
	}
	if names, lines := jobFiles(t, fs, "own"); len(names) != 2 || len(lines[0]) != 2 || len(lines[1]) != 2 {
		t.Errorf("own (2 records a file, keep 1): files %v with %v", names, lines)
	}
	if names, lines := jobFiles(t, fs, "other"); len(names) != 1 || len(lines[0]) != 20 {
		t.Errorf("other (the Files' 100 records a file): files %v with %d lines", names, len(lines[0]))
	}
	fs.SetLimits("own", 0, -1)
	for i := range 20 {
		fs.Write(numbered("own", 20+i))
		fs.Sync(10 * time.Second)
	}
	if names, _ := jobFiles(t, fs, "own"); len(names) != 2 {
		t.Errorf("own back at the Files' limits: files %v, want the old rotated one and current", names)
	}
}

// BenchmarkFiles measures the path of god --log-dir for one flooding job, as BenchmarkLogDir
// runs it end to end but without the processes: numbered lines (seq's) in 64 KiB reads through
// a batch Splitter into a Hub (ring of 1000, god's logger at warn, so the lines are not also records)
// that writes them to files (10 MiB, 10 kept), the Hub flushed once per read as the Mux does,
// and the time taken until every line is written.
func BenchmarkFiles(b *testing.B) {
	var src []byte
	for i := 1; len(src) < 1<<20; i++ {
		src = strconv.AppendInt(src, int64(i), 10)
		src = append(src, '\n')
	}
	perChunk := 0 // lines in src
	for _, c := range src {
		if c == '\n' {
			perChunk++
		}
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fs, err := NewFiles(FilesConfig{Dir: b.TempDir(), Logger: logger})
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	h := NewHub(logger, 1000)
	h.SetFiles(fs)
	sp := NewBatchSplitter(Line{Job: "bench", Pid: 4242, Generation: 1, Stream: StreamStdout}, FormatText, h.AddHeldLines)
	b.SetBytes(int64(len(src) / perChunk))
	b.ReportAllocs()
	b.ResetTimer()
	lines := 0
	for lines < b.N {
		for off := 0; off < len(src) && lines < b.N; off += muxBufSize {
			lines += sp.Feed(src[off:min(off+muxBufSize, len(src))], time.Now())
			h.Flush()
		}
	}
	fs.Sync(time.Minute)
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkAppendRecord measures the formatting of one record of a log file: from scratch
// (AppendRecord) and as a sink does it (recordFormat), for lines of one read and of a new
// microsecond each.
func BenchmarkAppendRecord(b *testing.B) {
	l := Line{Time: time.Now(), Job: "bench", Pid: 4242, Generation: 1, Stream: StreamStdout, Msg: "123456"}
	var buf []byte
	b.Run("scratch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendRecord(buf[:0], &l)
		}
	})
	b.Run("sink", func(b *testing.B) {
		var rf recordFormat
		b.ReportAllocs()
		for b.Loop() {
			buf = rf.append(buf[:0], &l)
		}
	})
	b.Run("sink-each-us", func(b *testing.B) {
		var rf recordFormat
		b.ReportAllocs()
		for b.Loop() {
			l.Time = l.Time.Add(time.Microsecond)
			buf = rf.append(buf[:0], &l)
		}
	})
}

// TestRecordFormat: a sink's formatter, which keeps the time's second and the fields between
// records, writes what AppendRecord writes, whatever changes from one record to the next.
func TestRecordFormat(t *testing.T) {
	at := time.Date(2026, 12, 31, 23, 59, 59, 999_999_000, time.UTC)
	var rf recordFormat
	lines := []Line{
		{Time: at, Stream: StreamStdout, Pid: 1, Generation: 1, Msg: "a"},
		{Time: at, Stream: StreamStdout, Pid: 1, Generation: 1, Msg: "same read"},
		{Time: at.Add(time.Microsecond), Stream: StreamStdout, Pid: 1, Generation: 1, Msg: "next year"},
		{Time: at.Add(time.Second + 5*time.Microsecond), Stream: StreamStderr, Pid: 1, Generation: 1, Msg: "stderr"},
		{Time: at.Add(time.Second + 999*time.Nanosecond), Stream: StreamStderr, Pid: 22, Generation: 1, Msg: "pid"},
		{Time: at.Add(time.Second).In(time.FixedZone("X", -3600)), Stream: StreamStderr, Pid: 22, Generation: 7, Msg: "zone, gen"},
		{Time: at.Add(-time.Hour), Stream: StreamGod, Msg: "back in time"},
		{Time: time.Date(12026, 1, 1, 0, 0, 0, 1000, time.UTC), Stream: StreamStdout, Msg: "a year of five digits"},
		{Time: time.Date(12026, 1, 1, 0, 0, 0, 2000, time.UTC), Stream: StreamStdout, Msg: "again"},
		{Time: at, Stream: StreamStdout, Msg: "back", Raw: "raw\x1b"},
		{Stream: StreamStdout, Msg: "zero time"},
	}
	for _, l := range lines {
		if got, want := string(rf.append(nil, &l)), string(AppendRecord(nil, &l)); got != want {
			t.Errorf("recordFormat.append = %q, want %q", got, want)
		}
	}
}
