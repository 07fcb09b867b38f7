package joblog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// msgs lists the messages of lines, to compare them in one go.
func msgs(ls []Line) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Msg
	}
	return out
}

// equal compares string slices for test messages.
func equal(a, b []string) bool {
	return fmt.Sprint(a) == fmt.Sprint(b)
}

func TestHubRingBoundAndOrder(t *testing.T) {
	h := NewHub(nil, 3)
	for i := 1; i <= 5; i++ {
		h.Add(Line{Job: "a", Msg: fmt.Sprint("a", i)})
		h.Add(Line{Job: "b", Msg: fmt.Sprint("b", i)})
	}
	h.Add(Line{Job: "c", Msg: "c1"})

	if got := msgs(h.Tail([]string{"a"}, 0)); !equal(got, []string{"a3", "a4", "a5"}) {
		t.Errorf("Tail(a, all) = %v", got)
	}
	if got := msgs(h.Tail([]string{"a"}, 2)); !equal(got, []string{"a4", "a5"}) {
		t.Errorf("Tail(a, 2) = %v", got)
	}
	if got := msgs(h.Tail([]string{"b", "a", "a", "nope"}, 0)); !equal(got, []string{"a3", "b3", "a4", "b4", "a5", "b5"}) {
		t.Errorf("Tail(b,a) = %v", got)
	}
	if got := msgs(h.Tail(nil, 4)); !equal(got, []string{"b4", "a5", "b5", "c1"}) {
		t.Errorf("Tail(all, 4) = %v", got)
	}
	all := h.Tail(nil, 0)
	if len(all) != 7 {
		t.Fatalf("Tail(all) has %d lines, want 7", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Fatalf("Tail not in Seq order at %d: %d after %d", i, all[i].Seq, all[i-1].Seq)
		}
	}
	if all[len(all)-1].Seq != 11 {
		t.Errorf("last Seq = %d, want 11", all[len(all)-1].Seq)
	}

	h.Forget("a")
	if got := msgs(h.Tail(nil, 0)); !equal(got, []string{"b3", "b4", "b5", "c1"}) {
		t.Errorf("after Forget(a): %v", got)
	}
	if got := h.Tail([]string{"a"}, 0); len(got) != 0 {
		t.Errorf("Tail of forgotten job = %v", got)
	}
}

func TestRingAppendLast(t *testing.T) {
	r := newRing(4)
	for i := 0; i < 10; i++ {
		r.add(Line{Msg: fmt.Sprint(i)})
		for n := 0; n <= 6; n++ {
			got := msgs(r.appendLast(nil, n))
			kept := min(i+1, 4)
			want := kept
			if n > 0 && n < kept {
				want = n
			}
			var exp []string
			for j := i - want + 1; j <= i; j++ {
				exp = append(exp, fmt.Sprint(j))
			}
			if !equal(got, exp) {
				t.Fatalf("after %d adds, appendLast(%d) = %v, want %v", i+1, n, got, exp)
			}
		}
	}
}

func TestHubConcurrentSeq(t *testing.T) {
	h := NewHub(nil, 10000)
	const writers, each = 8, 500
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				h.Add(Line{Job: fmt.Sprint("j", w%3), Msg: fmt.Sprint(i)})
			}
		})
	}
	ch, cancel := h.Follow(nil, writers*each)
	defer cancel()
	wg.Wait()
	all := h.Tail(nil, 0)
	if len(all) != writers*each {
		t.Fatalf("kept %d lines, want %d", len(all), writers*each)
	}
	seen := map[uint64]bool{}
	for _, l := range all {
		if seen[l.Seq] || l.Seq == 0 || l.Seq > writers*each {
			t.Fatalf("bad or duplicate Seq %d", l.Seq)
		}
		seen[l.Seq] = true
	}
	var last uint64
	for len(ch) > 0 {
		l := <-ch
		if l.Seq <= last {
			t.Fatalf("follower got Seq %d after %d", l.Seq, last)
		}
		last = l.Seq
	}
}

func TestHubEmitsRecords(t *testing.T) {
	var buf bytes.Buffer
	h := NewHub(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})), 10)
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	h.Add(Line{Time: now, Job: "web", Generation: 3, Pid: 42, Stream: StreamStderr, Level: slog.LevelWarn,
		Msg: "slow", Attrs: []slog.Attr{slog.Int("ms", 900)}})
	h.Add(Line{Time: now, Job: "web", Level: slog.LevelDebug, Msg: "filtered"})

	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("want exactly one JSON record, got %q: %v", buf.String(), err)
	}
	want := map[string]any{"time": "2024-05-06T07:08:09Z", "level": "WARN", "msg": "slow", "job": "web",
		"gen": 3.0, "pid": 42.0, "stream": "stderr", "ms": 900.0}
	if fmt.Sprint(rec) != fmt.Sprint(want) {
		t.Errorf("record = %v\nwant %v", rec, want)
	}
	if got := h.Tail(nil, 0); len(got) != 2 {
		t.Errorf("filtered line must still be kept: Tail has %d lines", len(got))
	}
}

