package integration

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDependencyOrder checks auto dependencies: a, b (after a) and c (after b) start in that
// order and stop in reverse at SIGTERM; a cycle and a missing dependency are reported by name and
// shown in status, while the other jobs run.
func TestDependencyOrder(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	job := func(auto ...string) bashJob {
		return bashJob{Exec: sleeper, Auto: auto, Check: checkOK("500"), Stop: []string{"SIGTERM", "2000"}}
	}
	writeLoader(t, g.dir, "chain", bashLoader{Jobs: map[string]bashJob{
		"a": job("true"), "b": job("a"), "c": job("b"),
	}})
	writeLoader(t, g.dir, "knots", bashLoader{Jobs: map[string]bashJob{
		"x": job("y"), "y": job("x"), "m": job("nope"), "free": job("true"),
	}})
	g.start()
	for _, n := range []string{"a", "b", "c", "free"} {
		g.waitState(n, "run", 10*time.Second)
	}

	// Each job started after the one it waits for, and after that one was ready.
	started := map[string]time.Time{}
	for _, r := range g.logs(0, func(r record) bool { return r.Msg == "started" }) {
		if _, ok := started[r.str("job")]; !ok {
			started[r.str("job")] = r.Time
		}
	}
	st := g.status()
	since := map[string]time.Time{}
	for _, j := range st {
		since[j.Name] = j.Since
	}
	if !(started["a"].Before(started["b"]) && started["b"].Before(started["c"])) {
		t.Errorf("start order: a %v, b %v, c %v", started["a"], started["b"], started["c"])
	}
	if started["b"].Before(since["a"]) || started["c"].Before(since["b"]) {
		t.Errorf("a job started before its dependency was ready: started %v, ready since %v", started, since)
	}

	// The cycle and the missing job are named in the log and in status.
	g.waitLog(5*time.Second, "the cycle reported", func(r record) bool {
		return r.Level == "ERROR" && strings.Contains(r.Msg, "dependency cycle") &&
			strings.Contains(r.Msg, "x") && strings.Contains(r.Msg, "y")
	})
	g.waitLog(5*time.Second, "the missing job reported", func(r record) bool {
		return r.Level == "ERROR" && strings.Contains(r.Msg, "nope") && strings.Contains(r.Msg, "m")
	})
	for _, j := range st {
		switch j.Name {
		case "x", "y":
			if j.State != "wait" || !strings.Contains(j.Reason, "cycle") || !strings.Contains(j.Reason, "x -> y") && !strings.Contains(j.Reason, "y -> x") {
				t.Errorf("job %s: state %s reason %q, want wait with the cycle", j.Name, j.State, j.Reason)
			}
		case "m":
			if j.State != "wait" || !strings.Contains(j.Reason, "nope") {
				t.Errorf("job m: state %s reason %q, want wait naming nope", j.State, j.Reason)
			}
		}
	}
	if r := g.mustCLI("status"); !strings.Contains(r.stdout, "nope") || !strings.Contains(r.stdout, "cycle") {
		t.Errorf("god status does not show the reasons:\n%s", r.stdout)
	}

	// SIGTERM stops dependents first.
	from := g.mark()
	g.signal(syscall.SIGTERM)
	if code := g.wait(20 * time.Second); code != 0 {
		t.Errorf("god exited %d after SIGTERM", code)
	}
	var order []string
	for _, r := range g.logs(from, func(r record) bool { return r.Msg == "exited" }) {
		switch r.str("job") {
		case "a", "b", "c":
			order = append(order, r.str("job"))
		}
	}
	if strings.Join(order, ",") != "c,b,a" {
		t.Errorf("stop order %v, want c,b,a", order)
	}
}
