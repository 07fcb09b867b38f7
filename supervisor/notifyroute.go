package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/emielm/watchgod/internal/notify"
	"github.com/emielm/watchgod/internal/procfs"
)

// notifyPathFor names the notify socket after the control socket, beside it: god.sock gives
// god-notify.sock. Two gods whose control sockets share a directory get notify sockets of their own.
func notifyPathFor(control string) string {
	if control == "" {
		return filepath.Join(os.TempDir(), fmt.Sprintf("god-%d-notify.sock", os.Getuid()))
	}
	return strings.TrimSuffix(control, ".sock") + "-notify.sock"
}

// startNotify opens the NOTIFY_SOCKET every job process gets, next to the control socket.
func (s *Supervisor) startNotify() error {
	path := s.cfg.NotifySocket
	if path == "" {
		path = notifyPathFor(s.cfg.Socket)
	}
	n, err := s.notifyFromState()
	if err != nil {
		s.log.Warn("cannot take the notify socket over; opening a new one", "err", err)
	}
	if n == nil {
		if n, err = notify.Listen(path); err != nil {
			return err
		}
	}
	n.Logger = s.log
	n.Admit = s.admitNotify
	s.notify = n
	s.notifyPath = n.Path()
	s.notifyIn = make(chan notify.Message, notifyQueue)
	s.notifyDrops = notify.NewLogLimiter(time.Second, func() *slog.Logger { return s.log })
	go func() {
		if err := n.Serve(s.queueNotify); err != nil {
			s.log.Error("notify socket", "err", err)
		}
	}()
	return nil
}

// notifyQueue bounds the notify messages waiting for the loop: a flood from a process of god's
// own user (which god cannot tell from a job's by uid) costs bounded memory, never the loop's time.
const notifyQueue = 1024

// admitNotify judges a datagram's sender when it is read, before it may queue ahead of a job's
// own message. It admits the users god's jobs run as (god's own, and root's: a root process can
// do anything to god's jobs anyway), and of those only a job's process (notifyPids), a process in
// a job's group (a wrapper's child speaking for it), or a child of god's (a process just started,
// whose pid the loop has not recorded yet). Everything else is a stranger, dropped at the cost of
// one recvmsg and, for god's own users, one read of /proc/PID/stat.
func (s *Supervisor) admitNotify(uid, pid int) notify.Admission {
	if uid != 0 && uid != s.euid {
		return notify.DropUser
	}
	if _, ok := s.notifyPids.Load(pid); ok {
		return notify.Admitted
	}
	ppid, pgrp, err := procfs.ParentAndGroup(pid)
	if err != nil {
		return notify.DropProcess // gone: no job could be told who it was
	}
	if ppid == s.pid {
		return notify.Admitted
	}
	if _, ok := s.notifyPids.Load(pgrp); ok {
		return notify.Admitted
	}
	return notify.DropProcess
}

// indexPid records pid (a job's process, or a job's process group) as job's, for routing notify
// messages (pidIndex, the loop's) and for admitting them when read (notifyPids, the notify
// reader's copy).
func (s *Supervisor) indexPid(pid int, job string) {
	s.pidIndex[pid] = job
	s.notifyPids.Store(pid, struct{}{})
}

// unindexPid forgets what indexPid recorded.
func (s *Supervisor) unindexPid(pid int) {
	delete(s.pidIndex, pid)
	s.notifyPids.Delete(pid)
}

// queueNotify hands a message to the loop without ever waiting for it; when the loop is that far
// behind, the message is dropped (and counted in the log).
func (s *Supervisor) queueNotify(m notify.Message) {
	select {
	case s.notifyIn <- m:
	default:
		for _, f := range m.Files {
			f.Close()
		}
		s.notifyDrops.Log(slog.LevelWarn, "queue", "notify: god is behind; message dropped", "pid", m.Pid, "queued", notifyQueue)
	}
}

// routeNotify hands a notify message to the job whose process sent it: a pid of the job, or a
// process in the group of one (a job's child speaking for it). A message from a pid god does not
// know yet waits (see unroutedNotify); anything else is dropped.
func (s *Supervisor) routeNotify(m notify.Message) {
	if s.deliverNotify(m) {
		return
	}
	if len(s.unrouted) < maxUnroutedNotify {
		s.unrouted = append(s.unrouted, unroutedNotify{m: m, until: time.Now().Add(unroutedNotifyWait)})
		s.armUnrouted()
		return
	}
	s.dropNotify(m)
}

// unroutedNotify is a notify message from a pid that is in no job's snapshot yet. A process can
// say READY=1 before god has recorded it: spawning returns after the exec, and the job's snapshot
// with the new pid reaches the loop later still (under load, tens of ms after a fast Go binary is
// ready). Dropping such a READY=1 left the process starting until the start timeout, and an
// overlap reload hung for that long before it rolled back. The message waits for the snapshot
// instead (retryUnrouted), for at most unroutedNotifyWait.
type unroutedNotify struct {
	m     notify.Message
	until time.Time
}

const (
	unroutedNotifyWait = 5 * time.Second
	maxUnroutedNotify  = 256
)

// retryUnrouted delivers waiting messages whose sender a job now owns, keeping their order, and
// drops those that waited too long. The loop calls it after each change of pidIndex.
func (s *Supervisor) retryUnrouted() {
	now := time.Now()
	keep := s.unrouted[:0]
	for _, u := range s.unrouted {
		switch {
		case s.deliverNotify(u.m):
		case now.After(u.until):
			s.dropNotify(u.m)
		default:
			keep = append(keep, u)
		}
	}
	clear(s.unrouted[len(keep):])
	s.unrouted = keep
	s.armUnrouted()
}

// deliverNotify sends m to the job owning its sender, and reports whether one does.
func (s *Supervisor) deliverNotify(m notify.Message) bool {
	name, ok := s.pidIndex[m.Pid]
	if !ok {
		if pg, err := procfs.ProcessGroup(m.Pid); err == nil {
			name, ok = s.pidIndex[pg]
		}
	}
	h := s.jobs[name]
	if !ok || h == nil {
		return false
	}
	h.j.cmds.put(jobCmd{kind: cmdNotify, notify: &m})
	return true
}

// dropNotify logs a message no job owns (at most once a second) and closes the fds it carried.
func (s *Supervisor) dropNotify(m notify.Message) {
	s.notifyDrops.Log(slog.LevelWarn, "stranger", "notify message from a process that belongs to no job: dropped", "pid", m.Pid, "fields", len(m.Fields))
	for _, f := range m.Files {
		f.Close()
	}
}

// armUnrouted wakes the loop when the oldest waiting message expires, so a message from a
// stranger is dropped and logged on time even when nothing else happens.
func (s *Supervisor) armUnrouted() {
	if len(s.unrouted) == 0 {
		s.unroutedTimer.stop()
		return
	}
	s.unroutedTimer.set(max(time.Until(s.unrouted[0].until), 0))
}
