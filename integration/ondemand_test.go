package integration

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// onDemandJob is sockjob's HTTP mode as a job of auto ["socket"] on tcp addr; idleMS, when not
// empty, is its idle-exit.
func onDemandJob(addr, idleMS string) bashJob {
	extra := map[string][]string{}
	if idleMS != "" {
		extra["idle-exit"] = []string{idleMS}
	}
	j := sockJob([]string{sockjobBin, "http", "http"}, []string{"http=tcp://" + addr}, nil, extra)
	j.Auto = []string{"socket"}
	return j
}

// startLazy starts a god (the binary bin; "" for godBin) whose one job, lazy, is onDemandJob on a
// free port with idle exit idleMS, and returns it with the job's address and its status once it
// listens.
func startLazy(t testing.TB, idleMS, bin string) (*god, string, controlJob) {
	t.Helper()
	addr := freePort(t)
	g := newGod(t)
	g.bin = bin
	writeLoader(t, g.dir, "lazy", bashLoader{Jobs: map[string]bashJob{"lazy": onDemandJob(addr, idleMS)}})
	g.start()
	return g, addr, g.waitState("lazy", "listen", 10*time.Second)
}

// httpGet makes one request on a new connection and returns the body ("ok PID\n").
func httpGet(addr string, timeout time.Duration) (string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: timeout}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return string(b), fmt.Errorf("status %s", resp.Status)
	}
	return string(b), nil
}

// servedBy is the pid in sockjob's answer "ok PID".
func servedBy(body string) int {
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(body, "ok ")))
	return pid
}

// startsOf lists god's "started" records of job from index from on.
func startsOf(g *god, from int, job string) []record {
	return g.logs(from, func(r record) bool { return r.str("job") == job && r.Msg == "started" })
}

// firstRequest sends the request that starts the on-demand job lazy and checks that its new
// process answered it; it returns that process's pid.
func firstRequest(t *testing.T, g *god, addr, what string) int {
	t.Helper()
	body, err := httpGet(addr, 20*time.Second)
	if err != nil {
		g.fatalf("%s: %v", what, err)
	}
	pid := pidOf(t, g.waitState("lazy", "run", 10*time.Second))
	if servedBy(body) != pid {
		t.Errorf("%s: answer %q, want it from pid %d", what, body, pid)
	}
	return pid
}

// TestOnDemandStartsOnFirstConnection: an on-demand job has no process until a client comes;
// god status says it waits for a connection; the first request succeeds and is served by the
// process it started. god stop makes it stopped (no connection starts it), god start runs it at
// once.
func TestOnDemandStartsOnFirstConnection(t *testing.T) {
	t.Parallel()
	g, addr, j := startLazy(t, "", "")
	if len(j.Processes) != 0 || !strings.Contains(j.Reason, "waiting for a connection") {
		t.Fatalf("listening job: processes %v, reason %q", j.Processes, j.Reason)
	}
	if out := g.mustCLI("status").stdout; !strings.Contains(out, "listen") || !strings.Contains(out, "waiting for a connection") {
		t.Errorf("god status does not show the job waiting for a connection:\n%s", out)
	}
	if s := startsOf(g, 0, "lazy"); len(s) != 0 {
		t.Fatalf("started before any connection: %v", s[0].Raw)
	}
	firstRequest(t, g, addr, "first request")
	if s := startsOf(g, 0, "lazy"); len(s) != 1 {
		t.Errorf("%d started records, want 1", len(s))
	}

	g.mustCLI("stop", "lazy")
	g.waitState("lazy", "stopped", 10*time.Second)
	// A connection to a stopped job waits in the queue (god holds the socket) and starts nothing;
	// god start runs the job, which answers it.
	mark := g.mark()
	queued := make(chan error, 1)
	go func() { _, err := httpGet(addr, 30*time.Second); queued <- err }()
	r := g.mustCLI("start", "lazy")
	if !strings.Contains(r.stdout+r.stderr, "started") {
		t.Errorf("god start: %q %q", r.stdout, r.stderr)
	}
	if err := <-queued; err != nil {
		g.fatalf("request queued while stopped: %v", err)
	}
	if s := startsOf(g, mark, "lazy"); len(s) != 1 {
		t.Errorf("after god start: %d started records, want 1", len(s))
	}
}

// TestOnDemandParallelFirstConnections: 200 clients connect at once to a job that is not running:
// every one is answered, by the one process their connections started.
func TestOnDemandParallelFirstConnections(t *testing.T) {
	t.Parallel()
	const clients = 200
	g, addr, _ := startLazy(t, "", "")
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	pids := make(chan int, clients)
	start := make(chan struct{})
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body, err := httpGet(addr, 30*time.Second)
			if err != nil {
				errs <- err
				return
			}
			pids <- servedBy(body)
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	close(pids)
	n := 0
	for err := range errs {
		if n++; n <= 5 {
			t.Errorf("request failed: %v", err)
		}
	}
	if n > 0 {
		g.fatalf("%d of %d first connections failed", n, clients)
	}
	by := map[int]int{}
	for p := range pids {
		by[p]++
	}
	if s := startsOf(g, 0, "lazy"); len(s) != 1 || len(by) != 1 {
		t.Errorf("%d started records, answers by %v: want one process", len(s), by)
	}
}

