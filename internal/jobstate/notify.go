package jobstate

import (
	"log/slog"
	"strings"
	"time"

	"github.com/emielm/watchgod/loader"
)

// adoption is a notify message waiting for the outcome of the Adopt of its MAINPID=.
type adoption struct {
	old *Proc    // the process that names its successor
	msg Notified // the rest of the message is applied once the successor is the job's
	// held is an exit god held back for this MAINPID= (handover), judged if the adoption fails.
	held *handover
}

// Owns reports whether a notify message from pid (in process group pgid) concerns the job: one of
// its processes, a member of one's group, or the successor of an exit held back for a MAINPID=.
func (m *Machine) Owns(pid, pgid int) bool {
	if m.proc(pid) != nil {
		return true
	}
	for _, p := range m.j.Procs {
		if p.Pgid == pgid {
			return true
		}
	}
	return m.handover != nil && m.handover.p.Pgid == pgid
}

// notified applies a notify message from one of the job's processes (or from a process in one's
// group: a child sending READY=1 on its parent's behalf).
func (m *Machine) notified(n Notified) {
	p := m.proc(n.Pid)
	if p == nil && n.SenderPgid > 0 {
		for _, q := range m.j.Procs {
			if q.Pgid == n.SenderPgid {
				p = q
				break
			}
		}
		if h := m.handover; p == nil && h != nil && h.p.Pgid == n.SenderPgid && n.MainPid > 0 {
			// The successor of a process whose exit god held back: the hand-over it waited for.
			m.handover = nil
			h.p.HandedOver = true
			m.adoptMainPid(h.p, n, h)
			return
		}
	}
	if p == nil {
		m.log(slog.LevelWarn, "notify message from a process that is not the job's: dropped", "sender", n.Pid)
		return
	}
	m.applyStatus(p, n)
	if n.ExtendTimeout > 0 {
		m.extendTimeout(p, n.ExtendTimeout)
	}
	if n.WatchdogTrigger {
		m.procFailed(p, "watchdog triggered by the job")
	}
	if n.MainPid > 0 && n.MainPid != p.Pid {
		if q := m.proc(n.MainPid); q != nil {
			p = q
		} else {
			m.adoptMainPid(p, n, nil)
			return
		}
	}
	m.notifiedRest(p, n)
}

// applyStatus takes STATUS= and WATCHDOG=1 from a message of p.
func (m *Machine) applyStatus(p *Proc, n Notified) {
	if n.Status != nil {
		m.j.StatusText = *n.Status
	}
	if n.Watchdog && !p.WatchdogAt.IsZero() {
		p.WatchdogAt = m.now.Add(p.def.Watchdog)
	}
}

// notifiedRest is the part of a message that applies to the job's main process once a MAINPID=
// in it was followed.
func (m *Machine) notifiedRest(p *Proc, n Notified) {
	if r := m.reload; n.Reloading && r != nil && r.mode == loader.ReloadSignal {
		r.sawReloading = true
		m.reloadStep("job says RELOADING=1")
	}
	if n.Stopping {
		m.log(slog.LevelInfo, "job says STOPPING=1", "pid", p.Pid)
	}
	// READY=1 decides readiness only for `ready: notify`: with `ready: check` a process that
	// says it is ready before its check passes (a new build whose check fails) is not ready.
	if n.Ready && !p.Ready && p.def.Ready.Mode == loader.ReadyNotify {
		m.becameReady(p)
	} else if n.Ready && m.reload != nil && m.reload.phase == phaseSignal {
		m.reloadProgress()
	}
	m.publish()
}

// adoptMainPid asks for the MAINPID= of old to be made the job's (tableflip, nginx-style
// upgrades: the named pid, reparented to god as subreaper once its parent exits).
func (m *Machine) adoptMainPid(old *Proc, n Notified, held *handover) {
	m.adopting = &adoption{old: old, msg: n, held: held}
	m.emit(Adopt{Pid: n.MainPid, Pgid: old.Pgid, From: old.Pid})
}

func (m *Machine) adopted(ev Adopted) {
	a := m.adopting
	if a == nil || a.msg.MainPid != ev.Pid {
		return
	}
	m.adopting = nil
	old := a.old
	if ev.Err != nil {
		m.log(slog.LevelWarn, "MAINPID: cannot follow", "pid", ev.Pid, "err", ev.Err)
		if a.held != nil {
			m.afterExit(a.held.p, a.held.e, true)
			return
		}
		m.notifiedRest(old, a.msg)
		return
	}
	gen := old.Generation
	if r := m.reload; r != nil && r.mode == loader.ReloadSignal {
		gen = r.newGen
		r.successor = ev.Pid
		r.newPids = append(r.newPids, ev.Pid)
	}
	p := &Proc{Pid: ev.Pid, Pgid: old.Pgid, Generation: gen, Instance: old.Instance, Started: m.now, CheckAt: m.now, def: old.def}
	if p.def.Ready.Mode != loader.ReadyNotify {
		p.Ready, p.ReadySince = old.Ready, old.ReadySince
	}
	if p.Ready && p.def.Watchdog > 0 {
		p.WatchdogAt = m.now.Add(p.def.Watchdog)
	}
	old.HandedOver = true
	old.CheckAt = time.Time{}
	old.WatchdogAt = time.Time{}
	m.j.Procs = append(m.j.Procs, p)
	m.log(slog.LevelInfo, "MAINPID: following the job's new main process", "old", old.Pid, "new", ev.Pid, "gen", gen)
	if a.held != nil {
		m.applyStatus(p, a.msg)
	}
	m.notifiedRest(p, a.msg)
}

// extendTimeout is EXTEND_TIMEOUT_USEC=: as in systemd, the timeout running for p (not ready yet:
// its start timeout and, for a reload's new process, the reload's; stopping: the stop timeout
// before SIGKILL) is pushed to now+d if that is later. A job that starts or drains slowly keeps
// sending it to say it is alive; a timeout never shortens, and one not running is not started.
func (m *Machine) extendTimeout(p *Proc, d time.Duration) {
	until := m.now.Add(d)
	later := func(t *time.Time) bool {
		if t.IsZero() || !t.Before(until) {
			return false
		}
		*t = until
		return true
	}
	var what []string
	switch {
	case p.Stopping:
		if later(&p.KillAt) {
			what = append(what, "stop")
		}
	case !p.Ready:
		if later(&p.StartBy) {
			what = append(what, "start")
		}
	}
	if r := m.reload; r != nil && (r.owns(p) || r.phase == phaseSignal && (p.Generation == r.oldGen || p.Generation == r.newGen)) {
		if later(&r.deadline) {
			what = append(what, "reload")
		}
	}
	if len(what) > 0 {
		m.log(slog.LevelInfo, "EXTEND_TIMEOUT_USEC: timeout extended", "pid", p.Pid, "timeout", strings.Join(what, ","), "until", until)
	}
}
