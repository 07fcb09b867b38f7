package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// abuseWatcher asks god for its status in a loop while a test abuses it, and keeps how long each
// answer took, so the test can show god stayed responsive.
type abuseWatcher struct {
	g     *god
	limit time.Duration // an answer slower than this is a failure
	stop  chan struct{}
	done  chan struct{}

	mu    sync.Mutex
	n     int
	busy  int // "busy" refusals: the connection limit was reached on purpose
	slow  []string
	worst time.Duration
}

// watchStatus starts the loop: one status request every 100 ms, each bounded by limit, for at
// most maxTime. Call finish to stop it and judge it.
func watchStatus(g *god, limit, maxTime time.Duration) *abuseWatcher {
	w := &abuseWatcher{g: g, limit: limit, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(time.Now().Add(maxTime))
	g.t.Cleanup(w.finish)
	return w
}

func (w *abuseWatcher) loop(deadline time.Time) {
	defer close(w.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		t0 := time.Now()
		res, err := statusOnce(w.g.socket, w.limit)
		took := time.Since(t0)
		w.mu.Lock()
		w.n++
		w.worst = max(w.worst, took)
		switch {
		case err != nil:
			w.slow = append(w.slow, fmt.Sprintf("%s: %v (after %s)", t0.Format("15:04:05.000"), err, took.Round(time.Millisecond)))
		case !res.OK && strings.HasPrefix(res.Error, "busy:"):
			w.busy++
		case !res.OK:
			w.slow = append(w.slow, fmt.Sprintf("%s: status failed: %s", t0.Format("15:04:05.000"), res.Error))
		}
		w.mu.Unlock()
	}
}

// statusOnce sends one status request with the control client, bounded by limit.
func statusOnce(socket string, limit time.Duration) (control.Response, error) {
	c, err := control.Dial(socket)
	if err != nil {
		return control.Response{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return c.Do(ctx, control.Request{Cmd: control.CmdStatus}, nil)
}

// finish stops the loop and waits for it.
func (w *abuseWatcher) finish() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// judge stops the loop and fails the test when a status request failed or was late.
func (w *abuseWatcher) judge(t testing.TB) {
	t.Helper()
	w.finish()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("status loop: %d requests, %d refused as busy during the flood, slowest %s", w.n, w.busy, w.worst.Round(time.Millisecond))
	if w.n-w.busy < 5 {
		t.Errorf("status loop: only %d answers", w.n-w.busy)
	}
	if len(w.slow) > 0 {
		t.Errorf("status not answered within %s %d times:\n  %s", w.limit, len(w.slow), strings.Join(w.slow, "\n  "))
	}
}

// rawResponse sends payload on a fresh control connection and returns god's first reply line,
// decoded; an error when none comes within timeout. It writes in the background, because god may
// stop reading (a request too large) and answer while the client still writes.
func rawResponse(socket string, payload []byte, timeout time.Duration) (control.Response, error) {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return control.Response{}, fmt.Errorf("dial control socket: %w", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	go conn.Write(payload)
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return control.Response{}, fmt.Errorf("no reply line within %s: %w", timeout, err)
	}
	var res control.Response
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return control.Response{}, fmt.Errorf("reply %q is not a response: %w", line, err)
	}
	return res, nil
}

// pairRunning waits for the two well-behaved jobs of an abuse test to run, steady (see healthy)
// and other, and returns every job's pids and god's vitals before the abuse.
func pairRunning(t testing.TB, g *god) (map[string][]int, vitals) {
	t.Helper()
	g.waitState("steady", "run", 10*time.Second)
	g.waitState("other", "run", 10*time.Second)
	pids, before := jobPids(g), g.vitals()
	t.Logf("before: %s", before)
	return pids, before
}

// jobPids maps each job to its pids, sorted, from one status.
func jobPids(g *god) map[string][]int {
	out := map[string][]int{}
	for _, j := range g.status() {
		for _, p := range j.Processes {
			out[j.Name] = append(out[j.Name], p.Pid)
		}
		sort.Ints(out[j.Name])
	}
	return out
}

// sameJobs fails the test unless every job of before still runs with the same pids.
func sameJobs(g *god, before map[string][]int) {
	g.t.Helper()
	after := jobPids(g)
	for name, pids := range before {
		if fmt.Sprint(after[name]) != fmt.Sprint(pids) {
			g.t.Errorf("job %s: pids %v before the abuse, %v after", name, pids, after[name])
		}
	}
}
