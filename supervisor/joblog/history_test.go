package joblog

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestHistoryFilesThenRing: with a ring of 10 lines and small rotated files, History gives every
// line since a time exactly once and in order: the old ones from the files, the newest from the
// ring; lines of the same microsecond are not doubled; Stream filters; json records are parsed.
func TestHistoryFilesThenRing(t *testing.T) {
	fs, _ := newTestFiles(t, FilesConfig{Size: 2048, Keep: 100})
	h := NewHub(nil, 10)
	h.SetFiles(fs)
	base := time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)
	const total = 300
	for i := range total {
		// Pairs of lines share a microsecond, so that the ring's oldest line has a twin in the
		// files that only the count rule keeps from coming twice or not at all.
		l := Line{Time: base.Add(time.Duration(i/2) * time.Millisecond).Add(time.Duration(i%2) * 100 * time.Nanosecond),
			Job: "web", Generation: 1, Pid: 7, Stream: StreamStdout, Msg: fmt.Sprintf("n=%d", i)}
		if i%3 == 0 {
			l.Stream = StreamStderr
		}
		h.Add(l)
	}
	// Lines that are in the ring only (the writer has not written them yet) must come too.
	fs.Sync(10 * time.Second)
	h.Add(Line{Time: base.Add(time.Hour), Job: "web", Stream: StreamStdout, Msg: "late"})
	fs.Note("web", base.Add(time.Hour), slog.LevelInfo, "exited")

	collect := func(q HistoryQuery) []string {
		var out []string
		for l, err := range h.History(q) {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, l.Msg)
		}
		return out
	}
	got := collect(HistoryQuery{Jobs: []string{"web"}})
	if len(got) != total+1 || got[total] != "late" {
		t.Fatalf("History: %d lines, last %q; want %d, last late", len(got), got[len(got)-1], total+1)
	}
	for i := range total {
		if got[i] != fmt.Sprintf("n=%d", i) {
			t.Fatalf("line %d: %q, want n=%d (%v)", i, got[i], i, got[max(0, i-3):min(len(got), i+3)])
		}
	}
	since := collect(HistoryQuery{Jobs: []string{"web"}, Since: base.Add(100 * time.Millisecond)})
	if len(since) != total-200+1 || since[0] != "n=200" {
		t.Errorf("since 100ms: %d lines from %q, want %d from n=200", len(since), since[0], total-200+1)
	}
	errs := collect(HistoryQuery{Jobs: []string{"web"}, Stream: StreamStderr})
	if len(errs) != total/3 || errs[1] != "n=3" {
		t.Errorf("stderr: %d lines (%v...), want %d", len(errs), errs[:2], total/3)
	}

	// A json job's records are parsed as its relay parsed them; two jobs merge by time.
	h.Add(Line{Time: base.Add(30 * time.Minute), Job: "api", Stream: StreamStdout, Msg: "hello",
		Raw: `{"level":"warn","msg":"hello","k":1}`, Level: slog.LevelWarn})
	for i := range 20 { // push it out of api's ring
		h.Add(Line{Time: base.Add(40*time.Minute + time.Duration(i)), Job: "api", Stream: StreamStdout, Msg: "x"})
	}
	fs.Sync(10 * time.Second)
	var lines []Line
	for l, err := range h.History(HistoryQuery{Jobs: []string{"api", "web"}, Since: base.Add(20 * time.Minute),
		Format: func(job string) Format { return map[string]Format{"api": FormatJSON}[job] }}) {
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	if len(lines) != 22 || lines[0].Msg != "hello" || lines[0].Level != slog.LevelWarn || len(lines[0].Attrs) != 1 || lines[21].Msg != "late" {
		t.Errorf("api and web since 20m: %d lines, first %+v, last %+v", len(lines), lines[0], lines[len(lines)-1])
	}
}

// TestParseRecord reads back what AppendRecord writes, and refuses what is not a record.
func TestParseRecord(t *testing.T) {
	in := Line{Time: time.Date(2026, 12, 7, 14, 39, 25, 123456000, time.UTC), Stream: StreamStderr, Pid: 4242, Generation: 3, Msg: "a\tb c"}
	rec := AppendRecord(nil, &in)
	l, ok := ParseRecord(rec[:len(rec)-1])
	if !ok || !l.Time.Equal(in.Time) || l.Stream != in.Stream || l.Pid != 4242 || l.Generation != 3 || l.Msg != `a\tb c` {
		t.Fatalf("ParseRecord(%q) = %+v, %v", rec, l, ok)
	}
	for _, bad := range []string{"", "2026-12-07T14:39:25.123456Z", "2026-12-07T14:39:25.123456Z stdout pid=1 gen=2",
		"2026-12-07T14:39:25.123456Z other pid=1 gen=2 x", "2026-12-07T14:39:25Z stdout pid=1 gen=2 x",
		"2026-12-07T14:39:25.123456Z stdout pid=-1 gen=2 x", "2026-12-07T14:39:25.123456Z stdout gen=2 pid=1 x"} {
		if l, ok := ParseRecord([]byte(bad)); ok {
			t.Errorf("ParseRecord(%q) = %+v, want not a record", bad, l)
		}
	}
}

// FuzzParseRecord: any line is a record that prints back as itself, or not a record; no panic.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte("2026-12-07T14:39:25.123456Z stdout pid=4242 gen=3 the line"))
	f.Add([]byte("2026-12-07T14:39:25.123456Z god pid=0 gen=0 5 lines lost"))
	f.Add([]byte("2026-12-07T14:39:25.123456Z stderr pid=1 gen=99999999999 x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, ok := ParseRecord(b)
		if !ok {
			return
		}
		back := AppendRecord(nil, &l)
		if string(back[:len(back)-1]) != string(b) && !strings.ContainsAny(string(b), "\x00\n\r\t\x7f") {
			// Only escaping (Clean) or a non-canonical number may change the text.
			if l2, ok := ParseRecord(back[:len(back)-1]); !ok || !l2.Time.Equal(l.Time) || l2.Pid != l.Pid || l2.Generation != l.Generation || l2.Stream != l.Stream {
				t.Fatalf("%q -> %+v -> %q does not read back", b, l, back)
			}
		}
	})
}
