package jobstate

import (
	"fmt"
	"log/slog"
	"strconv"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// exited handles the end of one process of the job.
func (m *Machine) exited(ev Exited) {
	p := m.proc(ev.Pid)
	if p == nil {
		return
	}
	m.dropProc(ev.Pid)
	m.log(slog.LevelInfo, "exited", "pid", ev.Pid, "gen", p.Generation, "exit", ev.String(), "ran", ev.Time.Sub(p.Started).Round(time.Millisecond).String())
	if m.mayHandOver(p, ev) {
		// A clean exit that leaves its process group alive may be a hand-over whose MAINPID= has
		// not reached god yet (it travels through the notify socket, the exit through the reaper:
		// either can come first). Wait a moment for it before judging the exit, and above all
		// before ending what is left of the group: that may be the successor.
		m.handover = &handover{p: p, e: ev.Exit, until: m.now.Add(handoverGrace)}
		return
	}
	m.afterExit(p, ev.Exit, ev.GroupAlive)
}

// mayHandOver: jobs that can name a successor (notify readiness or signal reloads) and whose
// process exited 0 with other members of its group still alive.
func (m *Machine) mayHandOver(p *Proc, ev Exited) bool {
	if p.Stopping || p.HandedOver || !ev.Success() || m.handover != nil || !ev.GroupAlive {
		return false
	}
	return p.def.Ready.Mode == loader.ReadyNotify || p.def.Reload.Mode == loader.ReloadSignal
}

// handoverExpired judges a held-back exit once no MAINPID= came for it.
func (m *Machine) handoverExpired() {
	h := m.handover
	m.handover = nil
	m.afterExit(h.p, h.e, true)
}

// success reports an exit that counts as success: 0, or a status the job lists as one.
func (m *Machine) success(e Exit) bool {
	return e.Success() || exitMatches(m.j.Def.Rules.SuccessExit, e)
}

func exitMatches(list []int, e Exit) bool {
	if e.Status.Signaled() {
		return loader.ExitStatusMatches(list, false, 0, int(e.Status.Signal()))
	}
	return loader.ExitStatusMatches(list, true, e.Status.ExitStatus(), 0)
}

// afterExit is what an exit means for the job: restart, done, failed, a reload's end...
func (m *Machine) afterExit(p *Proc, e Exit, groupAlive bool) {
	if p.Pgid == p.Pid && groupAlive {
		m.linger(p.Pgid)
	}
	m.emit(Hook{Args: []string{StateExit.Hook(), strconv.Itoa(e.Code()), strconv.Itoa(e.Pid)}})
	switch {
	case p.HandedOver:
		// It named its successor with MAINPID=; that process is the job now.
		m.settle()
		m.publish()
		return
	case m.reload != nil && m.reload.owns(p):
		if !p.Stopping {
			m.failReload(fmt.Sprintf("generation %d pid %d exited with %s before it was ready", p.Generation, p.Pid, e))
		}
		return
	case p.Generation != m.j.Generation:
		// A draining generation: its exit is what was asked for.
		m.reloadProgress()
		m.settle()
		return
	}
	if r := m.reload; r != nil && r.phase == phaseSignal && !p.Stopping {
		// Without a successor named by MAINPID= the job is gone, not reloaded; a READY=1 of the
		// process god restarts must not pass for the reload's.
		m.failReload(fmt.Sprintf("pid %d exited with %s before it or a successor (MAINPID=) said READY=1", e.Pid, e))
	}
	m.j.LastExit = e.String()
	if m.j.State == StateStop {
		m.maybeStopped()
		return
	}
	if p.Stopping && p.Failed == "" {
		m.settle()
		return
	}
	wasStarting := m.j.State == StateStart
	m.move(StateExit, m.j.Reason)
	m.publish()
	why := "exited with " + e.String()
	if p.Failed != "" {
		why = p.Failed
	}
	success := m.success(e)
	if p.Failed == "" && m.live() == 0 {
		if exitMatches(m.j.Def.Rules.PreventExit, e) {
			if success {
				m.enter(StateDone, why+" (restart-prevent-exit-status)")
			} else {
				m.enter(StateFailed, why+": restart-prevent-exit-status, not restarted")
			}
			return
		}
		if m.j.Def.Auto.Socket && success {
			// An on-demand job that exits 0 by itself has gone idle: it sleeps until the next
			// connection (one that came while it was exiting waits in the queue and wakes it).
			m.j.Fails = 0
			m.enter(StateListen, listenReason(&m.j.Def, why+": idle"))
			return
		}
		if wasStarting && success {
			m.enter(StateDone, "exited 0 while starting (one-shot)")
			return
		}
		switch m.j.Def.Restart {
		case loader.RestartNever:
			if success {
				m.enter(StateDone, why+" (restart: never)")
			} else {
				m.enter(StateFailed, why+" (restart: never)")
			}
			return
		case loader.RestartOnFailure:
			if success {
				m.enter(StateDone, why+" (restart: on-failure)")
				return
			}
		}
	}
	// A process that was ready and then served for min-uptime is no crash loop: it restarts at
	// once, however often that happens. Anything shorter is a quick failure and backs off.
	served := p.Ready && !p.ReadySince.IsZero() && e.Time.Sub(p.ReadySince) >= m.backoff().MinUptime
	m.restartOrFail(served, why)
}

// restartOrFail starts the missing instances, at once or after the back-off delay, or fails the
// job when it keeps failing quickly.
func (m *Machine) restartOrFail(served bool, why string) {
	b := m.backoff()
	if served {
		m.j.Fails = 0
	} else {
		m.j.Fails++
	}
	if !served && b.Limit > 0 && m.j.Fails > b.Limit {
		msg := fmt.Sprintf("flapping: %d quick failures in a row, last %s", m.j.Fails, why)
		m.log(slog.LevelError, "failed: flapping, not restarting", "failures", m.j.Fails, "last", why, "retry_in", b.CoolDown.String())
		m.j.RespawnAt = time.Time{}
		if len(m.j.Procs) > 0 {
			m.stop(AfterFailed, msg)
			return
		}
		m.failFlapping(msg)
		return
	}
	m.j.Restarts++
	m.emit(Restarted{})
	d := b.Delay(m.j.Fails)
	if d <= 0 {
		m.j.RespawnAt = time.Time{}
		m.spawnMissing()
		return
	}
	m.j.RespawnAt = m.now.Add(d)
	if m.live() == 0 {
		m.enter(StateBackoff, fmt.Sprintf("%s; restart in %s", why, d))
	} else {
		m.settle()
	}
}

// failFlapping fails a job that kept failing; it tries again after the cool-down.
func (m *Machine) failFlapping(msg string) {
	if cd := m.backoff().CoolDown; cd > 0 {
		m.j.RetryAt = m.now.Add(cd)
		msg = fmt.Sprintf("%s; retry in %s", msg, cd)
	}
	m.enter(StateFailed, msg)
}

// stop ends every process of the job by its stop semantics, then does what after says.
func (m *Machine) stop(after After, why string) {
	if m.handover != nil {
		m.handoverExpired()
	}
	if after != AfterFailed {
		m.j.RetryAt = time.Time{}
	}
	switch {
	case m.j.State == StateStop:
		if after != AfterStopped {
			m.j.After = after
		}
	case len(m.j.Procs) > 0 || len(m.j.Lingering) > 0 && (m.j.State == StateBackoff || m.j.State.Running()):
		// A job is stopped once nothing of it is left: a group its last process left behind
		// (a daemon being ended) counts too.
		m.j.After = after
		m.j.RespawnAt = time.Time{}
		m.enter(StateStop, why)
		for _, p := range m.j.Procs {
			m.stopProc(p, "")
		}
	case m.j.State == StateListen:
		m.afterStopDone(after, why)
	case m.j.State == StateBackoff || !m.j.RespawnAt.IsZero():
		m.j.RespawnAt = time.Time{}
		m.afterStopDone(after, why)
	default:
		if after == AfterStart {
			m.start()
		} else if after == AfterFailed {
			m.afterStopDone(after, why)
		}
	}
}

// stopProc asks the loader how to stop one process (its answer signals the group). failed, when
// set, makes its exit count as a failure (check fail, watchdog, start timeout).
func (m *Machine) stopProc(p *Proc, failed string) {
	if failed != "" && p.Failed == "" {
		p.Failed = failed
	}
	if p.Stopping {
		return
	}
	p.Stopping = true
	p.CheckAt = time.Time{}
	p.KillAt = m.now.Add(m.policy.LoaderTimeout + killGrace) // until the loader answers
	m.emit(AskStop{Pid: p.Pid})
}

// stopAnswered signals a stopping process's group and arms its kill deadline.
func (m *Machine) stopAnswered(ev StopAnswered) {
	p := m.proc(ev.Pid)
	if p == nil || !p.Stopping {
		return
	}
	if ev.Spec.Signal != 0 {
		m.emit(SignalGroup{Pgid: p.Pgid, Sig: ev.Spec.Signal})
	}
	p.KillAt = m.now.Add(ev.Spec.Timeout)
}

func (m *Machine) kill(p *Proc, why string) {
	m.log(slog.LevelWarn, "killing process group", "pgid", p.Pgid, "pid", p.Pid, "why", why)
	m.emit(SignalGroup{Pgid: p.Pgid, Sig: syscall.SIGKILL})
	p.KillAt = time.Time{}
}

// linger ends what is left of a process group after its leader exited (children that ignore
// SIGTERM, a forgotten background process): SIGTERM now, SIGKILL after the linger timeout.
func (m *Machine) linger(pgid int) {
	for _, p := range m.j.Procs {
		if p.Pgid == pgid {
			return // a MAINPID successor lives in this group: it is the job now
		}
	}
	for _, l := range m.j.Lingering {
		if l.Pgid == pgid {
			return
		}
	}
	m.emit(SignalGroup{Pgid: pgid, Sig: syscall.SIGTERM})
	m.j.Lingering = append(m.j.Lingering, Linger{Pgid: pgid, KillAt: m.now.Add(m.policy.LingerTimeout)})
	m.emit(WatchGroup{Pgid: pgid})
}

func (m *Machine) groupGone(pgid int) {
	for i, l := range m.j.Lingering {
		if l.Pgid == pgid {
			m.j.Lingering = append(m.j.Lingering[:i:i], m.j.Lingering[i+1:]...)
			m.maybeStopped()
			return
		}
	}
}

// maybeStopped finishes a stop once no process and no group of the job is left.
func (m *Machine) maybeStopped() {
	if m.j.State != StateStop || len(m.j.Procs) > 0 || len(m.j.Lingering) > 0 {
		return
	}
	m.afterStopDone(m.j.After, m.j.Reason)
}

func (m *Machine) afterStopDone(after After, why string) {
	m.j.After = AfterStopped
	switch after {
	case AfterStart:
		m.j.Fails = 0
		m.j.Generation = m.nextGeneration()
		m.spawnMissing()
	case AfterFailed:
		m.failFlapping(why)
	default:
		if m.removed {
			m.enter(StateStopped, "removed")
			return
		}
		m.enter(StateStopped, "")
	}
}
