package integration

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSlowCheckDoesNotBlock: a check that takes 12 s (job "slow") holds up neither the checks of
// another job of the same loader nor god status: both answer while it hangs (no wall-clock bound:
// that status answers at all before the check ends is the proof).
func TestSlowCheckDoesNotBlock(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	checks := filepath.Join(t.TempDir(), "fast.checks")
	writeLoader(t, g.dir, "mixed", bashLoader{Jobs: map[string]bashJob{
		"slow": {Exec: sleeper, Auto: autoTrue, Check: "sleep 12; " + checkOK("60000")},
		"fast": {Exec: sleeper, Auto: autoTrue, Check: "echo x >> " + sq(checks) + "; " + checkOK("100")},
	}})
	g.start("--check-timeout", "30s")
	g.waitLog(10*time.Second, "slow started", func(r record) bool { return r.Msg == "started" && r.str("job") == "slow" })
	t0 := time.Now()
	g.waitState("fast", "run", 10*time.Second)
	eventually(t, 10*time.Second, "fast checked 5 times", func() bool { return lines(checks) >= 5 })
	j, _ := g.job("slow")
	if j.State != "start" {
		t.Fatalf("slow is %s, want still start (its first check takes 12 s): status did not answer while the check hung", j.State)
	}
	t.Logf("fast checked %d times within %v while slow's check ran", lines(checks), time.Since(t0).Round(time.Millisecond))
	g.waitState("slow", "run", 40*time.Second)
}
