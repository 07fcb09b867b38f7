package jobstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/loader"
)

func def(mut ...func(*loader.Definition)) loader.Definition {
	d := loader.Definition{Name: "web", Exec: []string{"/bin/web"}, Instances: 1}
	for _, f := range mut {
		f(&d)
	}
	return d
}

func dur(d time.Duration) *time.Duration { return &d }

// TestReadiness: each ready mode makes a started process ready, and only its own signal does.
func TestReadiness(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ready loader.Ready
		// make does what makes the process ready in this mode; notReady must not.
		notReady, make func(h *harness, pid int)
	}{
		{"check", loader.Ready{Mode: loader.ReadyCheck},
			func(h *harness, pid int) { h.step(Notified{Pid: pid, Ready: true}) },
			func(h *harness, pid int) { h.answerChecks("ok") }},
		{"default, no check", loader.Ready{},
			func(h *harness, pid int) { h.answerChecks("degrade") },
			func(h *harness, pid int) { h.advance(time.Second); h.answerChecks() }},
		{"notify", loader.Ready{Mode: loader.ReadyNotify},
			func(h *harness, pid int) { h.answerChecks("ok") },
			func(h *harness, pid int) { h.step(Notified{Pid: pid, Ready: true}) }},
		{"delay", loader.Ready{Mode: loader.ReadyDelay, Delay: 4 * time.Second},
			func(h *harness, pid int) { h.advance(3 * time.Second); h.answerChecks("ok") },
			func(h *harness, pid int) { h.advance(time.Second) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, def(func(d *loader.Definition) { d.Ready = tc.ready }), testPolicy())
			h.step(Start{})
			h.wantState(StateStart)
			pid := h.onlyPid()
			tc.notReady(h, pid)
			h.wantState(StateStart)
			tc.make(h, pid)
			h.wantState(StateRun)
		})
	}
}

// TestReadyAtExit: a one-shot (ready: exit) has no start timeout, however long its task takes;
// a check's ok does not make it ready; a clean exit makes it done, a failed one restarts it.
func TestReadyAtExit(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Ready = loader.Ready{Mode: loader.ReadyExit} }), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.advance(2 * time.Hour)
	h.answerChecks("ok")
	h.wantState(StateStart)
	if len(h.pids()) != 1 || h.onlyPid() != pid {
		t.Fatalf("processes %v, want pid %d untouched", h.pids(), pid)
	}
	h.exit(pid, 1, 0)
	h.wantState(StateStart) // a failed task is restarted at once (first quick failure)
	again := h.onlyPid()
	h.exit(again, 0, 0)
	h.wantState(StateDone)
}

// TestChecks: degrade and ok move between run and degrade; fail stops the process by its stop
// semantics and its exit counts as a failure.
func TestChecks(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.answerChecks("ok", "200")
	h.wantState(StateRun)
	h.advance(200 * time.Millisecond)
	if n := h.answerChecks("degrade"); n != 1 {
		t.Fatalf("%d checks asked 200 ms later, want 1", n)
	}
	h.wantState(StateDegrade)
	h.advance(time.Second)
	h.answerChecks("ok")
	h.wantState(StateRun)
	h.advance(time.Second)
	h.answerChecks("fail")
	fx := h.take()
	if ask, ok := find[AskStop](fx); !ok || ask.Pid != pid {
		t.Fatalf("check fail: no stop asked for pid %d: %v", pid, fx)
	}
	h.step(StopAnswered{Pid: pid, Spec: loader.DefaultStop})
	if s := signals(h.take()); len(s) != 1 || s[0] != (SignalGroup{Pgid: pid, Sig: syscall.SIGTERM}) {
		t.Fatalf("signals %v, want SIGTERM to group %d", s, pid)
	}
	h.exit(pid, 0, syscall.SIGTERM)
	// It served for more than min-uptime: restarted at once, like a crash of a serving process.
	if len(h.pids()) != 1 || h.onlyPid() == pid || h.m.j.Restarts != 1 {
		t.Fatalf("not restarted: %v", h.pids())
	}
	// A check that fails before the process is ready is a quick failure.
	pid = h.onlyPid()
	h.answerChecks("fail")
	h.step(StopAnswered{Pid: pid, Spec: loader.DefaultStop})
	h.exit(pid, 0, syscall.SIGTERM)
	if h.m.j.Fails != 1 {
		t.Fatalf("fails %d, want 1", h.m.j.Fails)
	}
}

