package integration

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestLoaderIdleExits: a loader instance nobody asks anything for --loader-idle exits, the job it
// defined runs on untouched, and the next request (a hook, a reload) starts a new instance.
func TestLoaderIdleExits(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	rec := filepath.Join(t.TempDir(), "requests")
	writeLoader(t, g.dir, "quiet", bashLoader{Record: rec, Jobs: map[string]bashJob{
		"quiet": {Exec: sleeper, Auto: []string{"true"}},
	}})
	g.start("--loader-idle", "300ms")
	pid := pidOf(t, g.waitState("quiet", "run", 10*time.Second))
	godPid := g.cmd.Process.Pid
	eventually(t, 10*time.Second, "no loader process left once idle", func() bool {
		return len(loadersOf(godPid)) == 0
	})
	if j, _ := g.job("quiet"); j.State != "run" || pidOf(t, j) != pid {
		t.Fatalf("job after its loader went idle: state %s, pid %d (was %d)", j.State, pidOf(t, j), pid)
	}
	// A stop sends onStop/onStopped: a fresh instance starts for them, then goes idle again.
	g.mustCLI("stop", "quiet")
	want := [][]string{{"quiet", "onStop", strconv.Itoa(pid)}, {"quiet", "onStopped"}}
	eventually(t, 10*time.Second, "onStop and onStopped reach a new loader instance", func() bool {
		return containsInOrder(hooksIn(t, rec), want)
	})
	eventually(t, 10*time.Second, "the new instance idle too and gone", func() bool {
		return len(loadersOf(godPid)) == 0
	})
	g.mustCLI("start", "quiet")
	g.waitState("quiet", "run", 10*time.Second)
}
