package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/procfs"
)

// pid1God is a god that runs as PID 1 of a new pid namespace, as in a container: `unshare --pid
// --fork --mount-proc --kill-child god ...`. unshare stays outside as the namespace's parent and
// passes god's exit status on; --kill-child makes the kernel kill god, and with it every process
// of the namespace, if unshare dies, so a failed test leaves nothing behind.
//
// The god harness's pid bookkeeping does not apply here (pids in god's log and status are the
// namespace's own), so pid1God brings its own cleanup; it reuses the harness for the log, the
// CLI and the job states.
type pid1God struct {
	*god
	outer int    // god's pid outside the namespace (where the test can signal it)
	ns    string // the namespace, as /proc/PID/ns/pid reads
}

// startPID1God starts god as PID 1 of a fresh pid namespace, or skips the test when the kernel
// (or the sandbox) refuses to make one.
func startPID1God(t testing.TB, g *god, flags ...string) *pid1God {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "--pid", "--fork", "--mount-proc", "true").CombinedOutput(); err != nil {
		t.Skipf("cannot make a pid namespace here (needs root or user namespaces): unshare: %v: %s", err, bytes.TrimSpace(out))
	}
	args := append([]string{"--pid", "--fork", "--mount-proc", "--kill-child", godBin,
		"--dir", g.dir, "--socket", g.socket, "--log", "json"}, flags...)
	cmd := exec.Command(unshare, args...)
	cmd.Env = append(append(plainEnv(), noRaceExitSleep), g.env...)
	g.launch(cmd)
	p := &pid1God{god: g}
	t.Cleanup(p.cleanup)

	running := g.waitLog(10*time.Second, "god serving", func(r record) bool { return r.Msg == "god running" })
	if pid := running.int("pid"); pid != 1 {
		g.fatalf("god runs as pid %d in its namespace, want 1", pid)
	}
	eventually(t, 5*time.Second, "god's pid outside the namespace", func() bool {
		for _, pid := range childrenOf(g.cmd.Process.Pid) {
			p.outer = pid
		}
		return p.outer > 0
	})
	p.ns, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.outer))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// term sends SIGTERM to god itself (unshare ignores it) and returns god's exit code.
func (p *pid1God) term(timeout time.Duration) int {
	p.t.Helper()
	if err := syscall.Kill(p.outer, syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM god: %v", err)
	}
	return p.wait(timeout)
}

// cleanup ends god if the test did not: SIGTERM, then SIGKILL to unshare after 20 s, which takes
// the whole namespace down through --kill-child.
func (p *pid1God) cleanup() {
	select {
	case <-p.exited:
	default:
		_ = syscall.Kill(p.outer, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.t.Errorf("god (pid 1) did not exit within 20 s of SIGTERM\n%s", p.dump())
		}
	}
	if strings.Contains(p.stderr.String(), "DATA RACE") {
		p.t.Errorf("god reported a data race:\n%s", p.stderr.String())
	}
}

// procInNS is one process of god's namespace, seen from outside.
type procInNS struct {
	pid, ppid int // outside the namespace
	state     byte
	cmdline   string
}

// members lists the processes of god's namespace, god included, from a scan of /proc.
func (p *pid1God) members() []procInNS {
	ents, _ := os.ReadDir("/proc")
	var out []procInNS
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || ns != p.ns {
			continue
		}
		st, ok := readProc(pid)
		if !ok {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out = append(out, procInNS{pid: pid, ppid: st.ppid, state: procfs.State(pid),
			cmdline: strings.ReplaceAll(string(bytes.TrimRight(cmd, "\x00")), "\x00", " ")})
	}
	return out
}

// zombies lists the namespace's processes that have exited and wait to be reaped.
func (p *pid1God) zombies() []procInNS {
	var out []procInNS
	for _, m := range p.members() {
		if m.state == 'Z' {
			out = append(out, m)
		}
	}
	return out
}

