package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reloadsUnderLoad runs n `god reload JOB` one after the other (each must exit 0) while l runs,
// waiting for a few requests to be served between two, and returns the marks for l.check and the
// durations of the reload commands.
func reloadsUnderLoad(t testing.TB, g *god, job string, l *load, n int) ([]reloadMark, []time.Duration) {
	t.Helper()
	var marks []reloadMark
	var took []time.Duration
	last := 0
	for k := 1; k <= n; k++ {
		l.waitServed(t, 10, 20*time.Second)
		m, d := g.reloadOK(job)
		if m.gen <= last {
			g.fatalf("reload %d of %s: generation %d serves, not newer than %d", k, job, m.gen, last)
		}
		last = m.gen
		marks = append(marks, m)
		took = append(took, d)
	}
	l.waitServed(t, 10, 20*time.Second)
	return marks, took
}

// backendGod starts examples/backend as its own loader in a fresh god, with env for its loader,
// and waits until the backend job runs.
func backendGod(t testing.TB, env ...string) *god {
	t.Helper()
	g := newGod(t)
	g.env = env
	copyExecutable(t, backendBin, g.dir, "backend")
	g.start()
	dumpOnFailure(t, g)
	g.waitState("backend", "run", 15*time.Second)
	return g
}

// TestReloadOverlapNoFailures reloads examples/backend 20 times under load, with and without
// keep-alive: no request fails, every answer names a generation, and once `god reload` returned
// only the new generation answers.
func TestReloadOverlapNoFailures(t *testing.T) {
	t.Parallel()
	for _, keepAlive := range []bool{false, true} {
		t.Run(fmt.Sprintf("keepalive=%v", keepAlive), func(t *testing.T) {
			t.Parallel()
			addr := freePort(t)
			g := backendGod(t, "BACKEND_ADDR="+addr)
			l := startLoad(t, loadOpts{URL: "http://" + addr + "/", KeepAlive: keepAlive})
			marks, took := reloadsUnderLoad(t, g, "backend", l, 20)
			l.finish()
			rep := l.check(marks)
			t.Logf("20 overlap reloads (keep-alive %v): %s; reload took %s", keepAlive, rep, durations(took))
			rep.expectClean(t)
		})
	}
}

// TestReloadVariantsNoFailures reloads examples/backend under load in other setups: four
// instances sharing the socket, a unix socket, and reload mode restart (no process runs for a
// moment: connections wait in the socket's queue, which god keeps open).
func TestReloadVariantsNoFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		reloads int
		setup   func(t *testing.T) (env []string, o loadOpts)
		procs   int
	}{
		{name: "instances=4", reloads: 10, procs: 4, setup: func(t *testing.T) ([]string, loadOpts) {
			addr := freePort(t)
			return []string{"BACKEND_ADDR=" + addr, "BACKEND_INSTANCES=4"}, loadOpts{URL: "http://" + addr + "/", Workers: 6}
		}},
		{name: "unix", reloads: 10, procs: 1, setup: func(t *testing.T) ([]string, loadOpts) {
			path := filepath.Join(t.TempDir(), "backend.sock")
			return []string{"BACKEND_LISTEN=unix://" + path}, loadOpts{URL: "http://backend/", Unix: path}
		}},
		{name: "unix-keepalive", reloads: 10, procs: 1, setup: func(t *testing.T) ([]string, loadOpts) {
			path := filepath.Join(t.TempDir(), "backend.sock")
			return []string{"BACKEND_LISTEN=unix://" + path}, loadOpts{URL: "http://backend/", Unix: path, KeepAlive: true}
		}},
		{name: "restart", reloads: 10, procs: 1, setup: func(t *testing.T) ([]string, loadOpts) {
			addr := freePort(t)
			return []string{"BACKEND_ADDR=" + addr, "BACKEND_RELOAD=restart"}, loadOpts{URL: "http://" + addr + "/", Timeout: 10 * time.Second}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			env, o := c.setup(t)
			g := backendGod(t, env...)
			g.waitJob("backend", 10*time.Second, fmt.Sprintf("%d processes ready", c.procs), func(j controlJob) bool {
				return j.State == "run" && len(j.Processes) == c.procs
			})
			l := startLoad(t, o)
			marks, took := reloadsUnderLoad(t, g, "backend", l, c.reloads)
			l.finish()
			rep := l.check(marks)
			t.Logf("%d reloads (%s): %s; reload took %s", c.reloads, c.name, rep, durations(took))
			rep.expectClean(t)

			j := g.waitJob("backend", 10*time.Second, "settled", func(j controlJob) bool {
				return j.State == "run" && len(j.Processes) == c.procs
			})
			for _, p := range j.Processes {
				if p.Generation != j.Generation {
					t.Errorf("after the reloads, pid %d of generation %d runs beside generation %d", p.Pid, p.Generation, j.Generation)
				}
			}
			if c.procs > 1 {
				// Every instance took its share of the load.
				pids := map[int]bool{}
				for _, r := range l.all() {
					if r.gen == j.Generation {
						pids[r.pid] = true
					}
				}
				if len(pids) < 2 {
					t.Errorf("generation %d: only pids %v answered, want several of %d instances", j.Generation, pids, c.procs)
				}
			}
			if !strings.Contains(j.Reload, "ok") {
				t.Errorf("status Reload after the reloads: %q", j.Reload)
			}
		})
	}
}

// dumpOnFailure logs god's recent log when the test failed; it runs before god is stopped.
func dumpOnFailure(t testing.TB, g *god) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(g.dump())
		}
	})
}