// TestOnDemandSleepsWhenIdle: a job with idle-exit, under a bounded client loop whose pauses are
// longer than its idle time: every request succeeds, and the job slept (exit 0, back to listen)
// and woke again at least 3 times, as god's log shows.
func TestOnDemandSleepsWhenIdle(t *testing.T) {
	t.Parallel()
	const (
		idle   = 200 * time.Millisecond
		rounds = 6
		pause  = idle + 1500*time.Millisecond // the workload's shape: quiet for longer than idle
	)
	g, addr, _ := startLazy(t, strconv.Itoa(int(idle/time.Millisecond)), "")
	for round := range rounds {
		for i := range 3 {
			if _, err := httpGet(addr, 20*time.Second); err != nil {
				g.fatalf("round %d request %d: %v", round, i, err)
			}
		}
		time.Sleep(pause)
	}
	starts := startsOf(g, 0, "lazy")
	sleeps := g.logs(0, func(r record) bool {
		return r.str("job") == "lazy" && r.Msg == "exited" && r.str("exit") == "exit 0"
	})
	if len(starts) < 4 || len(sleeps) < 3 {
		g.fatalf("%d starts and %d exits 0 in %d rounds; want it to wake at least 3 times", len(starts), len(sleeps), rounds)
	}
	if j, _ := g.job("lazy"); j.Restarts != 0 {
		t.Errorf("restarts %d: an idle exit is no restart", j.Restarts)
	}
	t.Logf("%d starts, %d idle exits in %d rounds", len(starts), len(sleeps), rounds)
}

// TestOnDemandSurvivesUpgrade: a job waiting for a connection still waits after god upgrade
// (god re-executes itself), and its first connection starts it.
func TestOnDemandSurvivesUpgrade(t *testing.T) {
	t.Parallel()
	g, addr, _ := startLazy(t, "", copyExecutable(t, godBin, t.TempDir(), "god"))
	mark := g.mark()
	g.mustCLI("upgrade")
	g.waitLogFrom(mark, 15*time.Second, "the upgraded image", func(r record) bool { return strings.HasPrefix(r.Msg, "upgraded") })
	j := g.waitState("lazy", "listen", 10*time.Second)
	if len(j.Processes) != 0 || len(startsOf(g, 0, "lazy")) != 0 {
		t.Fatalf("after the upgrade the job started without a connection: %+v", j)
	}
	firstRequest(t, g, addr, "first request after the upgrade")
}

// TestOnDemandConnectionsDuringIdleExit: requests paced around the job's idle time, so that some
// arrive while its process is deciding to exit or exiting: each one waits in the socket's queue
// and is answered, by the old process or by the one it wakes.
func TestOnDemandConnectionsDuringIdleExit(t *testing.T) {
	t.Parallel()
	const (
		idle     = 100 * time.Millisecond
		requests = 40
	)
	g, addr, _ := startLazy(t, strconv.Itoa(int(idle/time.Millisecond)), "")
	for i := range requests {
		if _, err := httpGet(addr, 20*time.Second); err != nil {
			g.fatalf("request %d: %v", i, err)
		}
		// The workload's shape: pauses from 0.6 to 1.6 times the idle time.
		time.Sleep(idle * time.Duration(6+i%11) / 10)
	}
	wakes := g.logs(0, func(r record) bool { return r.str("job") == "lazy" && strings.HasPrefix(r.Msg, "a connection waits") })
	t.Logf("%d requests, %d wakes", requests, len(wakes))
	if len(wakes) < 2 {
		t.Errorf("%d wakes for %d requests paced around the idle time: the job never slept", len(wakes), requests)
	}
}

// TestOnDemandIsReadyForDependents: a job that waits for an on-demand job starts while that one
// listens (its socket is open: a connection will start it), and the on-demand job stays without
// a process.
func TestOnDemandIsReadyForDependents(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	g := newGod(t)
	writeLoader(t, g.dir, "pair", bashLoader{Jobs: map[string]bashJob{
		"lazy": onDemandJob(addr, ""),
		"app":  {Exec: []string{"sleep", "1000"}, Auto: []string{"lazy"}},
	}})
	g.start()
	g.waitState("app", "run", 10*time.Second)
	if j, _ := g.job("lazy"); j.State != "listen" || len(j.Processes) != 0 {
		t.Fatalf("on-demand job %s with processes %v, want listen without", j.State, j.Processes)
	}
	// god start runs it at once, without a connection; god stop ends it and its waiting.
	if r := g.mustCLI("start", "lazy"); strings.Contains(r.stdout, "already") {
		t.Errorf("god start of a listening job: %q", r.stdout)
	}
	pidOf(t, g.waitState("lazy", "run", 10*time.Second))
	g.mustCLI("stop", "lazy")
	if j, _ := g.job("lazy"); j.State != "stopped" {
		t.Errorf("after god stop: state %s, want stopped", j.State)
	}
}
