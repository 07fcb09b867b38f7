package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestStateHooks: the loader is told of each state the job enters: onStart, onRun, onStop, onExit
// (exit status first, then pid) and onStopped, in that order.
func TestStateHooks(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	rec := filepath.Join(t.TempDir(), "requests")
	writeLoader(t, g.dir, "hooked", bashLoader{Record: rec, Jobs: map[string]bashJob{
		"hooked": {Exec: sleeper, Auto: []string{"false"}, Check: checkOK("5000")},
	}})
	g.start()
	g.waitState("hooked", "wait", 10*time.Second)
	g.mustCLI("start", "hooked")
	pid := strconv.Itoa(pidOf(t, g.waitState("hooked", "run", 5*time.Second)))
	g.mustCLI("stop", "hooked")

	want := [][]string{
		{"hooked", "onStart", pid},
		{"hooked", "onRun", pid},
		{"hooked", "onStop", pid},
		{"hooked", "onExit", "143", pid}, // SIGTERM: 128+15
		{"hooked", "onStopped"},
	}
	var got [][]string
	if !testutil.Poll(5*time.Second, func() bool { got = hooksIn(t, rec); return containsInOrder(got, want) }) {
		t.Fatalf("hooks the loader got:\n%v\nwant, in this order:\n%v", got, want)
	}
	t.Logf("hooks: %v", got)
	starts := 0
	for _, h := range got {
		if h[1] == "onStart" {
			starts++
		}
	}
	if starts != 1 {
		t.Errorf("onStart sent %d times for one start", starts)
	}
}

// hooksIn reads the on<State> requests a recording loader got.
func hooksIn(t testing.TB, path string) [][]string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m []string
		if json.Unmarshal([]byte(line), &m) != nil {
			t.Fatalf("loader got a request that is not an array of strings: %q", line)
		}
		if len(m) >= 2 && strings.HasPrefix(m[1], "on") {
			out = append(out, m)
		}
	}
	return out
}

// containsInOrder reports whether want appears in got as a subsequence.
func containsInOrder(got, want [][]string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && strings.Join(g, "\x00") == strings.Join(want[i], "\x00") {
			i++
		}
	}
	return i == len(want)
}
