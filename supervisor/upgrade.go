package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/upgradestate"
)

// God upgrades itself by re-executing in place (execve of the binary now at its path, same pid),
// as systemd's daemon-reexec, einhorn and HAProxy do, and not by starting a new process that takes
// the sockets over (tableflip's model):
//
//   - the jobs stay god's children: a new god process could not wait for them (they would be
//     reparented to PID 1 and their exit statuses lost);
//   - systemd keeps watching the same pid (Type=notify, WatchdogSec, MAINPID stay right);
//   - every fd god holds survives the exec when its close-on-exec flag is cleared: the jobs'
//     listening sockets, the control and notify sockets, the pipes of the jobs' output. No socket
//     is ever closed, so no connection is refused and no line is lost.
//
// The risk of re-exec is a new binary that cannot take over: the process would be gone with all
// its state. So the old image first runs the new binary as a pre-flight (preflight.go): it gets
// the state on its stdin and a nonce, and must answer on fd 3 with the nonce, the state version
// and the number of jobs it read, then exit 0. Anything else (a script that exits 0, garbage, a
// wrong nonce, a crash, a timeout) refuses the upgrade and nothing is touched. Only then does the
// old image stop its jobs' goroutines, pause the output relays at a line boundary, freeze the
// reaper (exits from then on stay zombies for the new image) and exec, with the state in a memfd
// named by GOD_UPGRADE_STATE. An exec that fails puts everything back and god goes on. A new image
// that starts but cannot take over (its state unreadable, its restore failed) execs the old image
// again, which god held open from its start (upgradestate.State.FallbackFd): same pid, same
// state, and the `god upgrade` client is told why (upgradestate.Inherited.FallBack). A new image
// that dies before it can decide anything (killed, a runtime crash) is the one case left: its
// jobs are then orphans.

// The state (internal/upgradestate) is JSON, versioned by upgradestate.Version: a new god refuses
// a state whose version it does not know (in the pre-flight, so the old god goes on). God's
// helpers (the metrics exporter, see Helper) are stopped after the pre-flight and started again
// by the new image, on the fds the state hands over.

// freezeReq stops a job's goroutine after it wrote its state, until thaw is closed (the exec
// failed) or forever (the exec replaced the process).
type freezeReq struct {
	state chan<- upgradestate.Job
	thaw  <-chan struct{}
}

// snapshot is the job's state, for the state file.
func (j *job) snapshot() upgradestate.Job {
	js := upgradestate.Job{Job: j.m.Snapshot(), Reloading: j.m.Reloading()}
	for _, s := range j.socks {
		if fd, err := fdpass.RawFd(s.file); err == nil {
			js.Sockets = append(js.Sockets, upgradestate.Socket{Spec: s.spec.String(), Fd: fd, Adopted: s.adopted})
		}
	}
	for _, s := range j.stored {
		if fd, err := fdpass.RawFd(s.file); err == nil {
			js.Stored = append(js.Stored, upgradestate.Stored{Name: s.name, Fd: fd, NoPoll: s.noPoll})
		}
	}
	if j.acc != nil {
		js.Accept = j.acc.state()
	}
	return js
}

// restoreJob rebuilds a job from its state in god's new image; it claims its processes' exits
// from the reaper. The machine goes on with every deadline the old image had armed.
func restoreJob(s *Supervisor, js upgradestate.Job) *job {
	j := newJobFor(s, js.Loader, jobstate.Restore(js.Job, s.policy(), time.Now()))
	for _, ss := range js.Sockets {
		spec, _ := fdpass.ParseSpec(ss.Spec) // checked by upgradestate.State.Check
		f := os.NewFile(uintptr(ss.Fd), ss.Spec)
		setCloexec(ss.Fd)
		j.socks = append(j.socks, &jobSocket{spec: spec, file: f, adopted: ss.Adopted})
	}
	for _, st := range js.Stored {
		setCloexec(st.Fd)
		s := storedFile{name: st.Name, file: os.NewFile(uintptr(st.Fd), st.Name), noPoll: st.NoPoll}
		j.pollStored(&s)
		j.stored = append(j.stored, s)
	}
	for _, p := range js.Procs {
		if err := s.reaper.Claim(p.Pid, j.exits.put); err != nil {
			j.log.Warn("upgrade: process not restored", "pid", p.Pid, "err", err)
		}
	}
	if js.Accept != nil {
		j.restoreAccept(js.Accept)
	}
	return j
}

