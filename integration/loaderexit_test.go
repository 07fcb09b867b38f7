package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// TestLoadersEndedBeforeGodExits: when god exits, none of its loader processes is left: god
// kills its loader instances at shutdown and reaps them before it exits. (A loader killed but not
// yet reaped when god exits goes on running for a moment, unsupervised, and a test's cleanup
// found one.)
func TestLoadersEndedBeforeGodExits(t *testing.T) {
	t.Parallel()
	const loaders = 30
	g := newGod(t)
	for i := range loaders {
		name := fmt.Sprintf("l%02d", i)
		writeLoader(t, g.dir, name, bashLoader{Jobs: map[string]bashJob{name: {Exec: sleeper, Auto: autoTrue}}})
	}
	// Idle loader instances stay for --loader-idle: every one of them is alive at shutdown.
	g.start("--loader-idle", "10m")
	for i := range loaders {
		g.waitState(fmt.Sprintf("l%02d", i), "run", 30*time.Second)
	}
	loaderPids := g.filePids()
	if len(loaderPids) < loaders {
		t.Fatalf("%d pids noted, want at least %d loaders", len(loaderPids), loaders)
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(60 * time.Second); code != 0 {
		t.Fatalf("god exited %d", code)
	}
	var left []int
	for pid := range loaderPids {
		if alive(pid) && g.ours(pid) {
			left = append(left, pid)
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d of god's processes still ran when god had exited: %v", len(left), left)
	}
}
