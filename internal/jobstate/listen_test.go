package jobstate

import (
	"errors"
	"testing"
	"time"

	"github.com/emielm/watchgod/loader"
)

// onDemand is a job of auto ["socket"] with one socket.
func onDemand(mut ...func(*loader.Definition)) loader.Definition {
	return def(append([]func(*loader.Definition){func(d *loader.Definition) {
		d.Auto = loader.Auto{Start: true, Socket: true}
		d.Listen = []string{"http=tcp:127.0.0.1:8080"}
	}}, mut...)...)
}

// watching reports the last WatchSockets in fxs: whether one was emitted, and whether it was On.
func watching(fxs []Effect) (emitted, on bool) {
	for _, fx := range fxs {
		if w, ok := fx.(WatchSockets); ok {
			emitted, on = true, w.On
		}
	}
	return emitted, on
}

// TestListenStartsOnConnection: an on-demand job waits in listen with its sockets watched and no
// process, however long; the first Readable starts it and ends the watch.
func TestListenStartsOnConnection(t *testing.T) {
	h := newHarness(t, onDemand(), testPolicy())
	h.take()
	h.step(Listen{})
	h.wantState(StateListen)
	fx := h.take()
	if emitted, on := watching(fx); !emitted || !on {
		t.Fatalf("listen: no WatchSockets{On: true}: %v", fx)
	}
	if hk := hooks(fx); len(hk) != 1 || hk[0] != "[onListen]" {
		t.Fatalf("hooks %v, want [onListen]", hk)
	}
	h.advance(time.Hour)
	if n := count[Spawn](h.take()); n != 0 || len(h.pids()) != 0 {
		t.Fatalf("listening job spawned %d processes without a connection", n)
	}
	h.step(Readable{})
	fx = h.take()
	if count[Spawn](fx) != 1 {
		t.Fatalf("Readable: no Spawn: %v", fx)
	}
	if emitted, on := watching(fx); !emitted || on {
		t.Fatalf("started: the watch is not ended: %v", fx)
	}
	h.wantState(StateStart)
	h.answerChecks("ok")
	h.wantState(StateRun)
	// A second Readable (a stale report) does nothing to a running job.
	h.step(Readable{})
	if n := count[Spawn](h.take()); n != 0 {
		t.Fatalf("Readable while running spawned %d", n)
	}
}

// TestListenSleepsAfterIdleExit: a process of an on-demand job that exits 0 by itself sends the
// job back to listen (no restart, no failure counted); the next connection starts a new
// generation. A failure is restarted as for any job.
func TestListenSleepsAfterIdleExit(t *testing.T) {
	h := newHarness(t, onDemand(), testPolicy())
	h.step(Listen{})
	for round := 1; round <= 3; round++ {
		h.step(Readable{})
		pid := h.onlyPid()
		if h.m.j.Generation != round {
			t.Fatalf("round %d: generation %d", round, h.m.j.Generation)
		}
		h.answerChecks("ok")
		h.wantState(StateRun)
		h.advance(30 * time.Second)
		h.take()
		h.exit(pid, 0, 0)
		h.wantState(StateListen)
		fx := h.take()
		if emitted, on := watching(fx); !emitted || !on {
			t.Fatalf("round %d: idle exit: sockets not watched again: %v", round, fx)
		}
		if count[Spawn](fx) != 0 || len(h.pids()) != 0 || h.m.j.Restarts != 0 {
			t.Fatalf("round %d: idle exit restarted the job: %v", round, fx)
		}
	}
	// A crash is no idle exit: restarted at once (first quick failure).
	h.step(Readable{})
	pid := h.onlyPid()
	h.exit(pid, 1, 0)
	h.wantState(StateStart)
	if h.onlyPid() == pid || h.m.j.Fails != 1 {
		t.Fatalf("crash: pids %v fails %d", h.pids(), h.m.j.Fails)
	}
	// An exit 0 before it was ready is no one-shot's end either: it sleeps too.
	h.exit(h.onlyPid(), 0, 0)
	h.wantState(StateListen)
	if h.m.j.Fails != 0 {
		t.Fatalf("fails %d after an exit 0, want 0", h.m.j.Fails)
	}
}

// TestListenStopAndStart: god stop ends the wait (stopped, watch off, a late Readable ignored);
// god start starts at once, from listen too.
func TestListenStopAndStart(t *testing.T) {
	h := newHarness(t, onDemand(), testPolicy())
	h.step(Listen{})
	h.take()
	h.step(Stop{})
	h.wantState(StateStopped)
	if emitted, on := watching(h.take()); !emitted || on {
		t.Fatal("stop: the watch is not ended")
	}
	h.step(Readable{})
	h.wantState(StateStopped)
	if len(h.pids()) != 0 {
		t.Fatalf("a stopped job started on a connection: %v", h.pids())
	}
	h.step(Listen{}) // only wait and failed listen again: a stopped job stays stopped
	h.wantState(StateStopped)
	h.step(Start{})
	h.wantState(StateStart)
	h.answerChecks("ok")
	h.exit(h.onlyPid(), 0, 0)
	h.wantState(StateListen) // started by hand, it still sleeps when idle

	h.step(Start{})
	h.wantState(StateStart)
	if len(h.pids()) != 1 {
		t.Fatalf("god start from listen: processes %v", h.pids())
	}
	h.step(Restart{})
	h.wantState(StateStop)
}

// TestListenCannotStart: a connection that cannot start the job backs off, then fails like
// any start; a failed job the loader redefines listens again.
func TestListenCannotStart(t *testing.T) {
	h := newHarness(t, onDemand(), testPolicy())
	h.step(Listen{})
	h.spawnErr = errors.New("no such file")
	h.step(Readable{})
	h.wantState(StateBackoff)
	h.advance(time.Hour)
	h.wantState(StateFailed)
	h.spawnErr = nil
	h.step(Listen{})
	h.wantState(StateListen)
	if h.m.j.Fails != 0 {
		t.Fatalf("fails %d", h.m.j.Fails)
	}
}

// TestListenSurvivesRestore: a listening job carried across god's re-exec watches its sockets
// again at once, and its next connection starts it; a new definition watches again.
func TestListenSurvivesRestore(t *testing.T) {
	h := newHarness(t, onDemand(), testPolicy())
	h.step(Listen{})
	snap := h.m.Snapshot()

	r := &harness{t: t, now: t0.Add(time.Minute), nextPid: 500, alive: map[int]bool{}}
	r.m = Restore(snap, testPolicy(), r.now)
	r.m.Strict = true
	r.run(r.m.Begin(r.now))
	r.wantState(StateListen)
	fx := r.take()
	if emitted, on := watching(fx); !emitted || !on {
		t.Fatalf("restored: no WatchSockets{On: true}: %v", fx)
	}
	if n := len(hooks(fx)); n != 0 {
		t.Fatalf("restored: %d hooks sent again", n)
	}
	r.step(Define{Def: onDemand(func(d *loader.Definition) { d.Listen = []string{"http=tcp:127.0.0.1:8081"} })})
	if emitted, on := watching(r.take()); !emitted || !on {
		t.Fatal("new definition: sockets not watched again")
	}
	r.step(Readable{})
	r.wantState(StateStart)
	if len(r.pids()) != 1 {
		t.Fatalf("restored job did not start on a connection: %v", r.pids())
	}
}
