package procfs

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"testing"
)

// usageByFields is the straightforward reading of a stat line that parseUsage must agree with:
// split into strings, parse with strconv.
func usageByFields(stat []byte) (ticks uint64, rss int64, ok bool) {
	f := fieldsAfterComm(stat)
	if len(f) < 22 {
		return 0, 0, false
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	n, err3 := strconv.ParseInt(f[21], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, false
	}
	return utime + stime, max(n, 0), true
}

var usageSeeds = []string{
	"27480 (cat) R 27469 27469 10759 0 -1 4194304 101 0 0 0 7 3 0 0 20 0 1 0 44966 3133440 416 18446744073709551615 94416064847872 0\n",
	"1 (a) b) c) S 0 1 1 0 -1 0 0 0 0 0 120 5 0 0 20 0 1 0 1 100 -3 0\n",
	"1 (x)  S  0 1 1 0 -1 0 0 0 0 0\t1\t2 0 0 20 0 1 0 1 100 9\n",
	"1 (x) S 0 1 1 0 -1 0 0 0 0 0 18446744073709551615 1 0 0 20 0 1 0 1 100 9",
	"1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 100 -9223372036854775808",
	"1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 100 +7",
	"1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 100",
	"1 (x) S 0 1 1 0 -1 0 0 0 0 0 x 2 0 0 20 0 1 0 1 100 5",
	"1 (x) S 0 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 1 100 99999999999999999999",
	"", ")", "1 (x", "1 (x) S",
}

func TestParseUsage(t *testing.T) {
	for _, s := range usageSeeds {
		ticks, rss, ok := parseUsage([]byte(s))
		wt, wr, wok := usageByFields([]byte(s))
		if ticks != wt || rss != wr || ok != wok {
			t.Errorf("%q: got %d, %d, %v; want %d, %d, %v", s, ticks, rss, ok, wt, wr, wok)
		}
	}
	if ticks, rss, ok := parseUsage([]byte(usageSeeds[0])); !ok || ticks != 10 || rss != 416 {
		t.Errorf("cat's line: %d ticks, %d pages, %v; want 10, 416, true", ticks, rss, ok)
	}
}

// FuzzParseUsage: the in-place parser agrees with splitting into strings and strconv, whatever
// the line and the command name hold. After the name the kernel writes ASCII only: there the
// parser's white space is ASCII's, where strings.Fields would also split at Unicode spaces.
func FuzzParseUsage(f *testing.F) {
	for _, s := range usageSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stat []byte) {
		if i := bytes.LastIndexByte(stat, ')'); i >= 0 && slices.ContainsFunc(stat[i:], func(c byte) bool { return c >= 0x80 }) {
			t.Skip("not ASCII after the command name")
		}
		ticks, rss, ok := parseUsage(stat)
		wt, wr, wok := usageByFields(stat)
		if ticks != wt || rss != wr || ok != wok {
			t.Fatalf("%q: got %d, %d, %v; want %d, %d, %v", stat, ticks, rss, ok, wt, wr, wok)
		}
	})
}

// TestUsageSelf reads this process's own figures: some resident memory, and zeros for a pid
// that cannot exist.
func TestUsageSelf(t *testing.T) {
	buf := make([]byte, 1024)
	if _, rss := Usage(os.Getpid(), buf); rss <= 0 {
		t.Errorf("Usage(self): rss %d pages, want > 0", rss)
	}
	if cpu, rss := Usage(1<<22+1, buf); cpu != 0 || rss != 0 {
		t.Errorf("Usage(missing) = %v, %d; want zeros", cpu, rss)
	}
}
