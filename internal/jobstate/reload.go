package jobstate

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// A reload replaces the code a job runs without a moment in which its sockets have no process
// behind them. The machine asks for the job's definition again ([AskDefine]), then, by the job's
// `reload` mode:
//
//   - overlap: starts generation N+1 beside N on the same sockets; once every new process is
//     ready, stops generation N by its stop semantics (it drains). A new process that exits, fails
//     its check or is not ready within the start timeout rolls the reload back: generation N+1 is
//     stopped and N serves on, untouched.
//   - restart: stops the job, then starts it with the new definition (for jobs that cannot run
//     twice). Connections wait in the socket's queue meanwhile; there is nothing to roll back to.
//   - signal: sends the signal; the job reloads itself (tableflip). With `ready: notify` the
//     reload is done at READY=1 after the signal, from the job or from the successor it names
//     with MAINPID=.

type reloadPhase string

const (
	phaseDefine  reloadPhase = "define"  // asking the loader for the definition
	phaseSockets reloadPhase = "sockets" // opening the sockets of the new definition
	phaseStart   reloadPhase = "start"   // overlap: the new generation starts, the old one serves
	phaseDrain   reloadPhase = "drain"   // overlap: the new generation serves, the old one stops
	phaseRestart reloadPhase = "restart" // restart mode
	phaseSignal  reloadPhase = "signal"  // signal mode: waiting for the job to say it is ready
)

// reloadOp is the reload under way; a job has at most one. It is not carried across god's
// re-exec: god refuses to upgrade while a job reloads.
type reloadOp struct {
	id           int
	phase        reloadPhase
	mode         loader.ReloadMode
	oldGen       int
	newGen       int
	def          loader.Definition // the new definition
	t0           time.Time
	tDefined     time.Time
	tSpawned     time.Time
	tReady       time.Time
	deadline     time.Time
	sawReloading bool
	successor    int
	newPids      []int
}

// owns reports whether p belongs to a new generation that is not serving yet.
func (r *reloadOp) owns(p *Proc) bool { return r.phase == phaseStart && p.Generation == r.newGen }

// Reloading reports whether a reload is under way.
func (m *Machine) Reloading() bool { return m.reload != nil }

func (m *Machine) reloadStep(msg string) {
	if m.reload == nil {
		return
	}
	m.log(slog.LevelInfo, "reload: "+msg)
	m.emit(ReloadStep{ID: m.reload.id, Msg: msg})
}

// beginReload starts a reload, or refuses one that cannot run now.
func (m *Machine) beginReload(id int) {
	if r := m.reload; r != nil {
		m.emit(ReloadDone{ID: id, Msg: fmt.Sprintf("job %s is already reloading (%s, for %s)", m.j.Name, r.phase, m.now.Sub(r.t0).Round(time.Millisecond))})
		return
	}
	if s := m.j.State; s.Down() || s == StateStop || s == StateBackoff || m.live() == 0 {
		m.emit(ReloadDone{ID: id, Msg: fmt.Sprintf("job %s is not running (state %s): use god start", m.j.Name, s)})
		return
	}
	m.reload = &reloadOp{id: id, phase: phaseDefine, oldGen: m.j.Generation, t0: m.now}
	m.reloadStep("asking " + m.j.Loader + " for the definition")
	m.emit(AskDefine{})
}

// reloadDefined goes on with a reload once the new definition is read: its sockets first.
func (m *Machine) reloadDefined(d Defined) {
	r := m.reload
	if r == nil || r.phase != phaseDefine {
		return
	}
	if d.Err != nil {
		m.failReload("cannot read the new definition: " + d.Err.Error())
		return
	}
	r.def = d.Def
	r.tDefined = m.now
	r.mode = d.Def.Reload.Mode
	if r.mode == loader.ReloadDefault {
		r.mode = loader.ReloadRestart
		if len(d.Def.Listen) > 0 {
			r.mode = loader.ReloadOverlap
		}
	}
	r.phase = phaseSockets
	m.emit(SyncSockets{Listen: d.Def.Listen, User: d.Def.User, Group: d.Def.Group, Report: true})
}