func setCloexec(fd int) { unix.CloseOnExec(fd) }

// rawFdOf returns the fd number of a socket without duplicating it or changing its mode.
func rawFdOf(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// UpgradeOptions say how to re-execute.
type UpgradeOptions struct {
	Exe       string            // the binary now at god's path
	Argv      []string          // god's own argv (the new image parses the same flags)
	Control   *net.UnixListener // god's control socket, handed over open
	Reply     *net.UnixConn     // the requesting client's connection; the new image answers it
	Preflight time.Duration     // how long the new binary may take to check the state (10 s)
	// Fallback is god's own running image, opened at its start (/proc/self/exe): handed to the
	// new image, which execs it again if it cannot take over. nil: no fall-back.
	Fallback *os.File
	// Begin runs when an upgrade starts (sd_notify RELOADING=1); AfterFail when it was refused
	// or the exec failed, and god goes on as it was (READY=1). A successful exec runs neither:
	// the new image says READY=1 itself.
	Begin, AfterFail func()
}

// errUpgradeRefused wraps every reason an upgrade was refused before anything was handed over.
var errUpgradeRefused = errors.New("upgrade refused")

// Upgrade replaces god's image by opts.Exe, keeping its pid, children and fds. It returns only
// when the upgrade did not happen: an error that starts "upgrade refused" (errUpgradeRefused)
// when the pre-flight or a check refused it (nothing was touched), or another error when the
// exec itself failed (god resumed where it was).
func (s *Supervisor) Upgrade(ctx context.Context, opts UpgradeOptions) error {
	if opts.Begin != nil {
		opts.Begin()
	}
	err := s.upgrade(ctx, opts)
	if err != nil && opts.AfterFail != nil {
		opts.AfterFail()
	}
	return err
}

func (s *Supervisor) upgrade(ctx context.Context, opts UpgradeOptions) error {
	if opts.Preflight <= 0 {
		opts.Preflight = 10 * time.Second
	}
	var refuse error
	var st *upgradestate.State
	s.call(func() {
		if s.shutting {
			refuse = errors.New("god is shutting down")
			return
		}
		st = s.baseState(opts)
		// A provisional state, from jobs that go on running: the pre-flight reads it.
		for _, h := range s.jobs {
			ch := make(chan upgradestate.Job, 1)
			h.j.cmds.put(jobCmd{kind: cmdSnapshot, snap: ch})
			js := <-ch
			if js.Reloading {
				refuse = fmt.Errorf("job %s is reloading; upgrade once it is done", js.Name)
				return
			}
			st.Jobs = append(st.Jobs, js)
		}
	})
	if refuse != nil {
		return fmt.Errorf("%w: %v", errUpgradeRefused, refuse)
	}
	if err := s.preflight(ctx, opts, st); err != nil {
		return fmt.Errorf("%w: new binary %s: %v", errUpgradeRefused, opts.Exe, err)
	}
	// Helpers are stopped while the loop still runs (they may ask it for state as they drain);
	// their files stay open and go to the new image, which starts them again.
	s.stopHelpers()
	var execErr error
	s.call(func() { execErr = s.freezeAndExec(opts) })
	if execErr != nil {
		s.startHelpers()
	}
	return execErr
}

// baseState fills in what the loop owns; jobs, pipes and exits come at freeze time.
func (s *Supervisor) baseState(opts UpgradeOptions) *upgradestate.State {
	st := &upgradestate.State{Version: upgradestate.Version, Written: time.Now(), From: s.cfg.Version,
		ControlFd: -1, NotifyFd: -1, ReplyFd: -1, ControlPath: s.cfg.Socket, NotifyPath: s.notifyPath}
	st.Helpers = s.helperStates()
	if s.contain != nil {
		st.UnitSeq, st.Units = s.contain.states()
	}
	if len(st.Helpers) == 0 {
		st.Version = 1 // see upgradestate.Version
	}
	for _, lf := range s.loaders {
		st.Loaders = append(st.Loaders, upgradestate.Loader{Path: lf.path, Ino: lf.sig.Ino, Size: lf.sig.Size,
			Mtime: lf.sig.Mtime.UnixNano(), Mode: uint32(lf.sig.Mode), Jobs: lf.jobs, NotGodv1: lf.notGodv1})
	}
	return st
}

func trimOutput(b []byte) string {
	const max = 2000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// freezeAndExec runs in the loop goroutine: nothing else changes god's state meanwhile.
func (s *Supervisor) freezeAndExec(opts UpgradeOptions) error {
	st := s.baseState(opts)
	thaw := make(chan struct{})
	// 1. Jobs write their state and stop.
	frozen := 0
	for _, h := range s.jobs {
		ch := make(chan upgradestate.Job, 1)
		h.j.cmds.put(jobCmd{kind: cmdFreeze, freeze: &freezeReq{state: ch, thaw: thaw}})
		js := <-ch
		js.UserStopped = h.userStopped
		st.Jobs = append(st.Jobs, js)
		frozen++
		if js.Reloading {
			close(thaw)
			return fmt.Errorf("%w: job %s started reloading; upgrade once it is done", errUpgradeRefused, js.Name)
		}
	}
	// 2. Output relays stop at a line boundary.
	relays := s.pauseRelays()
	// 3. No more reaping: exits from now on wait for the new image.
	s.reaper.Freeze()
	undo := func(err error) error {
		s.reaper.Thaw()
		s.resumeRelays(relays)
		close(thaw)
		return err
	}
	for _, js := range st.Jobs {
		for _, pid := range js.Pids() {
			if e, ok := s.reaper.Reaped(pid); ok {
				st.Exits = append(st.Exits, upgradestate.Exit{Pid: pid, Status: uint32(e.Status), Time: e.Time})
			}
		}
	}
	for _, p := range relays {
		tag := s.outputTag(p.Fd)
		if tag == p.Meta.Pid {
			tag = 0
		}
		st.Pipes = append(st.Pipes, upgradestate.Pipe{Fd: p.Fd, Job: p.Meta.Job, Generation: p.Meta.Generation, Pid: p.Meta.Pid, Tag: tag,
			Stream: p.Meta.Stream, Format: string(p.Format), Rest: p.Rest, Cut: p.Cut})
	}
	st.Logs = s.hub.Tail(nil, 0)
	var keep []int
	st.FallbackFd = -1
	if opts.Control != nil {
		fd, err := rawFdOf(opts.Control)
		if err != nil {
			return undo(err)
		}
		st.ControlFd = fd
	}
	if opts.Reply != nil {
		if fd, err := rawFdOf(opts.Reply); err == nil {
			st.ReplyFd = fd
		}
	}
	if s.notify != nil {
		if rc, err := s.notify.RawConn(); err == nil {
			_ = rc.Control(func(u uintptr) { st.NotifyFd = int(u) })
		}
	}
	st.Inherited = s.inherited.fds()
	keep = st.Fds()
	if opts.Fallback != nil {
		// The image that runs now, for the new one to exec again if it cannot take over.
		if fd, err := fdpass.RawFd(opts.Fallback); err == nil {
			st.FallbackFd = fd
			keep = append(keep, fd)
		}
	}
	data, err := json.Marshal(st)
	if err != nil {
		return undo(err)
	}
	mfd, err := upgradestate.Memfd(data)
	if err != nil {
		return undo(err)
	}
	if err := upgradestate.KeepOpen(keep); err != nil {
		unix.Close(mfd)
		return undo(err)
	}
	env := upgradestate.ExecEnv(mfd, "")
	s.log.Info("upgrading: re-executing", "exe", opts.Exe, "jobs", frozen, "pipes", len(st.Pipes), "state_bytes", len(data))
	// Job lines still held in the log buffer would die with this image: the relays flushed when
	// they paused, and this makes sure of it.
	_ = s.hub.Flush()
	if fs := s.hub.Files(); fs != nil {
		fs.Sync(2 * time.Second) // the new image appends to the same files, after these lines
	}
	err = syscall.Exec(opts.Exe, append([]string{opts.Exe}, opts.Argv[1:]...), env)
	// Still here: the exec failed. Put everything back as it was.
	unix.Close(mfd)
	upgradestate.CloseOnExec(keep)
	s.log.Error("upgrade: exec failed; god goes on as it was", "exe", opts.Exe, "err", err)
	return undo(fmt.Errorf("exec %s: %w", opts.Exe, err))
}

// fds lists the inherited sockets not taken by any job, for the new image.
func (in *inheritedSockets) fds() map[string][]int {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string][]int{}
	for name, files := range in.files {
		for _, f := range files {
			if fd, err := fdpass.RawFd(f); err == nil {
				out[name] = append(out[name], fd)
			}
		}
	}
	return out
}
