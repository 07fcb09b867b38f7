package integration

import (
	"strings"
	"testing"
	"time"
)

// TestCrashLoop checks the restart policy on a job that exits 1 at once: the first restart is
// immediate, the delays then grow, and with --restart-limit 3 the job ends failed as flapping,
// says when it tries again, and does after the cool-down; god start runs it again at once.
// The exact delays are the state machine's unit tests' (internal/jobstate, fake clock); here only
// lower bounds are asserted, which a busy machine cannot break.
func TestCrashLoop(t *testing.T) {
	g := newGod(t)
	writeLoader(t, g.dir, "crashy", bashLoader{Jobs: map[string]bashJob{
		"crash": {Exec: shJob("echo dying; exit 1"), Auto: autoTrue},
	}})
	g.start("--restart-limit", "3", "--backoff-max", "2s", "--cool-down", "3s")
	j := g.waitState("crash", "failed", 10*time.Second)
	if !strings.Contains(j.Reason, "flapping") || !strings.Contains(j.Reason, "retry in 3s") {
		t.Errorf("failed reason %q does not say flapping and when it retries", j.Reason)
	}
	if j.Next.IsZero() || j.Next.Before(j.Since) {
		t.Errorf("status next %v, want the end of the cool-down after %v", j.Next, j.Since)
	}

	starts := g.logs(0, func(r record) bool { return r.Msg == "started" && r.str("job") == "crash" })
	exits := g.logs(0, func(r record) bool { return r.Msg == "exited" && r.str("job") == "crash" })
	if len(starts) != 4 || len(exits) != 4 {
		g.fatalf("want 4 starts and 4 exits (1 + 3 restarts), have %d and %d", len(starts), len(exits))
	}
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Time.Sub(exits[i-1].Time))
	}
	t.Logf("restart delays: %v", gaps)
	// Lower bounds only: the restart never comes before its delay (100 ms, then 200 ms), less
	// the few microseconds between the exit's log record and the decision.
	if gaps[1] < 95*time.Millisecond || gaps[2] < 195*time.Millisecond {
		t.Errorf("back-off does not grow: %v", gaps)
	}
	if strings.Count(j.Reason, "flapping") != 1 || j.Restarts != 3 {
		t.Errorf("status after failing: restarts %d reason %q", j.Restarts, j.Reason)
	}

	// The cool-down: it tries again by itself, and fails again.
	from0 := g.mark()
	g.waitLogFrom(from0, 15*time.Second, "the retry after the cool-down", func(r record) bool {
		return r.str("job") == "crash" && r.Msg == "cool-down over: trying again"
	})
	g.waitLogFrom(from0, 10*time.Second, "failed again after the retry", func(r record) bool {
		return r.str("job") == "crash" && strings.Contains(r.Msg, "flapping")
	})

	// god start tries again and it fails again. A job without a check is ready once started, so
	// the start itself may be reported done (0) or failed (1, naming the job) depending on who
	// wins the race with the exit.
	from := g.mark()
	r := g.cli("start", "crash")
	if r.code != 0 && (r.code != 1 || !strings.Contains(r.stderr, "crash")) {
		t.Errorf("god start crash: exit %d, stderr %q; want 0, or 1 naming the job", r.code, r.stderr)
	}
	g.waitLogFrom(from, 5*time.Second, "a new start", func(r record) bool { return r.Msg == "started" && r.str("job") == "crash" })
	g.waitLogFrom(from, 10*time.Second, "failed again", func(r record) bool {
		return r.str("job") == "crash" && strings.Contains(r.Msg, "flapping")
	})
	g.waitState("crash", "failed", 5*time.Second)
}