// TestServingProcessRestartsAtOnce is the availability rule: a ready process that ran for
// min-uptime restarts in the same step as its death, however often, and is never failed.
func TestServingProcessRestartsAtOnce(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	h.answerChecks("ok")
	h.wantState(StateRun)
	for i := range 12 {
		h.advance(1500 * time.Millisecond)
		h.take()
		pid := h.onlyPid()
		h.exit(pid, 0, syscall.SIGKILL)
		fx := h.take()
		if count[Spawn](fx) != 1 {
			t.Fatalf("kill %d: no restart in the same step: %v", i+1, fx)
		}
		h.answerChecks("ok")
		h.wantState(StateRun)
	}
	if h.m.j.Fails != 0 || h.m.j.Restarts != 12 {
		t.Fatalf("fails %d restarts %d, want 0 and 12", h.m.j.Fails, h.m.j.Restarts)
	}
}

// TestQuickFailuresBackOffThenCoolDown: a process that exits at once backs off exponentially,
// is failed after restart-limit quick failures, says when it tries again, and does.
func TestQuickFailuresBackOffThenCoolDown(t *testing.T) {
	limit := 4
	h := newHarness(t, def(func(d *loader.Definition) {
		d.Rules = loader.RestartRules{Limit: &limit, Delay: dur(100 * time.Millisecond), DelayMax: dur(time.Second), CoolDown: dur(time.Minute)}
	}), testPolicy())
	h.step(Start{})
	var delays []time.Duration
	for range limit + 1 {
		pid := h.onlyPid()
		h.exit(pid, 1, 0)
		if h.state() == StateFailed {
			break
		}
		before := h.now
		for len(h.pids()) == 0 {
			h.advance(10 * time.Millisecond)
		}
		delays = append(delays, h.now.Sub(before).Round(10*time.Millisecond))
	}
	want := []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}
	if !reflect.DeepEqual(delays, want) {
		t.Fatalf("delays %v, want %v", delays, want)
	}
	h.wantState(StateFailed)
	st := h.m.Status(nil)
	if !st.Next.Equal(h.now.Add(time.Minute)) {
		t.Fatalf("status next %v, want the cool-down's end %v", st.Next, h.now.Add(time.Minute))
	}
	h.take()
	h.advance(time.Minute)
	h.wantState(StateStart)
	if h.m.j.Fails != 0 {
		t.Fatalf("fails %d after the cool-down, want 0", h.m.j.Fails)
	}
}

// TestBackoffStatusSaysWhen: during a back-off, status says when the restart is due.
func TestBackoffStatusSaysWhen(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	h.exit(h.onlyPid(), 1, 0) // first quick failure: at once
	h.exit(h.onlyPid(), 1, 0)
	h.wantState(StateBackoff)
	if st := h.m.Status(nil); !st.Next.Equal(h.now.Add(100 * time.Millisecond)) {
		t.Fatalf("next %v, want %v", st.Next, h.now.Add(100*time.Millisecond))
	}
}

// TestExitStatusRules: restart-prevent-exit-status stops restarts; success-exit-status counts as
// success for on-failure.
func TestExitStatusRules(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Rules.PreventExit = []int{3} }), testPolicy())
	h.step(Start{})
	h.exit(h.onlyPid(), 3, 0)
	h.wantState(StateFailed)
	if !h.m.j.RetryAt.IsZero() {
		t.Fatal("a prevented restart must not retry after a cool-down")
	}
	h = newHarness(t, def(func(d *loader.Definition) {
		d.Restart = loader.RestartOnFailure
		d.Rules.SuccessExit = []int{75, 256 + int(syscall.SIGTERM)}
	}), testPolicy())
	h.step(Start{})
	h.answerChecks("ok")
	h.exit(h.onlyPid(), 0, syscall.SIGTERM)
	h.wantState(StateDone)
}

