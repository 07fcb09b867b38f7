package jobstate

import (
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/loader"
)

// TestExtendTimeoutStart: a process that keeps sending EXTEND_TIMEOUT_USEC= while it starts is
// not killed by the start timeout, for as long as it keeps extending; once it stops, the last
// extension runs out and it is stopped; READY=1 in between would have made it run.
func TestExtendTimeoutStart(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Ready = loader.Ready{Mode: loader.ReadyNotify} }), testPolicy())
	st := DefaultPolicy.StartTimeout
	h.step(Start{})
	pid := h.onlyPid()
	h.take()
	for range 10 { // 10 × st/2: five start timeouts
		h.advance(st / 2)
		h.step(Notified{Pid: pid, ExtendTimeout: st})
	}
	if _, ok := find[AskStop](h.take()); ok {
		t.Fatal("stopped at the start timeout although it kept extending")
	}
	h.advance(st - time.Millisecond)
	if _, ok := find[AskStop](h.take()); ok {
		t.Fatal("stopped before its last extension ran out")
	}
	h.advance(time.Millisecond)
	if ask, ok := find[AskStop](h.take()); !ok || ask.Pid != pid {
		t.Fatal("not stopped when its last extension ran out")
	}
}

// TestExtendTimeoutNeverShortens: an extension shorter than the time left changes nothing, and
// one sent once ready starts no timeout.
func TestExtendTimeoutNeverShortens(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) { d.Ready = loader.Ready{Mode: loader.ReadyNotify} }), testPolicy())
	st := DefaultPolicy.StartTimeout
	h.step(Start{})
	pid := h.onlyPid()
	h.step(Notified{Pid: pid, ExtendTimeout: time.Second})
	h.advance(st - time.Millisecond)
	if _, ok := find[AskStop](h.take()); ok {
		t.Fatal("a short extension shortened the start timeout")
	}
	h.step(Notified{Pid: pid, Ready: true, ExtendTimeout: time.Second})
	h.wantState(StateRun)
	h.take()
	h.advance(time.Hour)
	if _, ok := find[AskStop](h.take()); ok {
		t.Fatal("an extension sent when ready started a timeout")
	}
}

// TestExtendTimeoutStop: a stopping process that extends is sent SIGKILL only when its extension
// runs out, not at the stop timeout.
func TestExtendTimeoutStop(t *testing.T) {
	h := newHarness(t, def(), testPolicy())
	h.step(Start{})
	pid := h.onlyPid()
	h.answerChecks("ok")
	h.step(Stop{})
	h.step(StopAnswered{Pid: pid, Spec: loader.Stop{Signal: syscall.SIGTERM, Timeout: 3 * time.Second}})
	h.take()
	h.advance(2 * time.Second)
	h.step(Notified{Pid: pid, Stopping: true, ExtendTimeout: 10 * time.Second})
	h.advance(9 * time.Second)
	if s := signals(h.take()); len(s) != 0 {
		t.Fatalf("signals within the extension: %v", s)
	}
	h.advance(time.Second)
	if s := signals(h.take()); len(s) != 1 || s[0].Sig != syscall.SIGKILL {
		t.Fatalf("signals when the extension ran out: %v, want SIGKILL", s)
	}
	h.exit(pid, 0, syscall.SIGKILL)
	h.wantState(StateStopped)
}

// TestExtendTimeoutReload: the new generation of an overlap reload that extends keeps the reload
// alive past its start timeout, and becomes the job once ready.
func TestExtendTimeoutReload(t *testing.T) {
	h := newHarness(t, def(func(d *loader.Definition) {
		d.Listen = []string{"http=tcp://127.0.0.1:80"}
		d.Ready = loader.Ready{Mode: loader.ReadyNotify}
	}), testPolicy())
	st := DefaultPolicy.StartTimeout
	h.step(Start{})
	old := h.onlyPid()
	h.step(Notified{Pid: old, Ready: true})
	h.step(ReloadAsked{ID: 1})
	h.step(Defined{Def: h.m.j.Def})
	var fresh int
	for _, p := range h.pids() {
		if p != old {
			fresh = p
		}
	}
	if fresh == 0 {
		t.Fatalf("no new generation: %v", h.pids())
	}
	for range 6 { // three start timeouts
		h.advance(st / 2)
		h.step(Notified{Pid: fresh, ExtendTimeout: st})
	}
	fxs := h.take()
	if d, ok := find[ReloadDone](fxs); ok {
		t.Fatalf("reload ended while the new generation kept extending: %+v", d)
	}
	h.step(Notified{Pid: fresh, Ready: true})
	fxs = h.take()
	if ask, ok := find[AskStop](fxs); !ok || ask.Pid != old {
		t.Fatalf("old generation not stopped once the new one was ready: %v", fxs)
	}
	h.exit(old, 0, syscall.SIGTERM)
	if d, ok := find[ReloadDone](h.take()); !ok || !d.OK {
		t.Fatalf("reload done %+v (found %v), want success", d, ok)
	}
}
