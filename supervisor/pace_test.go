package supervisor

import (
	"testing"
	"time"
)

// TestPacer follows the pacer's decisions on a made-up clock: the first run starts at once, the
// next waits Share times the last run's duration after its end, within Min and Max, and an ask
// after that wait is over starts at once.
func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := pacer{Share: 9, Min: 10 * time.Millisecond, Max: 500 * time.Millisecond}

	if got := p.next(at(0)); !got.Equal(at(0)) {
		t.Fatalf("first run: next = %v, want now", got.Sub(t0))
	}
	steps := []struct {
		name            string
		start, end, ask int // ms
		want            int // ms: when the next run may start
	}{
		{"a 20 ms run waits 180 ms after its end", 0, 20, 30, 200},
		{"an ask after the wait starts at once", 0, 20, 250, 250},
		{"a cheap run still waits Min", 300, 300, 300, 310},
		{"a dear run waits Max at most", 400, 600, 600, 1100},
		{"an ask long after starts at once", 400, 600, 5000, 5000},
	}
	for _, s := range steps {
		p.done(at(s.start), at(s.end))
		if got := p.next(at(s.ask)); !got.Equal(at(s.want)) {
			t.Errorf("%s: next = %v, want %v", s.name, got.Sub(t0), at(s.want).Sub(t0))
		}
	}
	// A clock that went back (end before start) counts as a run that took nothing.
	p.done(at(1000), at(990))
	if got := p.next(at(990)); !got.Equal(at(1000)) {
		t.Errorf("run with end before start: next = %v, want %v", got.Sub(t0), at(1000).Sub(t0))
	}
}

// TestPacerShare checks the bound the pacer exists for: however long each run takes, runs asked
// for back to back take at most 1/(1+Share) of the time, as long as Max does not cut the wait.
func TestPacerShare(t *testing.T) {
	p := pacer{Share: 9, Max: time.Hour}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	begin := now
	var busy time.Duration
	for i := range 1000 {
		now = p.next(now)
		took := time.Duration(1+i%7) * time.Millisecond // runs of varying cost
		p.done(now, now.Add(took))
		now = now.Add(took)
		busy += took
	}
	if share := float64(busy) / float64(now.Sub(begin)); share > 0.1+1e-3 {
		t.Errorf("runs took %.3f of the time, want at most 0.1", share)
	}
}