// TestStopEscalatesToKill: a process that ignores its stop signal gets SIGKILL at the timeout.
func TestStopEscalatesToKill(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.answerChecks("ok")
	h.step(Stop{})
	h.wantState(StateStop)
	h.step(StopAnswered{Pid: pid, Spec: loader.Stop{Signal: syscall.SIGINT, Timeout: 3 * time.Second}})
	h.take()
	h.advance(2900 * time.Millisecond)
	if s := signals(h.take()); len(s) != 0 {
		t.Fatalf("signals before the timeout: %v", s)
	}
	h.advance(100 * time.Millisecond)
	if s := signals(h.take()); len(s) != 1 || s[0].Sig != syscall.SIGKILL {
		t.Fatalf("signals at the timeout %v, want SIGKILL", s)
	}
	h.exit(pid, 0, syscall.SIGKILL)
	h.wantState(StateStopped)
}

// TestLingeringGroupIsEnded: what a leader leaves in its group gets SIGTERM, then SIGKILL, and a
// stop waits for it.
func TestLingeringGroupIsEnded(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.answerChecks("ok")
	h.step(Stop{})
	h.step(StopAnswered{Pid: pid, Spec: loader.DefaultStop})
	h.alive[pid] = true
	h.exit(pid, 0, syscall.SIGTERM)
	h.wantState(StateStop) // the group is still there
	h.take()
	h.advance(DefaultPolicy.LingerTimeout)
	if s := signals(h.take()); len(s) != 1 || s[0] != (SignalGroup{Pgid: pid, Sig: syscall.SIGKILL}) {
		t.Fatalf("signals %v, want SIGKILL to group %d", s, pid)
	}
	h.step(GroupGone{Pgid: pid})
	h.wantState(StateStopped)
}

// TestWatchdogArmedWhenReady: a notify job whose watchdog is shorter than its start-up is not
// killed while it starts, and is held to its pings once ready.
func TestWatchdogArmedWhenReady(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) {
		d.Ready = loader.Ready{Mode: loader.ReadyNotify}
		d.Watchdog = 300 * time.Millisecond
	}), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.advance(time.Second)
	if _, ok := find[AskStop](h.take()); ok {
		t.Fatal("watchdog fired during start-up")
	}
	h.step(Notified{Pid: pid, Ready: true})
	h.wantState(StateRun)
	for range 5 {
		h.advance(200 * time.Millisecond)
		h.step(Notified{Pid: pid, Watchdog: true})
	}
	if _, ok := find[AskStop](h.take()); ok {
		t.Fatal("watchdog fired although pinged")
	}
	h.advance(300 * time.Millisecond)
	if ask, ok := find[AskStop](h.take()); !ok || ask.Pid != pid {
		t.Fatal("watchdog did not fire 300 ms after the last ping")
	}
}

// TestStartTimeout: a process not ready in time is stopped as failed.
func TestStartTimeout(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Ready = loader.Ready{Mode: loader.ReadyNotify} }), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.take()
	h.advance(DefaultPolicy.StartTimeout)
	if ask, ok := find[AskStop](h.take()); !ok || ask.Pid != pid {
		t.Fatal("no stop at the start timeout")
	}
}

// TestCannotStart: a spawn that fails backs off like a quick failure, then fails the job.
func TestCannotStart(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.spawnErr = errors.New("exec: no such file")
	h.step(Start{})
	h.wantState(StateBackoff)
	h.advance(time.Hour)
	h.wantState(StateFailed)
}