func (m *Machine) reloadSocketsSynced(ev SocketsSynced) {
	r := m.reload
	if r == nil || r.phase != phaseSockets {
		return
	}
	if ev.Err != nil {
		m.failReload(ev.Err.Error())
		return
	}
	switch r.mode {
	case loader.ReloadOverlap:
		r.phase = phaseStart
		r.newGen = m.nextGeneration()
		r.deadline = m.now.Add(m.policy.StartTimeout)
		m.reloadSpawnNext()
	case loader.ReloadRestart:
		r.phase = phaseRestart
		m.j.Def = r.def
		m.emit(Publish{Def: &r.def})
		m.reloadStep(fmt.Sprintf("restart mode: stopping generation %d, then starting the new one", r.oldGen))
		m.stop(AfterStart, "reload (restart mode)")
	case loader.ReloadSignal:
		r.phase = phaseSignal
		m.j.Def = r.def
		m.emit(Publish{Def: &r.def})
		r.newGen = m.nextGeneration()
		r.deadline = m.now.Add(m.policy.StartTimeout)
		sig := r.def.Reload.Signal
		if sig == 0 {
			sig = syscall.SIGHUP
		}
		for _, p := range m.j.Procs {
			if p.Generation == m.j.Generation && !p.Stopping {
				p.Ready = p.def.Ready.Mode != loader.ReadyNotify
				m.emit(SignalProc{Pid: p.Pid, Sig: sig})
			}
		}
		m.reloadStep(fmt.Sprintf("sent %s to generation %d", loader.SignalName(sig), r.oldGen))
		if r.def.Ready.Mode != loader.ReadyNotify {
			// Nothing will tell god when the job is done: the signal is the reload. The processes
			// that got it are the new generation, and so is a successor one of them names later
			// (MAINPID=, pid-file): it inherits their generation, and the next reload signals it.
			for _, p := range m.j.Procs {
				if p.Generation == r.oldGen && !p.Stopping && !p.HandedOver {
					p.Generation = r.newGen
				}
			}
			m.j.Generation = r.newGen
			m.finishReload(fmt.Sprintf("sent %s; job %s reloads itself (ready: notify would let god wait for it)", loader.SignalName(sig), m.j.Name))
		}
	}
}

// reloadSpawnNext starts the next process of an overlap reload's new generation; once all are
// started it says so.
func (m *Machine) reloadSpawnNext() {
	r := m.reload
	if m.spawning != nil {
		return
	}
	if i, ok := m.missing(r.newGen, max(r.def.Instances, 1)); ok {
		m.spawning = &Spawn{Gen: r.newGen, Instance: i, Def: &r.def}
		m.emit(*m.spawning)
		return
	}
	r.tSpawned = m.now
	var pids []string
	for _, p := range m.j.Procs {
		if p.Generation == r.newGen {
			pids = append(pids, strconv.Itoa(p.Pid))
		}
	}
	m.reloadStep(fmt.Sprintf("generation %d started (pid %s); generation %d serves until it is ready", r.newGen, strings.Join(pids, ", "), r.oldGen))
	m.publish()
	m.reloadProgress() // every new process may be ready already (ready: delay 0)
}

// reloadProgress moves an overlap reload on when the new generation is ready or the old one gone.
func (m *Machine) reloadProgress() {
	r := m.reload
	if r == nil {
		return
	}
	switch r.phase {
	case phaseStart:
		if m.spawning != nil || r.tSpawned.IsZero() {
			return
		}
		n := 0
		for _, p := range m.j.Procs {
			if p.Generation == r.newGen && !p.Stopping {
				if !p.Ready {
					return
				}
				n++
			}
		}
		if n < max(r.def.Instances, 1) {
			return
		}
		r.tReady = m.now
		r.phase = phaseDrain
		r.deadline = time.Time{}
		m.j.Generation = r.newGen
		m.j.Def = r.def
		m.emit(Publish{Def: &r.def})
		m.reloadStep(fmt.Sprintf("generation %d ready after %s; stopping generation %d", r.newGen, r.tReady.Sub(r.tSpawned).Round(time.Millisecond), r.oldGen))
		for _, p := range m.j.Procs {
			if p.Generation != r.newGen {
				m.stopProc(p, "")
			}
		}
		m.settle()
		if m.reload != r {
			return
		}
		fallthrough
	case phaseDrain:
		for _, p := range m.j.Procs {
			if p.Generation != r.newGen {
				return
			}
		}
		m.finishReload(fmt.Sprintf("generation %d serves, generation %d is gone (reload took %s: definition %s, new generation ready after %s, drain %s)",
			r.newGen, r.oldGen, m.now.Sub(r.t0).Round(time.Millisecond), r.tDefined.Sub(r.t0).Round(time.Millisecond),
			r.tReady.Sub(r.tSpawned).Round(time.Millisecond), m.now.Sub(r.tReady).Round(time.Millisecond)))
	case phaseSignal:
		m.j.Generation = r.newGen
		for _, p := range m.j.Procs {
			if p.Pid == r.successor || r.successor == 0 && !p.Stopping && !p.HandedOver {
				p.Generation = r.newGen
				if !p.Ready {
					p.Ready, p.ReadySince = true, m.now
				}
			}
		}
		m.finishReload(fmt.Sprintf("job %s says it reloaded (generation %d)", m.j.Name, r.newGen))
		m.settle()
	}
}

