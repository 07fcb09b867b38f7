package supervisor

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// A reload replaces the code a job runs without a moment in which its sockets have no process
// behind them. god re-reads the job's definition from its loader (from a fresh instance when the
// file changed since the running ones started: it has been rebuilt), then, by the job's `reload`
// mode:
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

// reloadRequest is one `god reload JOB` waiting for its outcome.
type reloadRequest struct {
	progress chan<- string // steps, as they happen (buffered; dropped when full)
	done     chan<- reloadOutcome
}

type reloadOutcome struct {
	ok  bool
	msg string
}

type reloadPhase string

const (
	phaseDefine  reloadPhase = "define"  // asking the loader for the definition
	phaseStart   reloadPhase = "start"   // overlap: the new generation starts, the old one serves
	phaseDrain   reloadPhase = "drain"   // overlap: the new generation serves, the old one stops
	phaseRestart reloadPhase = "restart" // restart mode
	phaseSignal  reloadPhase = "signal"  // signal mode: waiting for the job to say it is ready
)

// reloadOp is the reload under way; a job has at most one.
type reloadOp struct {
	req          *reloadRequest
	phase        reloadPhase
	mode         loader.ReloadMode
	oldGen       int
	newGen       int
	def          loader.Definition // the new definition
	oldDef       loader.Definition
	t0           time.Time
	tDefined     time.Time
	tSpawned     time.Time
	tReady       time.Time
	deadline     time.Time
	sawReloading bool
	successor    int
	newPids      map[int]bool
}

// owns reports whether p belongs to a new generation that is not serving yet.
func (r *reloadOp) owns(p *proc) bool { return r.phase == phaseStart && p.generation == r.newGen }

// redefined is the loader's answer for one job.
type redefined struct {
	def loader.Definition
	err error
}

func (j *job) reloadStep(msg string) {
	if j.reload == nil {
		return
	}
	j.log.Info("reload: " + msg)
	select {
	case j.reload.req.progress <- msg:
	default:
	}
}

// beginReload starts a reload, or refuses one that cannot run now.
func (j *job) beginReload(req *reloadRequest) {
	if j.reload != nil {
		req.done <- reloadOutcome{msg: fmt.Sprintf("job %s is already reloading (%s, for %s)", j.name, j.reload.phase, time.Since(j.reload.t0).Round(time.Millisecond))}
		return
	}
	if j.state.Down() || j.state == StateStop || j.state == StateBackoff || j.live() == 0 {
		req.done <- reloadOutcome{msg: fmt.Sprintf("job %s is not running (state %s): use god start", j.name, j.state)}
		return
	}
	j.reload = &reloadOp{req: req, phase: phaseDefine, oldGen: j.generation, oldDef: j.def, t0: time.Now(), newPids: map[int]bool{}}
	j.reloadStep("asking " + j.loader + " for the definition")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.LoaderTimeout+j.sup.cfg.HandshakeTimeout)
		defer cancel()
		def, err := j.sup.define(ctx, j.loader, j.name)
		send(j, j.defined, &redefined{def: def, err: err})
	}()
}

// reloadDefined goes on with a reload once the new definition is read.
func (j *job) reloadDefined(d *redefined) {
	r := j.reload
	if r == nil || r.phase != phaseDefine {
		return
	}
	if d.err != nil {
		j.failReload("cannot read the new definition: " + d.err.Error())
		return
	}
	r.def = d.def
	r.tDefined = time.Now()
	r.mode = d.def.Reload.Mode
	if r.mode == loader.ReloadDefault {
		r.mode = loader.ReloadRestart
		if len(d.def.Listen) > 0 {
			r.mode = loader.ReloadOverlap
		}
	}
	if err := j.syncSocketsFor(d.def.Listen); err != nil {
		j.syncSocketsFor(j.def.Listen)
		j.failReload(err.Error())
		return
	}
	switch r.mode {
	case loader.ReloadOverlap:
		r.phase = phaseStart
		r.newGen = j.nextGeneration()
		r.deadline = time.Now().Add(j.sup.cfg.StartTimeout)
		var pids []string
		for i := 0; i < max(r.def.Instances, 1); i++ {
			p, err := j.spawn(r.newGen, i, &r.def)
			if err != nil {
				j.failReload("cannot start the new generation: " + err.Error())
				return
			}
			r.newPids[p.pid] = true
			pids = append(pids, fmt.Sprint(p.pid))
		}
		r.tSpawned = time.Now()
		j.reloadStep(fmt.Sprintf("generation %d started (pid %s); generation %d serves until it is ready", r.newGen, strings.Join(pids, ", "), r.oldGen))
		j.publish()
	case loader.ReloadRestart:
		r.phase = phaseRestart
		j.def = r.def
		j.publishDef(&r.def)
		j.reloadStep(fmt.Sprintf("restart mode: stopping generation %d, then starting the new one", r.oldGen))
		j.stop(afterStart, "reload (restart mode)")
	case loader.ReloadSignal:
		r.phase = phaseSignal
		j.def = r.def
		j.publishDef(&r.def)
		r.newGen = j.nextGeneration()
		r.deadline = time.Now().Add(j.sup.cfg.StartTimeout)
		sig := r.def.Reload.Signal
		if sig == 0 {
			sig = syscall.SIGHUP
		}
		for _, p := range j.procs {
			if p.generation == j.generation && !p.stopping {
				p.ready = p.def.Ready.Mode != loader.ReadyNotify
				if err := j.sup.reaper.Signal(p.pid, sig); err != nil {
					j.failReload(fmt.Sprintf("signal %s to pid %d: %v", loader.SignalName(sig), p.pid, err))
					return
				}
			}
		}
		j.reloadStep(fmt.Sprintf("sent %s to generation %d", loader.SignalName(sig), r.oldGen))
		if r.def.Ready.Mode != loader.ReadyNotify {
			// Nothing will tell god when the job is done: the signal is the reload.
			j.generation = r.newGen
			j.finishReload(fmt.Sprintf("sent %s; job %s reloads itself (ready: notify would let god wait for it)", loader.SignalName(sig), j.name))
		}
	}
}