// TestCannotStartNoFDs: a spawn that fails for want of fds (EMFILE) is not the job's failure:
// a job waiting to start waits on, with the reason, however long it lasts (no back-off, never
// failed, no restart counted, nothing logged above debug), tries again every FDRetry, and starts
// once a try succeeds. A running job's restart that lacks fds waits in backoff the same way.
func TestCannotStartNoFDs(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.spawnErr = fmt.Errorf("stdout pipe: %w", syscall.EMFILE)
	h.take()
	h.step(Start{})
	h.wantState(StateWait)
	if h.m.j.Reason != ReasonNoFDs || h.m.j.Fails != 0 {
		t.Fatalf("reason %q, fails %d; want %q, 0", h.m.j.Reason, h.m.j.Fails, ReasonNoFDs)
	}
	h.advance(time.Hour)
	h.wantState(StateWait)
	fx := h.take()
	if n := count[Spawn](fx); n < 3000 || n > 3700 {
		t.Errorf("%d tries in an hour, want one every %s", n, FDRetry)
	}
	for _, f := range fx {
		if l, ok := f.(Log); ok && l.Level > slog.LevelDebug {
			t.Errorf("logged %q at %s: the supervisor says a shortage once", l.Msg, l.Level)
		}
	}
	if hs := hooks(fx); len(hs) > 0 {
		t.Errorf("hooks %v while waiting for fds", hs)
	}
	h.spawnErr = nil
	h.advance(FDRetry)
	h.answerChecks("ok")
	h.wantState(StateRun)
	if h.m.j.Restarts != 0 {
		t.Errorf("%d restarts counted", h.m.j.Restarts)
	}

	// A restart that lacks fds waits in backoff, and is not counted as a failure either.
	h.spawnErr = syscall.ENFILE
	h.exit(h.onlyPid(), 0, syscall.SIGKILL)
	h.advance(time.Minute)
	h.wantState(StateBackoff)
	if h.m.j.Reason != ReasonNoFDs || h.m.j.Fails > 1 {
		t.Fatalf("reason %q, fails %d after a minute without fds", h.m.j.Reason, h.m.j.Fails)
	}
	h.spawnErr = nil
	h.advance(FDRetry)
	h.answerChecks("ok")
	h.wantState(StateRun)

	// god stop ends the wait.
	h.spawnErr = syscall.EMFILE
	pid := h.onlyPid()
	h.step(Stop{})
	h.exit(pid, 0, syscall.SIGTERM)
	h.wantState(StateStopped)
	h.step(Start{})
	h.wantState(StateBackoff)
	h.step(Stop{})
	h.wantState(StateStopped)
	h.take()
	h.advance(time.Minute)
	if n := count[Spawn](h.take()); n > 0 {
		t.Errorf("%d tries after god stop", n)
	}
}

// TestFDsFreedWakesTheWait: a job waiting for fds tries again as soon as god says fds came free,
// not at its next FDRetry; a job backing off for a failure of its own is not hurried by it.
func TestFDsFreedWakesTheWait(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.spawnErr = syscall.EMFILE
	h.take()
	h.step(Start{})
	h.wantState(StateWait)
	h.take()
	h.spawnErr = nil
	h.step(FDsFreed{})
	if n := count[Spawn](h.take()); n != 1 {
		t.Fatalf("%d tries when fds came free, want 1 at once", n)
	}
	h.answerChecks("ok")
	h.wantState(StateRun)

	// A process that keeps exiting at once backs off for its own failures (the first restart
	// is at once): FDsFreed leaves it waiting.
	h.exit(h.onlyPid(), 1, 0)
	h.exit(h.onlyPid(), 1, 0)
	h.wantState(StateBackoff)
	if h.m.j.Reason == ReasonNoFDs {
		t.Fatalf("reason %q after exits 1", h.m.j.Reason)
	}
	h.take()
	h.step(FDsFreed{})
	if n := count[Spawn](h.take()); n != 0 {
		t.Errorf("%d tries on FDsFreed during a back-off for a failure", n)
	}
}

