package supervisor

import (
	"testing"
	"time"
)

// TestCrashDelay: a change waits crashWriteDelay for its write after a cheap write, 19 times the
// last write's duration after a dear one, and crashMaxLag at most after a very dear one; the
// pause is counted from the end of the last write, on a made-up clock.
func TestCrashDelay(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	s := &Supervisor{crashPace: crashPacing}
	if d := s.crashDelay(at(0)); d != crashWriteDelay {
		t.Fatalf("before any write: delay %v, want %v", d, crashWriteDelay)
	}
	cases := []struct {
		name            string
		start, end, now int // ms
		want            time.Duration
	}{
		{"cheap write", 0, 1, 1, crashWriteDelay},
		{"20 ms write: 380 ms after it", 1000, 1020, 1020, 380 * time.Millisecond},
		{"a change 200 ms after it waits the rest, 180 ms", 1000, 1020, 1220, 180 * time.Millisecond},
		{"300 ms after it, the rest (80 ms) is less than crashWriteDelay", 1000, 1020, 1320, crashWriteDelay},
		{"a change long after waits crashWriteDelay", 1000, 1020, 9000, crashWriteDelay},
		{"500 ms write: crashMaxLag", 10000, 10500, 10500, crashMaxLag},
	}
	for _, c := range cases {
		s.crashPace.done(at(c.start), at(c.end))
		if d := s.crashDelay(at(c.now)); d != c.want {
			t.Errorf("%s: delay %v, want %v", c.name, d, c.want)
		}
	}
}