// reloadProgress moves an overlap reload on when the new generation is ready or the old one gone.
func (j *job) reloadProgress() {
	r := j.reload
	if r == nil {
		return
	}
	switch r.phase {
	case phaseStart:
		n := 0
		for _, p := range j.procs {
			if p.generation == r.newGen && !p.stopping {
				if !p.ready {
					return
				}
				n++
			}
		}
		if n < max(r.def.Instances, 1) {
			return
		}
		r.tReady = time.Now()
		r.phase = phaseDrain
		r.deadline = time.Time{}
		j.generation = r.newGen
		j.def = r.def
		j.publishDef(&r.def)
		j.reloadStep(fmt.Sprintf("generation %d ready after %s; stopping generation %d", r.newGen, r.tReady.Sub(r.tSpawned).Round(time.Millisecond), r.oldGen))
		for _, p := range j.procs {
			if p.generation != r.newGen {
				j.stopProc(p, "")
			}
		}
		j.settle()
		fallthrough
	case phaseDrain:
		for _, p := range j.procs {
			if p.generation != r.newGen {
				return
			}
		}
		own := r.tReady.Sub(r.tSpawned)
		j.finishReload(fmt.Sprintf("generation %d serves, generation %d is gone (reload took %s: definition %s, new generation ready after %s, drain %s)",
			r.newGen, r.oldGen, time.Since(r.t0).Round(time.Millisecond), r.tDefined.Sub(r.t0).Round(time.Millisecond),
			own.Round(time.Millisecond), time.Since(r.tReady).Round(time.Millisecond)))
	case phaseSignal:
		j.generation = r.newGen
		for _, p := range j.procs {
			if p.pid == r.successor || r.successor == 0 && !p.stopping && !p.handedOver {
				p.generation = r.newGen
				p.ready = true
			}
		}
		j.finishReload(fmt.Sprintf("job %s says it reloaded (generation %d)", j.name, r.newGen))
		j.settle()
	}
}

// reloadWatch ends a restart- or signal-mode reload when the job's state answers it.
func (j *job) reloadWatch() {
	r := j.reload
	if r == nil || r.phase != phaseRestart {
		return
	}
	switch {
	case j.state == StateRun && j.generation > r.oldGen:
		j.finishReload(fmt.Sprintf("generation %d serves (restart mode)", j.generation))
	case j.state == StateBackoff || j.state == StateFailed || j.state == StateExit:
		j.failReload(fmt.Sprintf("new generation %s: %s (restart mode cannot roll back)", j.state, j.lastExit))
	}
}

// reloadProcExited handles the exit of a process of a generation that is not serving yet.
func (j *job) reloadProcExited(p *proc, e Exit) {
	if p.stopping {
		return
	}
	j.failReload(fmt.Sprintf("generation %d pid %d exited with %s before it was ready", p.generation, p.pid, e.String()))
}

func (j *job) finishReload(msg string) {
	r := j.reload
	j.reload = nil
	j.lastReload = fmt.Sprintf("ok at %s: generation %d", time.Now().Format("15:04:05"), j.generation)
	j.log.Info("reload done: " + msg)
	r.req.done <- reloadOutcome{ok: true, msg: msg}
	j.sup.metrics.jobReloaded(j.name, time.Since(r.t0), true)
	j.publish()
}

// failReload rolls a reload back: the new generation is stopped, the old one serves on.
func (j *job) failReload(why string) {
	r := j.reload
	if r == nil {
		return
	}
	j.reload = nil
	serving := r.oldGen
	switch r.phase {
	case phaseStart:
		for _, p := range j.procs {
			if p.generation == r.newGen {
				j.stopProc(p, "")
			}
		}
		j.generation = r.oldGen
		j.syncSocketsFor(j.def.Listen)
	case phaseDrain, phaseSignal, phaseRestart:
		serving = j.generation
	}
	msg := fmt.Sprintf("reload of %s failed: %s; generation %d serves on", j.name, why, serving)
	if r.phase == phaseRestart || r.phase == phaseSignal && j.live() == 0 {
		msg = fmt.Sprintf("reload of %s failed: %s", j.name, why)
	}
	j.lastReload = fmt.Sprintf("failed at %s: %s", time.Now().Format("15:04:05"), why)
	j.log.Error("reload failed; rolled back", "why", why, "serving", serving)
	// The new generation's last words may still be in its pipes: the answer waits for them
	// (briefly), the job's loop does not.
	go func(pids map[int]bool, done chan<- reloadOutcome) {
		j.sup.waitOutput(pids, 500*time.Millisecond)
		if out := j.lastLines(10, pids); out != "" {
			msg += "\nlast output of the new generation:\n" + out
		}
		done <- reloadOutcome{msg: msg}
	}(r.newPids, r.req.done)
	j.sup.metrics.jobReloaded(j.name, time.Since(r.t0), false)
	j.settle()
	j.publish()
}
