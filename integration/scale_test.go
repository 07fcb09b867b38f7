package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestManyJobs runs 5000 jobs from one loader: every one runs, `god status` lists every one,
// SIGTERM stops every one, and no loader failure or error is logged on the way (the loader is
// asked 160 000 definition requests, 5000 checks and the hooks of every job). It is one of the
// long proofs (skipped under -short; `make test-long` runs it).
func TestManyJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("5000 jobs: a long proof (make test-long)")
	}
	const n = 5000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < 2*n+200 {
		t.Skipf("5000 jobs need about %d fds in god; the hard open-files limit is %d", 2*n+200, lim.Max)
	}
	g := newGod(t)
	// The race detector allows 8128 live goroutines, fewer than god has with 5000 jobs (one
	// each, and one per check asked): under -race this test runs a god built without it.
	g.bin = godWithoutRace(t)
	writeManyJobs(t, g, n, "")
	g.start()
	eventually(t, 3*time.Minute, fmt.Sprintf("%d jobs in run", n), func() bool {
		return countState(g.status(), "run") == n
	})
	jobs := g.status()
	seen := map[string]bool{}
	for _, j := range jobs {
		if j.State != "run" || len(j.Processes) != 1 {
			t.Errorf("job %s: state %s with %d processes, want run with 1", j.Name, j.State, len(j.Processes))
		}
		seen[j.Name] = true
	}
	for i := 1; i <= n; i++ {
		if !seen[manyJobsName(i)] {
			t.Errorf("god status does not list job %s", manyJobsName(i))
		}
	}
	if r := g.mustCLI("status"); !strings.HasPrefix(r.stdout, fmt.Sprintf("%d jobs: %d run", n, n)) && !strings.Contains(r.stdout, manyJobsName(n)) {
		t.Errorf("god status (table) lists neither a summary nor the last job:\n%.500s", r.stdout)
	}
	g.signal(syscall.SIGTERM)
	if code := g.wait(2 * time.Minute); code != 0 {
		t.Fatalf("god exited %d after SIGTERM", code)
	}
	stopped := g.logs(0, func(r record) bool { return r.Msg == "exited" && r.str("job") != "" })
	if len(stopped) != n {
		t.Errorf("%d exited records after SIGTERM, want %d", len(stopped), n)
	}
	for _, r := range g.logs(0, func(r record) bool {
		return r.Level == "ERROR" || strings.Contains(r.Msg, "loader") && r.Level == "WARN"
	}) {
		t.Errorf("god logged: %s", r.Raw)
	}
	// cleanup checks that no job process and no loader process is left.
}

// godWithoutRace is the path of a god built without the race detector: godBin itself when the
// tests are not built with it, else one built once for the tests that need one.
func godWithoutRace(t testing.TB) string {
	if !raceEnabled {
		return godBin
	}
	noRaceGod.once.Do(func() {
		out := filepath.Join(filepath.Dir(godBin), "god-norace")
		cmd := exec.Command("go", "build", "-o", out, "./cmd/god")
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			noRaceGod.err = fmt.Errorf("go build ./cmd/god: %v\n%s", err, b)
			return
		}
		noRaceGod.path = out
	})
	if noRaceGod.err != nil {
		t.Fatal(noRaceGod.err)
	}
	return noRaceGod.path
}

// noRaceGod is godWithoutRace's build, made at most once per test binary.
var noRaceGod struct {
	once sync.Once
	path string
	err  error
}