// TestReloadOverlap: the new generation starts beside the old one, takes over when ready, and
// the old one is stopped.
func TestReloadOverlap(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Listen = []string{"http=tcp://127.0.0.1:80"} }), testPolicy())
	h.step(Start{})
	old := h.onlyPid()
	h.answerChecks("ok")
	h.step(ReloadAsked{ID: 1})
	if _, ok := find[AskDefine](h.take()); !ok {
		t.Fatal("no definition asked")
	}
	h.step(Defined{Def: h.m.j.Def})
	if len(h.pids()) != 2 {
		t.Fatalf("processes %v, want two generations", h.pids())
	}
	h.wantState(StateRun)
	h.answerChecks("ok")
	fx := h.take()
	if ask, ok := find[AskStop](fx); !ok || ask.Pid != old {
		t.Fatalf("old generation not stopped: %v", fx)
	}
	h.exit(old, 0, syscall.SIGTERM)
	fx = h.take()
	done, ok := find[ReloadDone](fx)
	if !ok || !done.OK || done.ID != 1 {
		t.Fatalf("reload not done: %v", fx)
	}
	h.wantState(StateRun)
	if h.m.j.Generation != 2 {
		t.Fatalf("generation %d, want 2", h.m.j.Generation)
	}
}

// TestReloadRollback: a new generation that dies before it is ready is rolled back; the old
// one serves on untouched.
func TestReloadRollback(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Listen = []string{"http=tcp://127.0.0.1:80"} }), testPolicy())
	h.step(Start{})
	old := h.onlyPid()
	h.answerChecks("ok")
	h.step(ReloadAsked{ID: 7})
	h.step(Defined{Def: h.m.j.Def})
	newPid := h.pids()[1]
	h.take()
	h.exit(newPid, 1, 0)
	fx := h.take()
	done, ok := find[ReloadDone](fx)
	if !ok || done.OK || done.ID != 7 || len(done.NewPids) != 1 {
		t.Fatalf("no failed reload: %v", fx)
	}
	if _, ok := find[AskStop](fx); ok {
		t.Fatal("the serving generation was stopped")
	}
	h.wantState(StateRun)
	if h.onlyPid() != old || h.m.j.Generation != 1 {
		t.Fatalf("serving %v gen %d, want pid %d gen 1", h.pids(), h.m.j.Generation, old)
	}
}

// TestReloadInterruptedByStop: `god stop` during a reload ends it as interrupted, and says no
// generation serves on (none does: the job is stopping).
func TestReloadInterruptedByStop(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Listen = []string{"http=tcp://127.0.0.1:80"} }), testPolicy())
	h.step(Start{})
	h.answerChecks("ok")
	h.step(ReloadAsked{ID: 3})
	h.step(Defined{Def: h.m.j.Def})
	h.take()
	h.step(Stop{})
	fx := h.take()
	done, ok := find[ReloadDone](fx)
	if !ok || done.OK || done.ID != 3 {
		t.Fatalf("reload not ended: %v", fx)
	}
	if strings.Contains(done.Msg, "serves on") || !strings.Contains(done.Msg, "interrupted") || !strings.Contains(done.Msg, "stopped on request") {
		t.Errorf("message %q, want an interrupted reload and no generation serving on", done.Msg)
	}
	h.wantState(StateStop)
}

// TestMainPidHandOver: a clean exit that leaves its group is held back until the successor
// names itself with MAINPID=; the successor is the job then.
func TestMainPidHandOver(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Ready = loader.Ready{Mode: loader.ReadyNotify} }), testPolicy())
	h.step(Start{})
	old := h.onlyPid()
	h.step(Notified{Pid: old, Ready: true})
	h.wantState(StateRun)
	h.alive[old] = true
	h.exit(old, 0, 0)
	h.wantState(StateRun) // held back
	h.step(Notified{Pid: 555, SenderPgid: old, MainPid: 555, Ready: true})
	if h.onlyPid() != 555 {
		t.Fatalf("processes %v, want the successor 555", h.pids())
	}
	h.wantState(StateRun)
	if h.m.j.Restarts != 0 {
		t.Fatal("a hand-over is no restart")
	}
}

// TestRemove: a removed job is stopped, then the machine says Removed.
func TestRemove(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.step(Remove{})
	h.step(StopAnswered{Pid: pid, Spec: loader.DefaultStop})
	h.take()
	h.exit(pid, 0, syscall.SIGTERM)
	if _, ok := find[Removed](h.take()); !ok {
		t.Fatal("not removed")
	}
}

