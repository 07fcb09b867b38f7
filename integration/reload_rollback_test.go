package integration

import (
	"strings"
	"testing"
	"time"
)

// backendLoader is a bash loader that runs examples/backend's binary as job "backend" on addr
// (reload: overlap; ready as given: notify or check); exec and check replace its exec reply and
// check snippet, to play a new build that is broken.
func backendLoader(addr, ready string, exec []string, check string) bashLoader {
	if exec == nil {
		exec = shJob("exec " + sq(backendBin))
	}
	if check == "" {
		check = checkOK("500")
	}
	return bashLoader{Jobs: map[string]bashJob{"backend": {
		Exec:  exec,
		Auto:  autoTrue,
		Check: check,
		Props: map[string]string{
			"listen": "echo " + sq(jsonArray("http=tcp://"+addr)),
			"ready":  "echo " + sq(jsonArray(ready)),
			"reload": "echo " + sq(jsonArray("overlap")),
		},
	}}}
}

// replaceLoader puts a new build of loader name in place (an atomic rename) and waits until god
// has read it: from then on every request, checks included, goes to the new file.
func replaceLoader(g *god, name string, l bashLoader) {
	g.t.Helper()
	mark := g.mark()
	path := writeLoader(g.t, g.dir, name, l)
	g.waitLogFrom(mark, 10*time.Second, "god reading the new "+name, func(r record) bool {
		return r.Msg == "loader read" && r.str("loader") == path
	})
}

// TestReloadRollback replaces the loader of a backend under load by one of a broken new build,
// then reloads: `god reload` exits 1 with the reason and the new generation's last output, the
// old generation serves on (same pid), no request fails, and status shows the failure. Putting
// the good loader back, the next reload works.
func TestReloadRollback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		ready  string
		exec   []string
		check  string
		reason string // in god reload's output
		output string // a line the new generation printed, in god reload's output
	}{
		{name: "exits", ready: "notify", exec: shJob(`echo "new build: config broken"; exit 3`),
			reason: "exited with exit 3 before it was ready", output: "new build: config broken"},
		{name: "never-ready", ready: "notify", exec: shJob(`echo "new build: waiting forever"; exec sleep 1000`),
			reason: "not ready within 2s", output: "new build: waiting forever"},
		// The check fails for any generation but the first (the old one stays healthy), after a
		// probe of half a second, once the new process has said something. With ready: notify
		// a READY=1 before the first check reply would make it ready: use check.
		{name: "check-fails", ready: "check", check: `if tr '\0' '\n' < /proc/$pid/environ | grep -qx GOD_GENERATION=1; then echo '["ok","500"]'; ` +
			`else sleep 0.5; echo "check: pid $pid is unhealthy" >&2; echo '["fail"]'; fi`,
			// No output asserted: under load the check may fail before the new process printed
			// anything (the other cases show the output in the message).
			reason: "check failed", output: ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			addr := freePort(t)
			g := newGod(t)
			writeLoader(t, g.dir, "backend", backendLoader(addr, c.ready, nil, ""))
			g.start("--start-timeout", "2s")
			dumpOnFailure(t, g)
			old := pidOf(t, g.waitState("backend", "run", 15*time.Second))
			l := startLoad(t, loadOpts{URL: "http://" + addr + "/"})
			l.waitServed(t, 20, 20*time.Second)

			replaceLoader(g, "backend", backendLoader(addr, c.ready, c.exec, c.check))
			t0 := time.Now()
			r := g.cli("reload", "backend")
			took := time.Since(t0)
			out := r.stdout + r.stderr
			if r.code != 1 || !strings.Contains(out, c.reason) || !strings.Contains(out, c.output) {
				g.fatalf("god reload backend with a broken build: exit %d (want 1), want %q and %q in:\n%s", r.code, c.reason, c.output, out)
			}
			j := g.waitJob("backend", 10*time.Second, "back to the old generation alone", func(j controlJob) bool {
				return len(j.Processes) == 1
			})
			if pid := pidOf(t, j); pid != old || j.State != "run" || j.Generation != 1 {
				t.Errorf("after the rollback: state %s, generation %d, pid %d; want run, 1, %d", j.State, j.Generation, pid, old)
			}
			if !strings.Contains(j.Reload, "failed") || !strings.Contains(j.Reload, c.reason) {
				t.Errorf("status Reload = %q, want the failure and %q", j.Reload, c.reason)
			}
			rolledBack := time.Now()
			l.waitServed(t, 20, 20*time.Second)

			// The good build again: the next reload works.
			replaceLoader(g, "backend", backendLoader(addr, c.ready, nil, ""))
			fixed := time.Now()
			m, _ := g.reloadOK("backend")
			l.waitServed(t, 20, 20*time.Second)
			l.finish()
			rep := l.check([]reloadMark{{at: rolledBack, gen: 1}, m})
			t.Logf("rollback (%s): god reload took %s; %s", c.name, took.Round(time.Millisecond), rep)
			rep.expectClean(t)
			for _, r := range l.all() {
				if r.err == "" && r.start.After(rolledBack) && r.end.Before(fixed) && r.pid != old {
					t.Errorf("after the rollback pid %d (generation %d) answered, want the old pid %d", r.pid, r.gen, old)
					break
				}
			}
		})
	}
}
