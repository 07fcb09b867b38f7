package integration

import (
	"path/filepath"
	"testing"
	"time"
)

// TestSlowCheckDoesNotBlock: a check that takes 3 s (job "slow") holds up neither the checks of
// another job of the same loader nor god status.
func TestSlowCheckDoesNotBlock(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	checks := filepath.Join(t.TempDir(), "fast.checks")
	writeLoader(t, g.dir, "mixed", bashLoader{Jobs: map[string]bashJob{
		"slow": {Exec: sleeper, Auto: autoTrue, Check: "sleep 3; " + checkOK("5000")},
		"fast": {Exec: sleeper, Auto: autoTrue, Check: "echo x >> " + sq(checks) + "; " + checkOK("100")},
	}})
	g.start()
	g.waitLog(10*time.Second, "slow started", func(r record) bool { return r.Msg == "started" && r.str("job") == "slow" })
	t0 := time.Now()
	g.waitState("fast", "run", 2*time.Second)
	eventually(t, 2*time.Second, "fast checked 5 times", func() bool { return lines(checks) >= 5 })
	s0 := time.Now()
	j, _ := g.job("slow")
	if took := time.Since(s0); took > time.Second {
		t.Errorf("god status took %v while a check hangs", took)
	}
	if j.State != "start" {
		t.Fatalf("slow is %s, want still start (its first check takes 3 s); the test proves nothing", j.State)
	}
	t.Logf("fast checked %d times within %v while slow's check ran", lines(checks), time.Since(t0).Round(time.Millisecond))
	g.waitState("slow", "run", 10*time.Second)
}
