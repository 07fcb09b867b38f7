package jobstate

import (
	"log/slog"
	"time"

	"github.com/emielm/watchgod/loader"
)

// checkRetry is when a check that could not be asked, or got a bad reply, is asked again.
const checkRetry = time.Second

// startCheck asks the loader for one process's health.
func (m *Machine) startCheck(p *Proc) {
	p.checking = true
	p.checkSeq++
	m.emit(AskCheck{Pid: p.Pid, Seq: p.checkSeq})
}

// checked acts on a check reply (see "Check replies" in docs/protocol.md).
func (m *Machine) checked(r Checked) {
	p := m.proc(r.Pid)
	if p == nil || r.Seq != p.checkSeq {
		return
	}
	p.checking = false
	if p.Stopping {
		return
	}
	if r.Err != nil {
		// A failing loader never touches a running job: note it and ask again later.
		m.j.LastCheck = "error: " + r.Err.Error()
		p.CheckAt = m.now.Add(checkRetry)
		m.publish()
		return
	}
	c, err := loader.ParseCheck(r.Reply)
	if err != nil {
		m.j.LastCheck = "bad reply: " + err.Error()
		m.log(slog.LevelWarn, "bad check reply", "loader", m.j.Loader, "err", err)
		p.CheckAt = m.now.Add(checkRetry)
		m.publish()
		return
	}
	next := c.Next
	if next <= 0 {
		next = time.Second
	}
	p.CheckAt = m.now.Add(next)
	readyByCheck := p.def.Ready.Mode == loader.ReadyDefault || p.def.Ready.Mode == loader.ReadyCheck
	switch c.Kind {
	case loader.CheckNone:
		m.j.LastCheck = ""
		p.NoCheck = true
		p.CheckAt = time.Time{}
		if readyByCheck && !p.Ready {
			m.becameReady(p)
			return
		}
	case loader.CheckOK:
		m.j.LastCheck = "ok"
		p.Degraded = false
		if readyByCheck && !p.Ready {
			m.becameReady(p)
			return
		}
		m.settle()
		return
	case loader.CheckDegrade:
		m.j.LastCheck = "degrade"
		if p.Ready {
			p.Degraded = true
			m.settle()
			return
		}
	case loader.CheckFail:
		m.j.LastCheck = "fail"
		m.log(slog.LevelWarn, "check failed; stopping", "pid", p.Pid)
		m.procFailed(p, "check failed")
		return
	case loader.CheckStart:
		m.start()
	case loader.CheckStop:
		m.stop(AfterStopped, "check asked to stop")
	case loader.CheckRestart:
		m.stop(AfterStart, "check asked to restart")
	case loader.CheckForward:
		m.emit(Forward{Target: c.Target, Command: c.Command})
	}
	m.publish()
}