// TestUpgradeRoundTrip: a job carried across god's re-exec is the same job, and every deadline
// fires at the same time as it would have without the upgrade.
func TestUpgradeRoundTrip(t *testing.T) {
	d := def(func(d *loader.Definition) {
		d.Instances = 3
		d.Ready = loader.Ready{Mode: loader.ReadyDelay, Delay: 4 * time.Second}
		d.Watchdog = 2 * time.Second
	})
	h := newHarness(t, d, testPolicy())
	h.step(Start{})
	pids := h.pids()
	h.advance(4 * time.Second) // all ready
	h.answerChecks("ok", "200")
	h.step(Stop{}) // stopping: stop deadlines
	h.step(StopAnswered{Pid: pids[0], Spec: loader.Stop{Signal: syscall.SIGTERM, Timeout: 7 * time.Second}})
	h.advance(time.Second)
	h.answerChecks("ok", "200") // none in flight: the new image would ask those again at once

	before := h.m.Snapshot()
	data, err := json.Marshal(before)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Job
	if err := json.Unmarshal(data, &decoded); err != nil {
		t.Fatal(err)
	}
	m := Restore(decoded, testPolicy(), h.now)
	if after := m.Snapshot(); !reflect.DeepEqual(after, before) {
		t.Fatalf("round trip changed the job:\n before %+v\n after  %+v", before, after)
	}
	if !m.Next().Equal(h.m.Next()) {
		t.Fatalf("restored next deadline %v, want %v", m.Next(), h.m.Next())
	}
}

// TestRestoredDelayBecomesReady: a ready: delay process in its delay when god upgrades becomes
// ready on the same pid when the delay ends, and checks go on at their rate.
func TestRestoredDelayBecomesReady(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Ready = loader.Ready{Mode: loader.ReadyDelay, Delay: 4 * time.Second} }), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.answerChecks("ok", "200")
	h.advance(time.Second)
	h.answerChecks("ok", "200")

	data, _ := json.Marshal(h.m.Snapshot())
	var j Job
	_ = json.Unmarshal(data, &j)
	h.m = Restore(j, testPolicy(), h.now)
	h.m.Strict = true
	h.take()
	h.run(h.m.Begin(h.now))
	if h.armed.IsZero() {
		t.Fatal("a restored job has no deadline armed")
	}
	checks := 0
	for range 15 {
		h.advance(200 * time.Millisecond)
		checks += h.answerChecks("ok", "200")
	}
	h.wantState(StateRun)
	if h.onlyPid() != pid {
		t.Fatalf("pid %d, want %d", h.onlyPid(), pid)
	}
	if checks < 14 {
		t.Fatalf("%d checks in 3 s at 200 ms after the upgrade, want 15", checks)
	}
}

// TestOldStateStillReads: a state written by the god before jobstate (no deadlines) restores
// with a check at once and a start timeout.
func TestOldStateStillReads(t *testing.T) {
	old := `{"name":"web","loader":"/l/web","def":{"Name":"web","Exec":["/bin/web"]},"state":"start","since":"2026-12-02T12:00:00Z",
	"generation":1,"gen_counter":1,"restarts":0,"fails":0,"after":0,"respawn_at":"0001-01-01T00:00:00Z",
	"procs":[{"pid":42,"pgid":42,"gen":1,"instance":0,"started":"2026-12-02T12:00:00Z","kill_at":"0001-01-01T00:00:00Z"}],
	"lingering":[{"pgid":41,"kill_at":"2026-12-02T12:00:03Z"}]}`
	var j Job
	if err := json.Unmarshal([]byte(old), &j); err != nil {
		t.Fatal(err)
	}
	m := Restore(j, testPolicy(), t0)
	fx := m.Begin(t0)
	if a, ok := find[Arm](fx); !ok || !a.At.Equal(t0) {
		t.Fatalf("arm %v, want a check at once", fx)
	}
	if w, ok := find[WatchGroup](fx); !ok || w.Pgid != 41 {
		t.Fatalf("lingering group not watched: %v", fx)
	}
	if p := m.proc(42); p == nil || !p.StartBy.Equal(t0.Add(DefaultPolicy.StartTimeout)) {
		t.Fatal("no start timeout for a restored process that is not ready")
	}
}

