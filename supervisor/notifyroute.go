package supervisor

import (
	"os"
	"path/filepath"
)

// startNotify opens the NOTIFY_SOCKET every job process gets, next to the control socket.
func (s *Supervisor) startNotify() error {
	path := s.cfg.NotifySocket
	if path == "" {
		path = filepath.Join(filepath.Dir(s.cfg.Socket), "notify.sock")
		if s.cfg.Socket == "" {
			path = filepath.Join(os.TempDir(), "god-notify.sock")
		}
	}
	n, err := s.notifyFromState()
	if err != nil {
		s.log.Warn("cannot take the notify socket over; opening a new one", "err", err)
	}
	if n == nil {
		if n, err = ListenNotify(path); err != nil {
			return err
		}
	}
	n.Logger = s.log
	s.notify = n
	s.notifyPath = n.Path()
	go func() {
		if err := n.Serve(func(m NotifyMessage) { s.inbox.push(m) }); err != nil {
			s.log.Error("notify socket", "err", err)
		}
	}()
	return nil
}

// routeNotify hands a notify message to the job whose process sent it: a pid of the job, or a
// process in the group of one (a job's child speaking for it). Anything else is dropped.
func (s *Supervisor) routeNotify(m NotifyMessage) {
	name, ok := s.pidIndex[m.Pid]
	if !ok {
		if pg, err := ProcessGroupOf(m.Pid); err == nil {
			name, ok = s.pidIndex[pg]
		}
	}
	h := s.jobs[name]
	if !ok || h == nil {
		s.log.Warn("notify message from a process that belongs to no job: dropped", "pid", m.Pid, "fields", len(m.Fields))
		for _, f := range m.Files {
			f.Close()
		}
		return
	}
	h.j.cmds <- jobCmd{kind: cmdNotify, notify: m}
}
