package jobstate

import (
	"fmt"
	"log/slog"
	"syscall"
	"time"
)

// tick handles every deadline that is due: checks, ready delays, start timeouts, watchdogs, stop
// timeouts, lingering groups, the back-off, a reload's start timeout and the cool-down.
func (m *Machine) tick() {
	now := m.now
	due := func(t time.Time) bool { return !t.IsZero() && !now.Before(t) }
	for _, p := range append([]*Proc(nil), m.j.Procs...) {
		if m.proc(p.Pid) == nil {
			continue
		}
		switch {
		case p.Stopping:
			if due(p.KillAt) {
				m.kill(p, "stop timeout")
			}
			continue
		case !p.Ready && due(p.ReadyAt):
			p.ReadyAt = time.Time{}
			m.becameReady(p)
		case !p.Ready && due(p.StartBy):
			m.log(slog.LevelWarn, "not ready in time; stopping it", "pid", p.Pid, "timeout", m.policy.StartTimeout.String())
			m.procFailed(p, fmt.Sprintf("not ready within %s", m.policy.StartTimeout))
			continue
		case due(p.WatchdogAt):
			m.log(slog.LevelWarn, "watchdog: no WATCHDOG=1 in time; stopping it", "pid", p.Pid, "watchdog", p.def.Watchdog.String())
			m.procFailed(p, fmt.Sprintf("watchdog: silent for %s", p.def.Watchdog))
			continue
		}
		if !p.checking && !p.Stopping && due(p.CheckAt) {
			m.startCheck(p)
		}
	}
	for i := 0; i < len(m.j.Lingering); i++ {
		l := &m.j.Lingering[i]
		if !due(l.KillAt) {
			continue
		}
		if !l.Killed {
			m.log(slog.LevelWarn, "process group outlived its leader; killing", "pgid", l.Pgid)
			m.emit(SignalGroup{Pgid: l.Pgid, Sig: syscall.SIGKILL})
			l.Killed, l.KillAt = true, now.Add(killGrace)
			continue
		}
		m.log(slog.LevelError, "process group survives SIGKILL; no longer waiting for it", "pgid", l.Pgid)
		m.groupGone(l.Pgid)
		i--
	}
	if m.handover != nil && due(m.handover.until) {
		m.handoverExpired()
	}
	if due(m.j.RespawnAt) {
		m.j.RespawnAt = time.Time{}
		m.spawnMissing()
	}
	if r := m.reload; r != nil && due(r.deadline) {
		m.failReload(fmt.Sprintf("new generation not ready within %s", m.policy.StartTimeout))
	}
	if due(m.j.RetryAt) {
		m.j.RetryAt = time.Time{}
		if m.j.State == StateFailed && !m.removed {
			m.log(slog.LevelInfo, "cool-down over: trying again")
			m.start()
		}
	}
}

// Next is the earliest deadline of the job and its processes; zero when there is none.
func (m *Machine) Next() time.Time {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, p := range m.j.Procs {
		if p.Stopping {
			at(p.KillAt)
			continue
		}
		if !p.checking {
			at(p.CheckAt)
		}
		if !p.Ready {
			at(p.ReadyAt)
			at(p.StartBy)
		}
		at(p.WatchdogAt)
	}
	for _, l := range m.j.Lingering {
		at(l.KillAt)
	}
	at(m.j.RespawnAt)
	at(m.j.RetryAt)
	if m.handover != nil {
		at(m.handover.until)
	}
	if m.reload != nil {
		at(m.reload.deadline)
	}
	return next
}

// rearm emits an Arm when the next deadline changed.
func (m *Machine) rearm() {
	if next := m.Next(); !next.Equal(m.armed) {
		m.armed = next
		m.emit(Arm{At: next})
	}
}
