package supervisor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
)

func TestBackoffDelay(t *testing.T) {
	b := Backoff{First: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := b.Delay(i + 1); got != w {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w)
		}
	}
}

func TestFindCycles(t *testing.T) {
	jobs := map[string]*jobHandle{}
	add := func(name string, after ...string) {
		h := &jobHandle{}
		h.def.Name = name
		h.def.Auto.Start = true
		h.def.Auto.After = after
		h.j = &job{name: name}
		jobs[name] = h
	}
	add("a", "b")
	add("b", "a")
	add("c", "c")
	add("d", "missing")
	add("e", "d")
	got := findCycles(jobs)
	var s []string
	for _, c := range got {
		s = append(s, strings.Join(c, "->"))
	}
	if strings.Join(s, " ") != "a->b->a c->c" {
		t.Fatalf("cycles = %q, want a->b->a and c->c", s)
	}
}

func TestStateHookNames(t *testing.T) {
	for s, want := range map[jobstate.State]string{jobstate.StateWait: "onWait", jobstate.StateStart: "onStart", jobstate.StateBackoff: "onBackoff", jobstate.StateStopped: "onStopped"} {
		if got := s.Hook(); got != want {
			t.Errorf("%s.Hook() = %q, want %q", s, got, want)
		}
	}
}

// inProcess runs a Supervisor in the test process on a loader directory, with its own reaper.
// Tests using it must not run in parallel with tests that start children otherwise: the reaper
// waits for every child of the process.
type inProcess struct {
	t      testing.TB
	sup    *Supervisor
	events chan jobEvent
	cancel func()
	done   chan error
}

func startInProcess(t testing.TB, dir string, opts ...func(*Config)) *inProcess {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sock := filepath.Join(t.TempDir(), "god.sock")
	cfg := Config{Dir: dir, Socket: sock, Logger: log, Backoff: Backoff{First: 10 * time.Millisecond, Max: 50 * time.Millisecond, MinUptime: time.Hour, Limit: 3}}
	for _, o := range opts {
		o(&cfg)
	}
	sup, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := reaper.New(log)
	p := &inProcess{t: t, sup: sup, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- sup.Run(ctx, r) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("supervisor did not stop")
		}
		r.Close()
	})
	p.events, _ = sup.subscribe() // through the loop: returns once it runs
	return p
}

// waitState waits for job name to reach state and returns its snapshot.
func (p *inProcess) waitState(name string, st jobstate.State) control.JobStatus {
	p.t.Helper()
	if jobs, err := p.sup.snapshot([]string{name}); err == nil && len(jobs) == 1 && jobs[0].State == string(st) {
		return jobs[0]
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev := <-p.events:
			if ev.name == name && ev.state == st {
				return ev.status
			}
		case <-timeout:
			jobs, _ := p.sup.snapshot(nil)
			p.t.Fatalf("job %s did not reach %s; jobs: %+v", name, st, jobs)
		}
	}
}

func (p *inProcess) act(cmd string, jobs ...string) control.Response {
	p.t.Helper()
	return p.sup.Handle(context.Background(), control.Peer{}, control.Request{V: control.Version, Cmd: cmd, Jobs: jobs},
		func(control.Response) error { return nil })
}

// TestJobLifecycle drives one job through the machine with real processes: wait → start → run;
// SIGKILL → exit → start at once (first restart) → run; stop → stopped; start → run; and a job
// that keeps exiting goes backoff → failed after the restart limit.
func TestJobLifecycle(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteScript(t, dir, "loader", `
echo '["godv1","sleeper","crasher"]'
while IFS= read -r req; do
	case "$req" in
	'["sleeper","exec"]') echo '["sleep","1000"]' ;;
	'["sleeper","auto"]') echo '["true"]' ;;
	'["sleeper","check",'*) echo '["ok","100"]' ;;
	'["crasher","exec"]') echo '["sh","-c","exit 3"]' ;;
	*) echo '[]' ;;
	esac
done
`)
	p := startInProcess(t, dir)
	st := p.waitState("sleeper", jobstate.StateRun)
	if len(st.Processes) != 1 || st.Check != "ok" {
		t.Fatalf("running job: %+v", st)
	}
	pid := st.Processes[0].Pid

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitState("sleeper", jobstate.StateExit)
	st = p.waitState("sleeper", jobstate.StateRun)
	if st.Processes[0].Pid == pid || st.Restarts != 1 || st.LastExit != "signal 9 (SIGKILL)" {
		t.Fatalf("after SIGKILL: %+v", st)
	}

	if r := p.act("stop", "sleeper"); !r.OK {
		t.Fatalf("stop: %+v", r)
	}
	st = p.waitState("sleeper", jobstate.StateStopped)
	if len(st.Processes) != 0 {
		t.Fatalf("stopped job has processes: %+v", st)
	}
	if r := p.act("start", "sleeper"); !r.OK {
		t.Fatalf("start: %+v", r)
	}
	p.waitState("sleeper", jobstate.StateRun)

	// A manual job that exits at once: restarted at once, then backing off, then failed. (Its
	// start may report success: with no check nor notify, started is ready.)
	p.act("start", "crasher")
	st = p.waitState("crasher", jobstate.StateFailed)
	if !strings.Contains(st.Reason, "flapping") || st.LastExit != "exit 3" {
		t.Fatalf("failed job: %+v", st)
	}
}

// TestStatusNeverHalfMade: a job is in god status with its name and state from the moment it is
// defined, before its goroutine published anything (5000 jobs at once showed empty entries).
func TestStatusNeverHalfMade(t *testing.T) {
	p := startInProcess(t, t.TempDir())
	p.sup.call(func() {
		for i := range 500 {
			p.sup.addJob("/loaders/many", loader.Definition{Name: fmt.Sprintf("j%d", i), Instances: 1})
		}
	})
	jobs, err := p.sup.snapshot(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 500 {
		t.Fatalf("%d jobs in status, want 500", len(jobs))
	}
	for _, j := range jobs {
		if j.Name == "" || j.State == "" || j.Loader == "" {
			t.Fatalf("half-made status: %+v", j)
		}
	}
}

// TestJudgeSaysEachStepOnce: a job publishes its status more often than its state changes (each
// process started, each check); `god start` prints each step once.
func TestJudgeSaysEachStepOnce(t *testing.T) {
	s := &Supervisor{}
	g := &goal{name: "clock", oldPids: map[int]bool{}}
	var said []string
	emit := func(r control.Response) error { said = append(said, r.Message); return nil }
	st := control.JobStatus{Name: "clock", State: "start", Processes: []control.ProcessStatus{{Pid: 13618}}}
	s.judge(control.CmdStart, g, jobstate.StateStart, st, emit)
	s.judge(control.CmdStart, g, jobstate.StateStart, st, emit)
	st.State = "run"
	s.judge(control.CmdStart, g, jobstate.StateRun, st, emit)
	if want := []string{"start (pid 13618)", "run (pid 13618)"}; !reflect.DeepEqual(said, want) {
		t.Fatalf("said %q, want %q", said, want)
	}
}
