package integration

import (
	"strings"
	"testing"
	"time"
)

// TestDeployContainerEntrypoint runs what examples/container's image runs: god as PID 1 with the
// example backend in its loader directory, configured by the environment (BACKEND_ADDR). It
// checks what the Kubernetes manifest relies on: the HTTP readiness probe answers, the liveness
// probe `god status` exits 0, a zero-downtime `god reload` works with god as init, and SIGTERM
// (what the kubelet sends) stops every job and makes god exit 0.
func TestDeployContainerEntrypoint(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	g := newGod(t)
	g.env = []string{"BACKEND_ADDR=" + addr}
	copyExecutable(t, backendBin, g.dir, "backend")
	p := startPID1God(t, g)

	p.waitState("backend", "run", 10*time.Second)
	p.waitState("worker", "run", 10*time.Second)
	url := "http://" + addr + "/"
	eventually(t, 5*time.Second, "readiness probe: backend answering", func() bool {
		return strings.Contains(get(url), "generation 1,")
	})
	if r := p.cli("status"); r.code != 0 {
		t.Errorf("liveness probe `god status`: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	p.mustCLI("reload", "backend")
	if body := get(url); !strings.Contains(body, "generation 2,") {
		t.Errorf("after god reload, backend answers %q, want generation 2", body)
	}

	if code := p.term(20 * time.Second); code != 0 {
		t.Errorf("god (pid 1) exited %d after SIGTERM, want 0\n%s", code, p.dump())
	}
	p.waitLog(time.Second, "clean shutdown", func(r record) bool { return r.Msg == "every job stopped; god exits" })
	for _, job := range []string{"backend", "worker"} {
		if len(p.logs(0, func(r record) bool {
			return r.Msg == "exited" && r.str("job") == job && r.str("exit") != "signal 9 (SIGKILL)"
		})) == 0 {
			t.Errorf("job %s: no exit short of SIGKILL at shutdown\n%s", job, p.dump())
		}
	}
}
