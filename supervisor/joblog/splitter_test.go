package joblog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// specLines is the Splitter's rules written plainly, on the whole stream at once: the reference
// the chunked, paused and carried-over Splitters are compared with.
func specLines(in []byte) []string {
	var out []string
	cut := false
	emit := func(b []byte) {
		b = bytes.TrimSuffix(b, []byte("\r"))
		if !(cut && len(b) == 0) {
			out = append(out, string(b))
		}
		cut = false
	}
	for len(in) > 0 {
		if i := bytes.IndexByte(in[:min(len(in), MaxLine)], '\n'); i >= 0 {
			emit(in[:i])
			in = in[i+1:]
		} else if len(in) >= MaxLine {
			n := splitPoint(in[:MaxLine])
			emit(in[:n])
			cut = true
			in = in[n:]
		} else {
			emit(in)
			break
		}
	}
	return out
}

// splitChunks feeds in to a fresh Splitter in pieces that end at the offsets in ends (ascending),
// pausing at the offsets in pauses: there the Splitter's Rest goes to a new Splitter (Carry),
// as a Mux does when god re-executes itself. It returns the messages delivered. It does it
// twice, with a Splitter that delivers each line and with a batch Splitter: when they differ,
// what the batch one delivered comes back, with a last line that says so.
func splitChunks(in []byte, ends []int, pauses map[int]bool) []string {
	got := splitChunksMode(in, ends, pauses, false)
	if batch := splitChunksMode(in, ends, pauses, true); !equalLines(batch, got) {
		return append(batch, "\x00the batch Splitter differs: "+diffLines(batch, got))
	}
	return got
}

func splitChunksMode(in []byte, ends []int, pauses map[int]bool, batch bool) []string {
	var got []string
	add := func(l Line) { got = append(got, l.Msg) }
	addLines := func(ls []Line) {
		if len(ls) == 0 {
			got = append(got, "\x00an empty batch")
		}
		for _, l := range ls {
			add(l)
		}
	}
	newSplitter := func() *Splitter {
		if batch {
			return NewBatchSplitter(Line{}, FormatText, addLines)
		}
		return NewSplitter(Line{}, FormatText, add)
	}
	sp := newSplitter()
	at := 0
	for _, end := range append(ends, len(in)) {
		if end < at || end > len(in) {
			continue
		}
		sp.Feed(in[at:end], time.Time{})
		at = end
		if pauses[at] {
			rest, cut := sp.Rest()
			sp = newSplitter()
			sp.Carry(rest, cut)
		}
	}
	sp.End(time.Time{})
	return got
}

// splitterInputs are streams around the edges of the rules: long lines, runes and "\r\n" at
// MaxLine, lines of exactly MaxLine, final lines without newline.
func splitterInputs() map[string]string {
	a := strings.Repeat("a", MaxLine-1)
	return map[string]string{
		"empty":            "",
		"lines":            "one\ntwo\r\n\nthree",
		"only newlines":    "\n\n\r\n",
		"lone cr":          "a\rb\r\r\n\r",
		"long":             strings.Repeat("x", 3*MaxLine+100) + "\nshort\n" + strings.Repeat("y", MaxLine),
		"exactly MaxLine":  strings.Repeat("b", MaxLine) + "\n" + strings.Repeat("c", MaxLine) + "\r\nd\n",
		"rune at MaxLine":  a + "é\n" + strings.Repeat("a", MaxLine-2) + "日本\n",
		"crlf at MaxLine":  a + "\r\n" + a + "\r" + "x\n" + a + "\r",
		"bad utf8":         strings.Repeat("\xe6", MaxLine+5) + "\n" + a + "\xf0\x9f\n",
		"cr after cut":     strings.Repeat("z", MaxLine) + "\r\n" + strings.Repeat("z", MaxLine) + "\r",
		"many small lines": strings.Repeat("line of a log\n", 20000) + "tail",
	}
}