// TestRingBytesBound: a ring keeps about RingBytes of lines whatever their count bound, always
// the newest, in order, and still keeps the count bound for short lines, also after long lines
// made it drop from the middle of its buffer.
func TestRingBytesBound(t *testing.T) {
	r := newRing(1000)
	long := strings.Repeat("x", 64<<10)
	for i := range 200 {
		r.add(Line{Msg: fmt.Sprint(i, long)})
		if r.bytes > RingBytes {
			t.Fatalf("after %d long lines: %d bytes kept, over %d", i+1, r.bytes, RingBytes)
		}
	}
	got := r.appendLast(nil, 0)
	if len(got) == 0 || len(got) > RingBytes/(64<<10) || !strings.HasPrefix(got[len(got)-1].Msg, "199") {
		t.Fatalf("kept %d long lines, the last %.5q", len(got), got[len(got)-1].Msg)
	}
	for i, l := range got {
		if want := fmt.Sprint(200-len(got)+i, long); l.Msg != want {
			t.Fatalf("line %d out of order: %.8q", i, l.Msg)
		}
	}
	// Short lines after them: the ring grows to its count bound, oldest first.
	for i := range 3000 {
		r.add(Line{Msg: fmt.Sprint("s", i)})
	}
	got = r.appendLast(nil, 0)
	if len(got) != 1000 || got[0].Msg != "s2000" || got[999].Msg != "s2999" {
		t.Fatalf("kept %d short lines, %q..%q; want s2000..s2999", len(got), got[0].Msg, got[len(got)-1].Msg)
	}
	// One line over the bound by itself is still kept.
	r.add(Line{Msg: strings.Repeat("y", RingBytes+1)})
	if got := r.appendLast(nil, 0); len(got) != 1 {
		t.Fatalf("after a line over the bound: %d lines kept, want just it", len(got))
	}
}

// TestHubAddHeldLines: a batch leaves the Hub as the same lines added one by one would: the
// ring holds the newest (a batch longer than the ring too), Seq counts every line, followers
// get each one, the logger gets each record of its level, and the file each record.
func TestHubAddHeldLines(t *testing.T) {
	var one, batch bytes.Buffer
	logger := func(w *bytes.Buffer) *slog.Logger {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
			Level: slog.LevelWarn,
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))
	}
	h1, hb := NewHub(logger(&one), 3), NewHub(logger(&batch), 3)
	fs1, _ := newTestFiles(t, FilesConfig{})
	fsb, _ := newTestFiles(t, FilesConfig{})
	h1.SetFiles(fs1)
	hb.SetFiles(fsb)
	f1, cancel1 := h1.Follow(nil, 100)
	defer cancel1()
	fb, cancelb := hb.Follow([]string{"j"}, 100)
	defer cancelb()
	at := time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC)
	mk := func(from, to int) []Line {
		var ls []Line
		for i := from; i < to; i++ {
			l := Line{Time: at, Job: "j", Pid: 7, Generation: 1, Stream: StreamStdout, Msg: fmt.Sprint("line ", i)}
			if i%4 == 0 {
				l.Level = slog.LevelError
			}
			ls = append(ls, l)
		}
		return ls
	}
	for _, r := range [][2]int{{0, 1}, {1, 3}, {3, 10}, {10, 10}, {10, 12}} {
		for _, l := range mk(r[0], r[1]) {
			h1.AddHeld(l)
		}
		hb.AddHeldLines(mk(r[0], r[1]))
	}
	h1.Flush()
	hb.Flush()
	if got, want := msgs(hb.Tail(nil, 0)), msgs(h1.Tail(nil, 0)); !equal(got, want) {
		t.Errorf("ring: batches %v, one by one %v", got, want)
	}
	if got, want := hb.Tail(nil, 1)[0].Seq, h1.Tail(nil, 1)[0].Seq; got != want || got != 12 {
		t.Errorf("last Seq: batches %d, one by one %d, want 12", got, want)
	}
	for i := range 12 {
		a, b := <-f1, <-fb
		if a.Msg != b.Msg || a.Seq != b.Seq || b.Msg != fmt.Sprint("line ", i) {
			t.Fatalf("follower line %d: batches %q (seq %d), one by one %q (seq %d)", i, b.Msg, b.Seq, a.Msg, a.Seq)
		}
	}
	if one.String() != batch.String() || strings.Count(batch.String(), "\n") != 3 {
		t.Errorf("logger: batches\n%s\none by one\n%s", batch.String(), one.String())
	}
	fs1.Sync(10 * time.Second)
	fsb.Sync(10 * time.Second)
	_, l1 := jobFiles(t, fs1, "j")
	_, lb := jobFiles(t, fsb, "j")
	if fmt.Sprint(l1) != fmt.Sprint(lb) || len(lb) != 1 || len(lb[0]) != 12 {
		t.Errorf("files: batches %q, one by one %q", lb, l1)
	}
}
