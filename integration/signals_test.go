package integration

import (
	"syscall"
	"testing"
	"time"
)

// stubborn is a job that ignores SIGTERM and asks for a 30 s stop timeout.
var stubborn = bashJob{
	Exec: shJob(`trap '' TERM; exec sleep 1000`), Auto: autoTrue, Stop: []string{"SIGTERM", "30000"},
}

// TestSIGINTTwiceHurries: the first SIGINT starts an orderly shutdown (which would wait 30 s for
// a job that ignores SIGTERM); the second kills every job at once and god exits.
func TestSIGINTTwiceHurries(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "stub", bashLoader{Jobs: map[string]bashJob{"stubborn": stubborn}})
	g.start()
	pid := pidOf(t, g.waitState("stubborn", "run", 10*time.Second))

	g.signal(syscall.SIGINT)
	g.waitState("stubborn", "stop", 5*time.Second)
	t0 := time.Now()
	g.signal(syscall.SIGINT)
	if code := g.wait(5 * time.Second); code != 0 {
		t.Errorf("god exited %d", code)
	}
	if took := time.Since(t0); took > 3*time.Second {
		t.Errorf("god took %v to exit after the second SIGINT", took)
	}
	if alive(pid) {
		t.Errorf("stubborn pid %d survived the hurried shutdown", pid)
	}
	g.waitLog(time.Second, "hurried", func(r record) bool { return r.Msg == "shutdown hurried: killing every job now" })
}

// TestSIGTERMExitsZero: SIGTERM stops every job, and god exits 0 once they are all gone.
func TestSIGTERMExitsZero(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "two", bashLoader{Jobs: map[string]bashJob{
		"p": {Exec: sleeper, Auto: autoTrue}, "q": {Exec: sleeper, Auto: autoTrue},
	}})
	g.start()
	p := pidOf(t, g.waitState("p", "run", 10*time.Second))
	q := pidOf(t, g.waitState("q", "run", 10*time.Second))
	g.signal(syscall.SIGTERM)
	if code := g.wait(10 * time.Second); code != 0 {
		t.Errorf("god exited %d after SIGTERM, want 0", code)
	}
	stopped := g.waitLog(time.Second, "the last record", func(r record) bool { return r.Msg == "every job stopped; god exits" })
	for _, r := range g.logs(0, func(r record) bool { return r.Msg == "exited" }) {
		if r.Time.After(stopped.Time) {
			t.Errorf("a job exited after god said all were stopped: %s", r.Raw)
		}
	}
	for _, pid := range []int{p, q} {
		if alive(pid) {
			t.Errorf("pid %d survived SIGTERM", pid)
		}
	}
}