func TestSplitterChunkingDoesNotMatter(t *testing.T) {
	for name, s := range splitterInputs() {
		in := []byte(s)
		want := specLines(in)
		for _, size := range []int{1, 3, 7, 4096, MaxLine - 1, MaxLine, MaxLine + 1, 3 * MaxLine} {
			if size == 1 && len(in) > 4*MaxLine {
				continue // byte by byte through 200 KiB proves nothing more than 3 bytes at a time
			}
			var ends []int
			for at := size; at < len(in); at += size {
				ends = append(ends, at)
			}
			if got := splitChunks(in, ends, nil); !equalLines(got, want) {
				t.Errorf("%s in chunks of %d: %s", name, size, diffLines(got, want))
			}
		}
	}
}

// TestSplitterRestCarry stops a Splitter after every chunk and carries its rest over to a new
// one: the lines are those of one Splitter, none lost, none repeated. The chunk ends sit on
// both sides of every MaxLine boundary, so a pause falls right after a cut piece.
func TestSplitterRestCarry(t *testing.T) {
	for name, s := range splitterInputs() {
		in := []byte(s)
		want := specLines(in)
		var ends []int
		pauses := map[int]bool{}
		for _, at := range []int{1, 2, 5, 100, MaxLine - 3, MaxLine - 2, MaxLine - 1, MaxLine, MaxLine + 1, MaxLine + 2, 2 * MaxLine, 2*MaxLine + 1} {
			if at < len(in) {
				ends = append(ends, at)
				pauses[at] = true
			}
		}
		if got := splitChunks(in, ends, pauses); !equalLines(got, want) {
			t.Errorf("%s with pauses: %s", name, diffLines(got, want))
		}
	}
}

func TestSplitterRestAfterCut(t *testing.T) {
	var got []string
	sp := NewSplitter(Line{}, FormatText, func(l Line) { got = append(got, l.Msg) })
	sp.Feed([]byte(strings.Repeat("q", MaxLine)), time.Time{})
	rest, cut := sp.Rest()
	if len(rest) != 0 || !cut || len(got) != 1 {
		t.Fatalf("after a line of MaxLine: rest %q cut %v, %d lines; want no rest, cut, 1 line", rest, cut, len(got))
	}
	next := NewSplitter(Line{}, FormatText, func(l Line) { got = append(got, l.Msg) })
	next.Carry(rest, cut)
	next.Feed([]byte("\r\nafter\n"), time.Time{})
	if len(got) != 2 || got[1] != "after" {
		t.Errorf("the line's end was delivered as a line of its own: %q", got[1:])
	}
}

// TestSplitterHoldsOnlyTheUnfinishedLine checks the memory promise: nothing pending, no
// buffer; pending, a copy of the unfinished line alone, not of what was fed.
func TestSplitterHoldsOnlyTheUnfinishedLine(t *testing.T) {
	sp := NewSplitter(Line{}, FormatText, func(Line) {})
	sp.Feed([]byte(strings.Repeat("full line\n", 1000)), time.Time{})
	if sp.pending != nil {
		t.Errorf("pending = %d bytes (cap %d) after whole lines, want nil", len(sp.pending), cap(sp.pending))
	}
	sp.Feed([]byte(strings.Repeat("full line\n", 1000)+"half"), time.Time{})
	if string(sp.pending) != "half" || cap(sp.pending) > 64 {
		t.Errorf("pending = %q (cap %d), want \"half\" alone", sp.pending, cap(sp.pending))
	}
	rest, _ := sp.Rest()
	rest = append(rest, "XX"...)
	sp.Feed([]byte("way\n"), time.Time{})
	if sp.pending != nil || string(rest) != "halfXX" {
		t.Errorf("after the line ended: pending %q, rest %q", sp.pending, rest)
	}
}