// reloadWatch ends a restart-mode reload when the job's state answers it.
func (m *Machine) reloadWatch() {
	r := m.reload
	if r == nil || r.phase != phaseRestart {
		return
	}
	switch s := m.j.State; {
	case s == StateRun && m.j.Generation > r.oldGen:
		m.finishReload(fmt.Sprintf("generation %d serves (restart mode)", m.j.Generation))
	case s == StateBackoff || s == StateFailed || s == StateExit:
		m.failReload(fmt.Sprintf("new generation %s: %s (restart mode cannot roll back)", s, m.j.LastExit))
	}
}

func (m *Machine) finishReload(msg string) {
	r := m.reload
	m.reload = nil
	m.j.LastReload = fmt.Sprintf("ok at %s: generation %d", m.now.Format("15:04:05"), m.j.Generation)
	m.log(slog.LevelInfo, "reload done: "+msg)
	m.emit(ReloadDone{ID: r.id, OK: true, Msg: msg, Took: m.now.Sub(r.t0), Counted: true})
	m.publish()
}

// failReload rolls a reload back: the new generation is stopped, the old one serves on.
func (m *Machine) failReload(why string) { m.endReload(why, false) }

// interruptReload ends a reload that a request to stop, restart or remove the job cut short: the
// new generation is stopped as in a rollback, but no generation serves on (the job is going
// down), so the message says "interrupted", not "failed; generation N serves on".
func (m *Machine) interruptReload(why string) { m.endReload(why, true) }

// endReload is failReload and interruptReload.
func (m *Machine) endReload(why string, interrupted bool) {
	r := m.reload
	if r == nil {
		return
	}
	m.reload = nil
	serving := r.oldGen
	switch r.phase {
	case phaseStart:
		for _, p := range m.j.Procs {
			if p.Generation == r.newGen {
				m.stopProc(p, "")
			}
		}
		m.j.Generation = r.oldGen
		m.emit(SyncSockets{Listen: m.j.Def.Listen, User: m.j.Def.User, Group: m.j.Def.Group})
	case phaseSockets:
		m.emit(SyncSockets{Listen: m.j.Def.Listen, User: m.j.Def.User, Group: m.j.Def.Group})
	case phaseDrain, phaseSignal, phaseRestart:
		serving = m.j.Generation
	}
	msg := fmt.Sprintf("reload of %s failed: %s; generation %d serves on", m.j.Name, why, serving)
	switch {
	case interrupted:
		msg = fmt.Sprintf("reload of %s interrupted: %s", m.j.Name, why)
	case r.phase == phaseRestart || r.phase == phaseSignal && m.live() == 0:
		msg = fmt.Sprintf("reload of %s failed: %s", m.j.Name, why)
	}
	m.j.LastReload = fmt.Sprintf("failed at %s: %s", m.now.Format("15:04:05"), why)
	if interrupted {
		m.log(slog.LevelWarn, "reload interrupted", "why", why)
	} else {
		m.log(slog.LevelError, "reload failed; rolled back", "why", why, "serving", serving)
	}
	m.emit(ReloadDone{ID: r.id, Msg: msg, NewPids: r.newPids, Took: m.now.Sub(r.t0), Counted: true})
	m.settle()
	m.publish()
}
