package supervisor

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/loaderpool"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"

	"github.com/emielm/watchgod/internal/notify"
)

// Restore prepares god's new image from the old image's state: call it instead of New, then Run.
// The returned reaper already waits for every process the state names.
func Restore(cfg Config, in *upgradestate.Inherited) (*Supervisor, *reaper.Reaper, error) {
	st := in.State
	s, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	var pids []int
	for _, js := range st.Jobs {
		pids = append(pids, js.Pids()...)
	}
	var pending []jobstate.Exit
	for _, e := range st.Exits {
		pending = append(pending, jobstate.Exit{Pid: e.Pid, Status: syscall.WaitStatus(e.Status), Time: e.Time})
	}
	r := reaper.NewRestored(s.log, pids, pending)
	s.reaper = r
	s.restoredState = st
	s.upgradeFailed = in.Failed
	st.CloseUntakenHelperFiles() // cfg.Helpers took theirs (TakeHelperFiles) before
	if len(st.Inherited) > 0 {
		files := map[string][]*os.File{}
		for name, fds := range st.Inherited {
			for _, fd := range fds {
				setCloexec(fd)
				files[name] = append(files[name], os.NewFile(uintptr(fd), name))
			}
		}
		s.inherited = &inheritedSockets{files: files}
	}
	return s, r, nil
}

// ControlListenerFrom returns the control socket the old image handed over, or nil.
func ControlListenerFrom(st *upgradestate.State) (*net.UnixListener, error) {
	if st == nil || st.ControlFd < 0 {
		return nil, nil
	}
	setCloexec(st.ControlFd)
	f := os.NewFile(uintptr(st.ControlFd), st.ControlPath)
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("control socket from the old image: %w", err)
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		ln.Close()
		return nil, fmt.Errorf("control socket from the old image: not a unix socket")
	}
	ul.SetUnlinkOnClose(true)
	return ul, nil
}

// restore runs at the start of Run in a new image: loaders, jobs, output relays and the
// upgrade client's answer.
func (s *Supervisor) restore() {
	st := s.restoredState
	for _, ls := range st.Loaders {
		lf := &loaderFile{path: ls.Path, jobs: ls.Jobs, loaded: !ls.NotGodv1, notGodv1: ls.NotGodv1,
			sig: loaderpool.FileSig{Ino: ls.Ino, Size: ls.Size, Mtime: time.Unix(0, ls.Mtime), Mode: os.FileMode(ls.Mode)}}
		lf.pool = s.newPool(ls.Path)
		s.pools.Store(ls.Path, lf.pool)
		s.loaders[ls.Path] = lf
	}
	s.hub.Restore(st.Logs)
	for _, js := range st.Jobs {
		s.applyLogLimits(js.Def)
		j := restoreJob(s, js)
		h := &jobHandle{j: j, loader: js.Loader, def: js.Def, state: js.State, status: j.m.Status(nil), userStopped: js.UserStopped}
		s.jobs[js.Name] = h
		for _, p := range js.Procs {
			s.indexPid(p.Pid, js.Name)
		}
		go j.run()
	}
	for _, p := range st.Pipes {
		setCloexec(p.Fd)
		meta := joblog.Line{Job: p.Job, Generation: p.Generation, Pid: p.Pid, Stream: p.Stream}
		s.startRelay(joblog.Pipe{Fd: p.Fd, Meta: meta, Format: joblog.Format(p.Format), Rest: p.Rest, Cut: p.Cut}, p.Tag)
	}
	s.checkDeps()
	if s.upgradeFailed != "" {
		s.log.Error("upgrade failed: the new image could not take over; god runs its old image again", "why", s.upgradeFailed,
			"jobs", len(st.Jobs), "handover", time.Since(st.Written).Round(time.Microsecond).String())
	} else {
		s.log.Info("upgraded: god runs its new image", "from", st.From, "version", s.cfg.Version, "jobs", len(st.Jobs),
			"pipes", len(st.Pipes), "handover", time.Since(st.Written).Round(time.Microsecond).String())
	}
	if st.ReplyFd >= 0 {
		setCloexec(st.ReplyFd)
		f := os.NewFile(uintptr(st.ReplyFd), "upgrade-client")
		go func() {
			defer f.Close()
			res := control.Response{V: control.Version, Type: control.TypeResult, OK: true,
				Message: fmt.Sprintf("upgraded from %s to %s (pid %d, %d jobs kept, hand-over %s)", st.From, s.cfg.Version,
					os.Getpid(), len(st.Jobs), time.Since(st.Written).Round(time.Microsecond))}
			if s.upgradeFailed != "" {
				res.OK = false
				res.Error = fmt.Sprintf("upgrade failed: the new image could not take over (%s); god went back to %s (pid %d, %d jobs kept)",
					s.upgradeFailed, s.cfg.Version, os.Getpid(), len(st.Jobs))
				res.Message = ""
			}
			if line, err := control.EncodeResponse(res); err == nil {
				_ = f.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, _ = f.Write(line)
			}
		}()
	}
}

// notifyFromState takes the notify socket over from the old image.
func (s *Supervisor) notifyFromState() (*notify.Server, error) {
	st := s.restoredState
	if st == nil || st.NotifyFd < 0 {
		return nil, nil
	}
	setCloexec(st.NotifyFd)
	return notify.FromFile(os.NewFile(uintptr(st.NotifyFd), st.NotifyPath), st.NotifyPath)
}
