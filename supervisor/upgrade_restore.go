package supervisor

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/loaderpool"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"

	"github.com/emielm/watchgod/internal/notify"
)

// envUpgradeFailed is set when an old image runs again because the new one could not take
// over: it says why, for the `god upgrade` client and the log.
const envUpgradeFailed = "GOD_UPGRADE_FAILED"

// InheritedState is what god's previous image left across the re-exec.
type InheritedState struct {
	State *UpgradeState // nil when it could not be read
	// Failed is set in an old image that runs again after its new image gave up: why.
	Failed string
	raw    []byte
}

// TakeInheritedState reads the state god's old image left in the memfd named by
// GOD_UPGRADE_STATE, and unsets the variables (no job must see them). It returns nil, nil when
// god was not re-executed. When the state cannot be read, it returns what it has with the error,
// so that the caller can FallBack to the image that wrote it.
func TakeInheritedState() (*InheritedState, error) {
	v := os.Getenv(envUpgradeState)
	if v == "" {
		return nil, nil
	}
	os.Unsetenv(envUpgradeState)
	in := &InheritedState{Failed: os.Getenv(envUpgradeFailed)}
	os.Unsetenv(envUpgradeFailed)
	var fd int
	if _, err := fmt.Sscanf(v, "%d", &fd); err != nil || fd < 3 {
		return in, fmt.Errorf("%s=%q: not an fd", envUpgradeState, v)
	}
	f := os.NewFile(uintptr(fd), "god-upgrade-state")
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return in, fmt.Errorf("upgrade state: %w", err)
	}
	in.raw = raw
	in.State, err = ReadUpgradeState(bytes.NewReader(raw))
	return in, err
}

// FallBack is for a new image that cannot take over (its state unreadable, its restore failed):
// it execs the image that wrote the state again, same pid, with the same state and fds, and says
// why in GOD_UPGRADE_FAILED. It returns only when that is impossible (an older god left no image
// to go back to, or the exec failed): god then has nothing left but to exit.
func (in *InheritedState) FallBack(why error) error {
	if in == nil || in.State == nil || in.State.FallbackFd < 3 || in.Failed != "" {
		// No image to go back to; or this is it, run again, and failing too: no loop.
		return fmt.Errorf("no image to fall back to: %w", why)
	}
	st := in.State
	for _, fd := range append(st.fds(), st.FallbackFd) {
		if fd >= 0 {
			if err := clearCloexec(fd); err != nil {
				return fmt.Errorf("fall back: fd %d: %w (after: %v)", fd, err, why)
			}
		}
	}
	mfd, err := unix.MemfdCreate("god-upgrade-state", 0)
	if err != nil {
		return fmt.Errorf("fall back: memfd: %w (after: %v)", err, why)
	}
	if _, err := unix.Write(mfd, in.raw); err != nil {
		return fmt.Errorf("fall back: memfd: %w (after: %v)", err, why)
	}
	if _, err := unix.Seek(mfd, 0, io.SeekStart); err != nil {
		return fmt.Errorf("fall back: memfd: %w (after: %v)", err, why)
	}
	env := append(baseEnvKeep(), envUpgradeState+"="+strconv.Itoa(mfd), envUpgradeFailed+"="+why.Error())
	// The image is open as fd FallbackFd: /proc/self/fd/N execs it even when its file was
	// replaced or removed since.
	err = syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", st.FallbackFd), os.Args, env)
	return fmt.Errorf("fall back: exec the old image: %w (after: %v)", err, why)
}

// Restore prepares god's new image from the old image's state: call it instead of New, then Run.
// The returned reaper already waits for every process the state names.
func Restore(cfg Config, in *InheritedState) (*Supervisor, *reaper.Reaper, error) {
	st := in.State
	s, err := New(cfg)
	if err != nil {
		return nil, nil, err
	}
	var pids []int
	for _, js := range st.Jobs {
		pids = append(pids, js.pids()...)
	}
	var pending []jobstate.Exit
	for _, e := range st.Exits {
		pending = append(pending, jobstate.Exit{Pid: e.Pid, Status: syscall.WaitStatus(e.Status), Time: e.Time})
	}
	r := reaper.NewRestored(s.log, pids, pending)
	s.reaper = r
	s.restoredState = st
	s.upgradeFailed = in.Failed
	st.closeUntakenHelperFiles() // cfg.Helpers took theirs (TakeHelperFiles) before
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
func ControlListenerFrom(st *UpgradeState) (*net.UnixListener, error) {
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
