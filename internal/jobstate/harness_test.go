package jobstate

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/loader"
)

// harness runs a Machine the way the supervisor's actor does, on a fake clock: effects whose
// outcome the machine waits for are answered at once (a Spawn gets the next pid), and the rest
// are recorded for the test to look at.
type harness struct {
	t       testing.TB
	m       *Machine
	now     time.Time
	armed   time.Time
	nextPid int
	// alive are process groups that outlive their leader (WatchGroup waits for them).
	alive map[int]bool
	// spawnErr, when set, fails every Spawn.
	spawnErr error
	log      []Effect // every effect since the last take
}

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func newHarness(t testing.TB, def loader.Definition, policy Policy) *harness {
	t.Helper()
	if def.Name == "" {
		def.Name = "web"
	}
	h := &harness{t: t, now: t0, nextPid: 100, alive: map[int]bool{}}
	h.m = New(def.Name, "/loaders/"+def.Name, def, policy, h.now)
	h.m.Strict = true
	h.run(h.m.Begin(h.now))
	return h
}

func testPolicy() Policy {
	p := DefaultPolicy
	return p
}

// run applies effects as the actor does.
func (h *harness) run(fxs []Effect) {
	var queue []Event
	for {
		for _, fx := range fxs {
			h.log = append(h.log, fx)
			switch fx := fx.(type) {
			case Spawn:
				if h.spawnErr != nil {
					queue = append(queue, SpawnFailed{Gen: fx.Gen, Instance: fx.Instance, Err: h.spawnErr})
					continue
				}
				h.nextPid++
				queue = append(queue, Spawned{Gen: fx.Gen, Instance: fx.Instance, Pid: h.nextPid})
			case Adopt:
				queue = append(queue, Adopted{Pid: fx.Pid})
			case WatchGroup:
				if !h.alive[fx.Pgid] {
					queue = append(queue, GroupGone{Pgid: fx.Pgid})
				}
			case SyncSockets:
				if fx.Report {
					queue = append(queue, SocketsSynced{})
				}
			case Arm:
				h.armed = fx.At
			}
		}
		if len(queue) == 0 {
			return
		}
		ev := queue[0]
		queue = queue[1:]
		fxs = h.m.Step(h.now, ev)
	}
}

// step delivers an event now.
func (h *harness) step(ev Event) { h.t.Helper(); h.run(h.m.Step(h.now, ev)) }

// advance moves the clock by d, firing every deadline on the way at its time.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	end := h.now.Add(d)
	for !h.armed.IsZero() && !h.armed.After(end) {
		h.now = h.armed
		h.armed = time.Time{}
		h.step(Tick{})
	}
	h.now = end
}

// take returns the effects since the last take.
func (h *harness) take() []Effect {
	l := h.log
	h.log = nil
	return l
}

func (h *harness) state() State { return h.m.State() }

func (h *harness) wantState(want State) {
	h.t.Helper()
	if got := h.state(); got != want {
		h.t.Fatalf("state %s (%s), want %s", got, h.m.j.Reason, want)
	}
}

// pids lists the job's processes that are not being stopped.
func (h *harness) pids() []int {
	var out []int
	for _, p := range h.m.j.Procs {
		if !p.Stopping {
			out = append(out, p.Pid)
		}
	}
	return out
}

func (h *harness) onlyPid() int {
	h.t.Helper()
	p := h.pids()
	if len(p) != 1 {
		h.t.Fatalf("processes %v, want one", p)
	}
	return p[0]
}

// answerChecks replies to every check asked since the last take with reply.
func (h *harness) answerChecks(reply ...string) int {
	h.advance(0) // a check due now is asked first
	n := 0
	for _, fx := range h.take() {
		if a, ok := fx.(AskCheck); ok {
			h.step(Checked{Pid: a.Pid, Seq: a.Seq, Reply: loader.Message(reply)})
			n++
		}
	}
	return n
}

// exit ends pid with an exit code (sig > 0: killed by sig).
func (h *harness) exit(pid, code int, sig syscall.Signal) {
	h.t.Helper()
	h.step(Exited{Exit: Exit{Pid: pid, Status: ExitStatus(code, sig), Time: h.now}, GroupAlive: h.alive[pid]})
}

func count[T Effect](fxs []Effect) int {
	n := 0
	for _, fx := range fxs {
		if _, ok := fx.(T); ok {
			n++
		}
	}
	return n
}

func find[T Effect](fxs []Effect) (T, bool) {
	for _, fx := range fxs {
		if v, ok := fx.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func hooks(fxs []Effect) []string {
	var out []string
	for _, fx := range fxs {
		if hk, ok := fx.(Hook); ok {
			out = append(out, fmt.Sprint(hk.Args))
		}
	}
	return out
}

func signals(fxs []Effect) []SignalGroup {
	var out []SignalGroup
	for _, fx := range fxs {
		if s, ok := fx.(SignalGroup); ok {
			out = append(out, s)
		}
	}
	return out
}

var _ = slices.Contains[[]int]
