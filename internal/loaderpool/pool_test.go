package loaderpool

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/testutil"
)

// startPool returns the pool of the loader at path, with god's default settings but timeout for
// a reply, its own reaper, and a logger the test reads. At cleanup the pool is closed and its
// instances reaped.
func startPool(t testing.TB, path string, timeout time.Duration) (*Pool, *testutil.Records) {
	t.Helper()
	log, recs := testutil.NewLogger()
	r := reaper.New(log)
	procs := &Procs{}
	p := New(path, &Config{Reaper: r, Env: os.Environ(), Log: log, Instances: 4, Idle: 10 * time.Second,
		HandshakeTimeout: 2 * time.Second, Timeout: timeout, Backoff: jobstate.DefaultBackoff, Procs: procs})
	t.Cleanup(func() {
		p.Close()
		if !procs.Wait(testutil.Slack(5 * time.Second)) {
			t.Errorf("loader instances not reaped after the pool closed")
		}
		r.Close()
	})
	return p, recs
}

// isLoaderFailure matches god's record of a loader instance killed (late, broken or exited).
func isLoaderFailure(r slog.Record) bool {
	return strings.HasPrefix(r.Message, "loader failed") || r.Message == "loader exited"
}

// TestLoaderQueuedRequestsTimedFromWrite: 500 requests at once to a loader that answers each in
// 20 ms, with a 1 s timeout. They queue for the loader's 4 instances for about 2.5 s, but each
// reply is timed from when its request was written: all succeed, and no instance is killed.
// (Timed from the call, as before, those queued past 1 s failed and killed the loader.)
func TestLoaderQueuedRequestsTimedFromWrite(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteScript(t, dir, "slow", testutil.BashPause+`
echo '["godv1","q"]'
while IFS= read -r req; do
	case "$req" in
	'["q","ping",'*) pause 0.02; echo "[\"pong\",${req#*\"ping\",}" ;;
	*) echo '[]' ;;
	esac
done
`)
	pool, recs := startPool(t, filepath.Join(dir, "slow"), time.Second)

	const n = 500
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // the wait for an instance: generous
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		wg.Go(func() {
			m, err := pool.Ask(ctx, time.Second, "q", "ping", strconv.Itoa(i))
			if err == nil && (len(m) != 2 || m[0] != "pong" || m[1] != strconv.Itoa(i)) {
				err = fmt.Errorf("reply %q", m)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	took := time.Since(t0)
	failed := 0
	for i, err := range errs {
		if err != nil {
			if failed < 5 {
				t.Errorf("request %d: %v", i, err)
			}
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed (all took %s)", failed, n, took)
	}
	if k := recs.Count(isLoaderFailure); k > 0 {
		t.Errorf("a healthy loader was killed %d times", k)
	}
	t.Logf("%d requests in %s", n, took)
}

// TestLoaderHookQueueBound: a loader that stops answering while god has many hooks for it loses
// those past the queue's bound; god says so in one record with the count once the burst is over
// (not one per hook), and the hooks it kept reach the loader in order. The loader is not killed:
// it answers within its timeout once it goes on.
func TestLoaderHookQueueBound(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(t.TempDir(), "hooks")
	gate := filepath.Join(t.TempDir(), "gate")
	if err := syscall.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	testutil.WriteScript(t, dir, "stuck", `
exec {g}<> "$GATE"
echo '["godv1","q"]'
held=
while IFS= read -r req; do
	case "$req" in
	'["q","onPing",'*)
		[ -z "$held" ] && { held=1; read -r -u "$g" _; }
		echo "$req" >>"$REC"; echo '[]' ;;
	*) echo '[]' ;;
	esac
done
`)
	t.Setenv("REC", rec)
	t.Setenv("GATE", gate)
	pool, recs := startPool(t, filepath.Join(dir, "stuck"), 5*time.Second)
	const bound, sent = 8, 100
	pool.mu.Lock()
	pool.hooks.min = bound
	pool.mu.Unlock()
	for i := range sent {
		pool.Hook("q", []string{"onPing", strconv.Itoa(i)})
	}
	// The loader is held on the first: let it go on.
	w, err := os.OpenFile(gate, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	isDrop := func(r slog.Record) bool { return strings.HasPrefix(r.Message, "loader too slow for its jobs") }
	recs.Wait(t, time.Minute, 1, "the record of the dropped hooks", isDrop)
	var dropped int
	recs.Count(func(r slog.Record) bool {
		if isDrop(r) {
			dropped, _ = strconv.Atoi(testutil.Attr(r, "dropped"))
		}
		return false
	})
	kept := sent - dropped
	testutil.Eventually(t, time.Minute, "the kept hooks reach the loader", func() bool {
		b, _ := os.ReadFile(rec)
		return strings.Count(string(b), "\n") >= kept
	})
	b, _ := os.ReadFile(rec)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	// The queue held the bound, and the first batch was taken out of it before it filled.
	if dropped < sent-bound-hookBatch || dropped > sent-bound || len(lines) != kept {
		t.Errorf("dropped %d, delivered %d of %d (bound %d)", dropped, len(lines), sent, bound)
	}
	// In order, the first one kept (the loader held it), none twice. Which later ones were kept
	// depends on when the sender took its first batch out of the queue: hooks queued after that
	// were kept too, while those past the bound before it were dropped.
	last := -1
	for i, l := range lines {
		var got int
		if _, err := fmt.Sscanf(l, `["q","onPing","%d"]`, &got); err != nil || got <= last || (i == 0 && got != 0) {
			t.Errorf("hook %d: %s after hook %d (want them in order, the first kept)", i, l, last)
			break
		}
		last = got
	}
	if k := recs.Count(isDrop); k != 1 {
		t.Errorf("%d records of dropped hooks, want 1", k)
	}
	if k := recs.Count(isLoaderFailure); k > 0 {
		t.Errorf("the loader was killed %d times", k)
	}
}