// TestDeployPID1Orphans: as a container's PID 1, god reaps every process that ends up its child,
// not only its jobs: a job leaves orphans behind (in its process group, and in a session of
// their own that no signal to the job reaches). They become god's children, and once they exit
// no zombie is left. The job itself, meanwhile, is not disturbed; SIGTERM then stops it, and
// god exits 0.
func TestDeployPID1Orphans(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	release := filepath.Join(filepath.Dir(g.dir), "release")
	// Each orphan waits for the release file, so the test sees it reparented before it exits.
	wait := fmt.Sprintf(`while [ ! -e %s ]; do sleep 0.02; done`, release)
	script := fmt.Sprintf(`for i in 1 2 3; do (sh -c %s &); (setsid sh -c %s &); done; exec sleep 1000`, sq(wait), sq(wait))
	writeLoader(t, g.dir, "orphans", bashLoader{Jobs: map[string]bashJob{
		"parent": {Exec: []string{"/bin/sh", "-c", script}, Auto: autoTrue},
	}})
	p := startPID1God(t, g)
	job := p.waitState("parent", "run", 10*time.Second)

	// Six orphans, reparented to god: PID 1 of the namespace and subreaper.
	var orphans []procInNS
	eventually(t, 10*time.Second, "six orphans reparented to god", func() bool {
		orphans = orphans[:0]
		for _, m := range p.members() {
			if strings.Contains(m.cmdline, release) && m.ppid == p.outer && m.state != 'Z' {
				orphans = append(orphans, m)
			}
		}
		return len(orphans) == 6
	})
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "every orphan gone and no zombie left", func() bool {
		for _, m := range p.members() {
			if strings.Contains(m.cmdline, release) || m.state == 'Z' {
				return false
			}
		}
		return true
	})
	// Reaping the orphans took nothing from the job: same process, still running.
	if now := p.waitState("parent", "run", time.Second); pidOf(t, now) != pidOf(t, job) || now.Restarts != job.Restarts {
		t.Errorf("the job changed while its orphans were reaped: before %+v, after %+v", job, now)
	}

	if code := p.term(15 * time.Second); code != 0 {
		t.Errorf("god (pid 1) exited %d after SIGTERM, want 0\n%s", code, p.dump())
	}
	p.waitLog(time.Second, "clean shutdown", func(r record) bool { return r.Msg == "every job stopped; god exits" })
	p.waitLog(time.Second, "the job stopped by its stop signal", func(r record) bool {
		return r.Msg == "exited" && r.str("job") == "parent" && r.str("exit") == "signal 15 (SIGTERM)"
	})
}

// TestDeployPID1ExitStatuses: 200 quick restarts of a job under god as PID 1, each run ending
// with its own status (an exit code from a counter, or SIGKILL every tenth run) while leaving an
// orphan that exits with a status of its own. god's one wait must give every run its own status:
// a second waiter, or orphans reaped as if they were jobs, would show up as a wrong or missing
// status.
func TestDeployPID1ExitStatuses(t *testing.T) {
	t.Parallel()
	const runs = 200
	g := newGod(t)
	base := filepath.Dir(g.dir)
	counter, ledger := filepath.Join(base, "counter"), filepath.Join(base, "ledger")
	// The ledger gets "PID WANT" before each run ends; WANT is what god must log for PID.
	script := fmt.Sprintf(`n=$(cat %[1]s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %[1]s
[ $n -gt %[3]d ] && exec sleep 1000
(sh -c 'exit 77' &)
if [ $((n %% 10)) -eq 0 ]; then echo "$$ signal 9 (SIGKILL)" >> %[2]s; kill -KILL $$; fi
code=$((n %% 250 + 1)); echo "$$ exit $code" >> %[2]s; exit $code`, sq(counter), sq(ledger), runs)
	writeLoader(t, g.dir, "flapper", bashLoader{Jobs: map[string]bashJob{
		"flap": {Exec: []string{"/bin/sh", "-c", script}, Auto: autoTrue},
	}})
	p := startPID1God(t, g, "--restart-limit", "0", "--backoff-max", "1ms")

	exits := 0 // waitLog looks at each record once, in order
	p.waitLog(120*time.Second, fmt.Sprintf("%d exits of job flap", runs), func(r record) bool {
		if exitRecordOf("flap")(r) {
			exits++
		}
		return exits >= runs
	})
	p.waitState("flap", "run", 10*time.Second) // run 201: the counter says stay up

	want := map[string]string{} // pid -> status
	b, err := os.ReadFile(ledger)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		pid, status, _ := strings.Cut(line, " ")
		want[pid] = status
	}
	if len(want) != runs {
		t.Fatalf("ledger has %d runs, want %d (pids reused?)", len(want), runs)
	}
	got := map[string]string{}
	for _, r := range p.logs(0, exitRecordOf("flap")) {
		got[r.str("pid")] = r.str("exit")
	}
	bad := 0
	for pid, w := range want {
		if got[pid] != w && bad < 10 {
			bad++
			t.Errorf("run pid %s: god logged %q, want %q", pid, got[pid], w)
		}
	}
	for pid, status := range got {
		if _, ok := want[pid]; !ok {
			t.Errorf("god logged an exit of job flap for pid %s (%s), not one of its runs", pid, status)
		}
	}
	if len(p.zombies()) > 0 {
		eventually(t, 5*time.Second, "no zombie in the namespace", func() bool { return len(p.zombies()) == 0 })
	}
	if code := p.term(15 * time.Second); code != 0 {
		t.Errorf("god (pid 1) exited %d after SIGTERM, want 0", code)
	}
}

// exitRecordOf matches god's record of a process of job that exited.
func exitRecordOf(job string) func(record) bool {
	return func(r record) bool { return r.Msg == "exited" && r.str("job") == job }
}