// TestHooks: a job tells its loader each state it enters, onStart once per process.
func TestHooks(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Instances = 2 }), testPolicy())
	got := hooks(h.take())
	h.step(Start{})
	got = append(got, hooks(h.log)...)
	want := []string{"[onWait]", "[onStart 101]", "[onStart 102]"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("hooks %v, want %v", got, want)
	}
}

// TestReloadTakesOverDuringBackoff: the serving generation dies quickly during an overlap reload
// (the job backs off), then the new generation is ready: it takes over and the job runs (the
// chaos soak found this move missing from the table).
func TestReloadTakesOverDuringBackoff(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Listen = []string{"http=tcp://127.0.0.1:80"} }), testPolicy())
	h.step(Start{})
	old := h.onlyPid()
	h.answerChecks("ok")
	h.exit(old, 0, syscall.SIGKILL) // a quick failure of a process that was not up min-uptime
	old = h.onlyPid()
	h.answerChecks("ok")
	h.step(ReloadAsked{ID: 1})
	h.step(Defined{Def: h.m.j.Def})
	h.take()
	h.exit(old, 0, syscall.SIGKILL)
	h.wantState(StateBackoff)
	h.answerChecks("ok") // the new generation's first check
	h.wantState(StateRun)
	if done, ok := find[ReloadDone](h.take()); !ok || !done.OK {
		t.Fatal("reload not done")
	}
}

// TestStopWaitsForLingeringGroup: a job backing off while the group its last process left (a
// daemon) is being ended is stopped only once that group is gone (the soak found `god stop`
// returning with the daemon alive).
func TestStopWaitsForLingeringGroup(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	h.exit(h.onlyPid(), 1, 0) // first quick failure: restarted at once
	pid := h.onlyPid()
	h.alive[pid] = true // it leaves a daemon
	h.exit(pid, 1, 0)
	h.wantState(StateBackoff)
	h.step(Stop{})
	h.wantState(StateStop)
	h.step(GroupGone{Pgid: pid})
	h.wantState(StateStopped)
}

// TestSignalReloadWithoutNotifyThenMainPid: a signal reload of a job that does not say READY=1
// (a stock tableflip program followed through its pid file) ends at the signal; the successor it
// names afterwards is the job's current generation, so that the job stays run with it alone and
// the next reload's signal reaches it.
func TestSignalReloadWithoutNotifyThenMainPid(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) {
		d.Reload = loader.Reload{Mode: loader.ReloadSignal, Signal: syscall.SIGHUP}
	}), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.answerChecks() // no check: ready at once
	h.wantState(StateRun)
	pgid := pid
	for k, next := range []int{555, 556} {
		h.step(ReloadAsked{ID: k + 1})
		h.step(Defined{Def: h.m.j.Def})
		fxs := h.take()
		if s, ok := find[SignalProc](fxs); !ok || s.Pid != pid {
			t.Fatalf("reload %d: signal %+v (found %v), want SIGHUP to %d", k+1, s, ok, pid)
		}
		h.alive[pgid] = true
		h.step(Notified{Pid: next, SenderPgid: pgid, MainPid: next})
		h.exit(pid, 0, 0)
		if h.onlyPid() != next {
			t.Fatalf("reload %d: processes %v, want the successor %d", k+1, h.pids(), next)
		}
		if p := h.m.proc(next); p.Generation != h.m.j.Generation || !p.Ready {
			t.Fatalf("reload %d: successor generation %d ready %v, job generation %d", k+1, p.Generation, p.Ready, h.m.j.Generation)
		}
		h.wantState(StateRun)
		if _, ok := find[Publish](h.take()); !ok {
			t.Fatalf("reload %d: the hand-over's end was not published", k+1)
		}
		pid = next
	}
}
