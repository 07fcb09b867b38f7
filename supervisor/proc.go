package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/fdpass"
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
	exited     func(Exit) // called once by the reaper; must not block
}

// spawnProcess starts one job process: in its own process group (so its whole tree can be signalled),
// stdin from /dev/null, stdout and stderr through pipes whose every line becomes a log record.
func (s *Supervisor) spawnProcess(sp spawnSpec) (int, error) {
	path, err := lookPath(sp.argv[0], sp.dir, sp.env)
	if err != nil {
		return 0, err
	}
	argv := sp.argv
	if sp.listenPid {
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
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return 0, err
	}
	files := append([]uintptr{s.devNull.Fd(), outW.Fd(), errW.Fd()}, sp.extraFiles...)
	pid, err := s.reaper.StartFunc(ProcAttr{
		Path: path, Argv: argv, Env: sp.env, Dir: sp.dir, Files: files, Setpgid: true,
	}, sp.exited)
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return 0, err
	}
	meta := joblog.Line{Job: sp.job, Generation: sp.generation, Pid: pid}
	s.relay(outR, meta, "stdout", sp.format)
	s.relay(errR, meta, "stderr", sp.format)
	return pid, nil
}

// relay turns the lines of one pipe into records until the last writer closes it.
func (s *Supervisor) relay(r *os.File, meta joblog.Line, stream string, format joblog.Format) {
	meta.Stream = stream
	s.startRelay(&pipeRelay{f: r, meta: meta, format: format})
}

// pipeRelay is one job output pipe being read. God re-executing itself pauses every relay at a
// line boundary and hands the pipe, with the unfinished line, to its new image.
type pipeRelay struct {
	f      *os.File
	meta   joblog.Line
	format joblog.Format
	prefix []byte        // start of a line carried over from a paused relay
	rest   []byte        // set when paused
	done   chan struct{} // closed when the relay returned (EOF, error or pause)
	paused bool
}

func (s *Supervisor) startRelay(pr *pipeRelay) {
	pr.done = make(chan struct{})
	s.relayMu.Lock()
	s.relaySet[pr] = true
	s.relayPids[pr.meta.Pid]++
	s.relayMu.Unlock()
	s.relays.Add(1)
	go func() {
		defer s.relays.Done()
		// Lines are held in god's log buffer and written once per read of the pipe (flush).
		add := s.metrics.countLines(pr.meta.Job, pr.meta.Stream, s.hub.AddHeld)
		rest, err := joblog.RelayPausable(pr.f, pr.prefix, pr.meta, pr.format, add, func() { _ = s.hub.Flush() })
		if errors.Is(err, joblog.ErrPaused) {
			pr.rest, pr.paused = rest, true
			close(pr.done)
			return
		}
		s.relayMu.Lock()
		delete(s.relaySet, pr)
		if s.relayPids[pr.meta.Pid]--; s.relayPids[pr.meta.Pid] <= 0 {
			delete(s.relayPids, pr.meta.Pid)
			for _, w := range s.relayWaiters[pr.meta.Pid] {
				close(w)
			}
			delete(s.relayWaiters, pr.meta.Pid)
		}
		s.relayMu.Unlock()
		pr.f.Close()
		close(pr.done)
		if err != nil {
			s.log.Warn("log relay", "job", pr.meta.Job, "pid", pr.meta.Pid, "stream", pr.meta.Stream, "err", err)
		}
	}()
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

// pauseRelays stops every relay at a line boundary and returns those still holding a pipe.
func (s *Supervisor) pauseRelays() []*pipeRelay {
	s.relayMu.Lock()
	list := make([]*pipeRelay, 0, len(s.relaySet))
	for pr := range s.relaySet {
		list = append(list, pr)
		_ = pr.f.SetReadDeadline(time.Unix(1, 0))
	}
	s.relayMu.Unlock()
	var paused []*pipeRelay
	for _, pr := range list {
		<-pr.done
		if pr.paused {
			paused = append(paused, pr)
		}
	}
	return paused
}

// resumeRelays restarts paused relays (god's re-exec failed).
func (s *Supervisor) resumeRelays(list []*pipeRelay) {
	for _, pr := range list {
		_ = pr.f.SetReadDeadline(time.Time{})
		pr.prefix, pr.rest, pr.paused = pr.rest, nil, false
		s.startRelay(pr)
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
	"INVOCATION_ID", "MAINPID"}

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