// TestSplitterCarryAnything checks that a rest no Splitter would leave (a newline in it, longer
// than MaxLine), as a damaged state could hold, still comes out whole, by the usual rules.
func TestSplitterCarryAnything(t *testing.T) {
	for _, rest := range []string{"a\nb", "\n", strings.Repeat("r", MaxLine+10), strings.Repeat("s", MaxLine)} {
		for _, tail := range []string{"", "c\nd"} {
			var got []string
			sp := NewSplitter(Line{}, FormatText, func(l Line) { got = append(got, l.Msg) })
			sp.Carry([]byte(rest), false)
			if tail != "" {
				sp.Feed([]byte(tail), time.Time{})
			}
			sp.End(time.Time{})
			if want := specLines([]byte(rest + tail)); !equalLines(got, want) {
				t.Errorf("rest %.10q + %q: %s", rest, tail, diffLines(got, want))
			}
		}
	}
}

func TestSplitterMetaAndTime(t *testing.T) {
	var got []Line
	meta := Line{Job: "web", Generation: 3, Pid: 42, Stream: StreamStderr, Seq: 99}
	sp := NewSplitter(meta, FormatLogfmt, func(l Line) { got = append(got, l) })
	t1, t2 := time.Unix(100, 0), time.Unix(200, 0)
	sp.Feed([]byte("level=warn msg=hot temp=90\nmsg=sta"), t1)
	sp.Feed([]byte("rt"), t2)
	sp.End(t2)
	if len(got) != 2 {
		t.Fatalf("got %d lines", len(got))
	}
	if l := got[0]; l.Job != "web" || l.Generation != 3 || l.Pid != 42 || l.Stream != StreamStderr || l.Seq != 0 ||
		l.Msg != "hot" || l.Level.String() != "WARN" || attrsString(l.Attrs) != "temp=s:90" || !l.Time.Equal(t1) {
		t.Errorf("first line = %+v", l)
	}
	if l := got[1]; l.Msg != "start" || !l.Time.Equal(t2) {
		t.Errorf("last line = %+v; want \"start\" at the time of the read that ended it", l)
	}
}

// FuzzSplitter feeds the same stream in random chunks with random pauses (Rest carried over to
// a new Splitter): the lines must be those of the plain rules on the whole stream. pad puts a
// run of 'a' before the data, so that data's bytes fall on MaxLine boundaries.
func FuzzSplitter(f *testing.F) {
	for _, seed := range []struct {
		data string
		pad  uint32
	}{
		{"", 0}, {"a\nb\r\nc", 0}, {"\r\n\r\n\n", 0}, {"é\nx", MaxLine - 1}, {"\r\nx", MaxLine - 1},
		{"\n", MaxLine}, {"\r\n", MaxLine}, {"日本語\n", MaxLine - 2}, {"\xf0\x9f\x98", MaxLine - 2}, {"y\n", 2*MaxLine - 1},
	} {
		f.Add([]byte(seed.data), seed.pad, uint64(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, pad uint32, seed uint64) {
		in := append(bytes.Repeat([]byte("a"), int(pad%(2*MaxLine+16))), data...)
		want := specLines(in)
		rng := rand.New(rand.NewPCG(seed, 0))
		var ends []int
		pauses := map[int]bool{}
		for range rng.IntN(32) {
			at := rng.IntN(len(in) + 1)
			ends = append(ends, at)
			pauses[at] = rng.IntN(2) == 0
		}
		slices.Sort(ends)
		if got := splitChunks(in, ends, pauses); !equalLines(got, want) {
			t.Fatalf("chunks ending at %v, pauses %v: %s", ends, pauses, diffLines(got, want))
		}
	})
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// diffLines says where two lists of lines part, briefly: lines can be 64 KiB long.
func diffLines(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("line %d: got %d bytes %.20q, want %d bytes %.20q", i, len(got[i]), got[i], len(want[i]), want[i])
		}
	}
	return fmt.Sprintf("got %d lines, want %d", len(got), len(want))
}
