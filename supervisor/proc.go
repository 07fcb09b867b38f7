package supervisor

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/procshim"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// spawnSpec is everything a job process is started with.
type spawnSpec struct {
	job        string
	generation int
	argv       []string
	env        []string // complete environment
	dir        string
	extraFiles []uintptr // fds 3.. (sockets)
	listenPid  bool      // set LISTEN_PID to the process's own pid (it gets sockets)
	format     joblog.Format
	settings   procSettings         // identity, umask, limits
	cgroup     []loader.CgroupLimit // written into the process's cgroup before it starts
	exited     func(jobstate.Exit)  // called once by the reaper; must not block
	// conn, when set, is an accepted connection: the process's stdin and stdout (accept jobs);
	// its stdout is then not relayed to the log.
	conn uintptr
	// stderr is where fd 2 goes: its own pipe, fd 1 (stdout's pipe, or the connection), or
	// /dev/null.
	stderr loader.StderrMode
}

// spawnProcess starts one job process: in its own process group (so its whole tree can be signalled),
// stdin from /dev/null, stdout and stderr through pipes whose every line becomes a log record
// (stderr through stdout's pipe or to /dev/null when the job's stderr property says so).
func (s *Supervisor) spawnProcess(sp spawnSpec) (int, error) {
	s.spawnSlots <- struct{}{}
	defer func() { <-s.spawnSlots }()
	s.starts.Add(1)
	path, err := lookPath(sp.argv[0], sp.dir, sp.env)
	if err != nil {
		return 0, err
	}
	argv := sp.argv
	var cred *syscall.Credential
	sp.settings.limits = jobNofile(sp.settings.limits) // the open-files limit god was started with
	if sp.settings.needShim() {
		// umask and limits are set by god's own binary between fork and exec, before it
		// switches to the job's user (only root raises a hard limit); LISTEN_PID as well.
		self, err := os.Executable()
		if err != nil {
			return 0, fmt.Errorf("job %s: no path to god for the umask and limit shim: %w", sp.job, err)
		}
		var item string
		argv, item = procshim.Command(self, sp.settings.shimSpec(path, sp.listenPid), sp.argv)
		sp.env = mergeEnv(sp.env, item)
		path = self
	} else if c := sp.settings.cred; c != nil {
		cred = &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
	}
	if sp.listenPid && !sp.settings.needShim() {
		// LISTEN_PID must be the job's own pid, known only after fork: a shell sets it and execs
		// the job in place (same pid), see fdpass.ShimArgv.
		argv = fdpass.ShimArgv(append([]string{path}, sp.argv[1:]...))
		path = fdpass.ShimShell
		if executable(path) != nil {
			self, err := os.Executable()
			if err != nil {
				return 0, fmt.Errorf("no %s and no path to god for the LISTEN_PID shim: %w", fdpass.ShimShell, err)
			}
			argv = fdpass.GoShimArgv(self, append([]string{path}, sp.argv[1:]...))
			sp.env = mergeEnv(sp.env, fdpass.ShimEnv+"=1")
			path = self
		}
	}
	// The pipes are raw fds: the read ends go to the relay mux (which owns and closes them), the
	// write ends to the child. An *os.File would register the read end with Go's poller as well.
	// stdout has a pipe unless it is an accept job's connection; stderr one of its own only by
	// default (loader.StderrMode): merged, fd 2 is whatever fd 1 is, so that the job's writes to
	// both keep their order and god holds one pipe less.
	outP, errP := [2]int{-1, -1}, [2]int{-1, -1}
	closePipes := func(ends ...int) {
		for _, fd := range ends {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
	if sp.conn == 0 {
		if err := unix.Pipe2(outP[:], unix.O_CLOEXEC); err != nil {
			return 0, fmt.Errorf("job %s: stdout pipe: %w", sp.job, err)
		}
	}
	if sp.stderr != loader.StderrStdout && sp.stderr != loader.StderrNull {
		sp.stderr = loader.StderrPipe // a mode this image does not know: the default
	}
	if sp.stderr == loader.StderrPipe {
		if err := unix.Pipe2(errP[:], unix.O_CLOEXEC); err != nil {
			closePipes(outP[0], outP[1])
			return 0, fmt.Errorf("job %s: stderr pipe: %w", sp.job, err)
		}
	}
	files := append([]uintptr{s.devNull.Fd(), uintptr(outP[1]), uintptr(errP[1])}, sp.extraFiles...)
	if sp.conn != 0 {
		files[0], files[1] = sp.conn, sp.conn
	}
	switch sp.stderr {
	case loader.StderrStdout:
		files[2] = files[1]
	case loader.StderrNull:
		files[2] = s.devNull.Fd()
	}
	place, err := s.contain.prepare(sp.job, sp.cgroup)
	if err != nil {
		closePipes(outP[0], outP[1], errP[0], errP[1])
		return 0, err
	}
	env := mergeEnv(sp.env, envUnit+"="+strconv.FormatUint(place.tag, 10))
	pid, err := s.reaper.StartFunc(reaper.Attr{
		Path: path, Argv: argv, Env: env, Dir: sp.dir, Files: files, Setpgid: true, CgroupFD: place.fd,
		Credential: cred,
	}, sp.exited)
	closePipes(outP[1], errP[1])
	if err != nil {
		s.contain.abandon(place)
		closePipes(outP[0], errP[0])
		return 0, err
	}
	s.contain.placed(place, pid)
	meta := joblog.Line{Job: sp.job, Generation: sp.generation, Pid: pid}
	if outP[0] >= 0 {
		meta.Stream = joblog.StreamStdout
		s.startRelay(joblog.Pipe{Fd: outP[0], Meta: meta, Format: sp.format}, pid)
	}
	if errP[0] >= 0 {
		meta.Stream = joblog.StreamStderr
		s.startRelay(joblog.Pipe{Fd: errP[0], Meta: meta, Format: sp.format}, pid)
	}
	return pid, nil
}

// Starts is how many processes god tried to start so far (jobs', connections', helpers'): a
// counter that stops moving once god has settled after start-up (cmd/god's trim waits for it).
func (s *Supervisor) Starts() uint64 { return s.starts.Load() }

// startRelay relays a new pipe of a process (or one god's old image handed over) until every
// writer closed it: its lines go to the hub, counted, and are written to god's log once per
// round of the relay mux. The pipe counts for waitOutput and waitRelays until it ends.
func (s *Supervisor) startRelay(p joblog.Pipe, tagPid int) {
	tag := &pipeTag{job: p.Meta.Job, fd: p.Fd}
	tag.pid.Store(int64(cmp.Or(tagPid, p.Meta.Pid)))
	s.relayMu.Lock()
	s.relayPids[p.Meta.Pid]++
	s.relayTags[p.Fd] = tag
	s.relayMu.Unlock()
	s.relays.Add(1)
	meta := p.Meta
	deliver := s.metrics.countLines(meta.Job, meta.Stream, s.hub.AddHeldLines)
	p.DeliverLines = func(ls []joblog.Line) {
		pid := int(tag.pid.Load())
		for i := range ls {
			ls[i].Pid = pid
		}
		deliver(ls)
	}
	p.Done = func(err error) {
		s.hub.Ended(meta.Job) // its last lines to its log file now
		s.relayMu.Lock()
		if s.relayTags[tag.fd] == tag { // the fd may be a newer pipe's already
			delete(s.relayTags, tag.fd)
		}
		s.relayMu.Unlock()
		s.relayEnded(meta, err)
		s.fdsFreed() // the mux closed the pipe's read end
	}
	s.addRelay(p)
}

// pipeTag is the pid a relayed pipe's lines are tagged with: the process started with the pipe,
// until a successor that inherited it (MAINPID=, pid-file: tableflip and nginx-style upgrades)
// is followed; from then on god knows the successor writes there, and its lines carry its pid.
type pipeTag struct {
	job string
	fd  int // the pipe's read end, while the mux relays it
	pid atomic.Int64
}

// retagOutput tags the lines of job's pipes tagged with pid from (the process a successor took
// over from) with pid to (the successor, which inherited its stdout and stderr).
func (s *Supervisor) retagOutput(job string, from, to int) {
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	for _, t := range s.relayTags {
		if t.job == job && t.pid.Load() == int64(from) {
			t.pid.Store(int64(to))
		}
	}
}

// outputTag is the pid the lines of the pipe read through fd are tagged with, 0 if none.
func (s *Supervisor) outputTag(fd int) int {
	s.relayMu.Lock()
	defer s.relayMu.Unlock()
	if t := s.relayTags[fd]; t != nil {
		return int(t.pid.Load())
	}
	return 0
}

// addRelay hands p to the mux; a pipe the mux refused (it closed the fd) has ended.
func (s *Supervisor) addRelay(p joblog.Pipe) {
	err := joblog.ErrMuxClosed
	if s.relayMux != nil {
		err = s.relayMux.Add(p)
	} else {
		unix.Close(p.Fd)
	}
	if err != nil {
		p.Done(err)
	}
}

// relayEnded is called once per pipe, when it reached its end (every writer closed it, its
// lines relayed and flushed), failed, or god stopped relaying: it wakes those waiting for the
// process's output.
func (s *Supervisor) relayEnded(meta joblog.Line, err error) {
	s.relayMu.Lock()
	if s.relayPids[meta.Pid]--; s.relayPids[meta.Pid] <= 0 {
		delete(s.relayPids, meta.Pid)
		for _, w := range s.relayWaiters[meta.Pid] {
			close(w)
		}
		delete(s.relayWaiters, meta.Pid)
	}
	s.relayMu.Unlock()
	s.relays.Done()
	if err != nil && !errors.Is(err, joblog.ErrMuxClosed) {
		s.log.Warn("log relay", "job", meta.Job, "pid", meta.Pid, "stream", meta.Stream, "err", err)
	}
}

// waitOutput waits until every line the given processes wrote has been relayed (their pipes are
// at end of file), or timeout: an error that quotes a process's last words must not be composed
// before they arrived. A pipe held open by a surviving child ends the wait at timeout.
func (s *Supervisor) waitOutput(pids map[int]bool, timeout time.Duration) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for pid := range pids {
		s.relayMu.Lock()
		if s.relayPids[pid] == 0 {
			s.relayMu.Unlock()
			continue
		}
		w := make(chan struct{})
		s.relayWaiters[pid] = append(s.relayWaiters[pid], w)
		s.relayMu.Unlock()
		select {
		case <-w:
		case <-deadline.C:
			return
		}
	}
}

// pauseRelays stops relaying every pipe at a line boundary and returns them, each with its fd
// (open, for god's new image) and its unfinished line. They still count as being relayed
// (relayPids, relays): resumeRelays or the new image go on with them.
func (s *Supervisor) pauseRelays() []joblog.Pipe {
	if s.relayMux == nil {
		return nil
	}
	return s.relayMux.Pause()
}

// resumeRelays relays paused pipes again, from their unfinished lines (god's re-exec failed).
func (s *Supervisor) resumeRelays(list []joblog.Pipe) {
	for _, p := range list {
		s.addRelay(p)
	}
}

// lookPath resolves argv[0] the way a shell would, but with the job's own PATH and directory.
func lookPath(name, dir string, env []string) (string, error) {
	if name == "" {
		return "", errors.New("empty command")
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", err
		}
		return name, nil
	}
	pathEnv := os.Getenv("PATH")
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, name)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return &fs.PathError{Op: "exec", Path: p, Err: syscall.EISDIR}
	}
	if fi.Mode()&0o111 == 0 {
		return &fs.PathError{Op: "exec", Path: p, Err: syscall.EACCES}
	}
	return nil
}

// controlledEnv lists the variables god sets for its jobs itself; a job never inherits god's own.
var controlledEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID",
	"LISTEN_FDNAMES", "GOD_JOB", "GOD_GENERATION", "GOD_INSTANCE", "GOD_UPGRADE_STATE", "JOURNAL_STREAM",
	"INVOCATION_ID", "MAINPID", "REMOTE_ADDR", "REMOTE_PORT", idleExitEnv}

// baseEnv is god's environment less what belongs to god alone (systemd's notify, watchdog and
// socket-activation variables, upgrade state).
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if isControlled(k) {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func isControlled(k string) bool {
	for _, c := range controlledEnv {
		if k == c {
			return true
		}
	}
	return false
}

// mergeEnv overlays items (KEY=VALUE) on base; later items win.
func mergeEnv(base []string, items ...string) []string {
	idx := make(map[string]int, len(base)+len(items))
	out := make([]string, 0, len(base)+len(items))
	for _, kv := range append(base[:len(base):len(base)], items...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}
