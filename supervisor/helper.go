package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/loader"
)

// Helper is a program god runs for itself, beside its jobs. The Prometheus exporter of
// `god --metrics` (cmd/god-metrics) is one: it keeps an HTTP server and its libraries out of
// god's process, so god's memory stays small and a scrape flood or a bug in the exporter cannot
// harm the supervisor.
//
// A helper is no job: no loader defines it, god status does not list it, it has no check and
// no states. god starts it when Run begins (after an upgraded god has restored its jobs),
// restarts it with back-off (Config.Backoff, without a limit) whenever it exits, and stops it
// (SIGTERM, then SIGKILL after Grace) before Run returns and before god re-executes itself for an
// upgrade; the new image starts it again. Like every child of god it is started and waited for
// by god's reaper (internal/reaper), never by a wait of its own.
type Helper struct {
	// Name identifies the helper in god's log and in the upgrade state ("god-metrics"). It must
	// be unique among the helpers of one god.
	Name string
	Path string   // the executable
	Args []string // argv[1:]
	// Env is added to the environment god gives its jobs: god's own, without systemd's
	// variables (NOTIFY_SOCKET, LISTEN_*, WATCHDOG_*, JOURNAL_STREAM) and god's upgrade state.
	Env []string
	// Files are the helper's fds 3, 4, ... god keeps them open for as long as it runs, through
	// the helper's restarts and god's upgrades (the old image hands them to the new one, see
	// upgradestate.State.Helpers, TakeHelperFiles), and closes them when Run returns. A listening
	// socket among them never closes while god runs: connections that arrive while no helper
	// runs wait in its queue.
	Files []*os.File
	// Stdout and Stderr are the helper's fds 1 and 2; nil means /dev/null. Its stdin is
	// /dev/null.
	Stdout, Stderr *os.File
	// Grace is how long the helper has to exit after SIGTERM before SIGKILL; 0 means a job's
	// default stop (loader.DefaultStop: 5 s).
	Grace time.Duration
}

// helperSet runs Config.Helpers. Its lock orders starts and stops, which come from Run and from
// the goroutine of an upgrade.
type helperSet struct {
	mu      sync.Mutex
	running []*helperRun
	closed  bool // Run has ended: nothing starts any more
}

// startHelpers starts every helper of the configuration, unless they run already or Run has
// ended. Run calls it before its loop, and an upgrade that did not happen calls it again.
func (s *Supervisor) startHelpers() {
	s.helpers.mu.Lock()
	defer s.helpers.mu.Unlock()
	if s.helpers.closed || len(s.helpers.running) > 0 {
		return
	}
	for _, h := range s.cfg.Helpers {
		r := &helperRun{h: h, s: s, log: s.log.With("helper", h.Name), stop: make(chan struct{}), done: make(chan struct{})}
		s.helpers.running = append(s.helpers.running, r)
		go r.run()
	}
}

// stopHelpers stops every running helper and returns once each has exited (and was reaped).
// Their files stay open: an upgrade hands them to the new image.
func (s *Supervisor) stopHelpers() {
	s.helpers.mu.Lock()
	defer s.helpers.mu.Unlock()
	s.stopHelpersLocked()
}

func (s *Supervisor) stopHelpersLocked() {
	for _, r := range s.helpers.running {
		close(r.stop)
	}
	for _, r := range s.helpers.running {
		<-r.done
	}
	s.helpers.running = nil
}

// closeHelpers is the end of Run: it stops the helpers for good and closes their files.
func (s *Supervisor) closeHelpers() {
	s.helpers.mu.Lock()
	defer s.helpers.mu.Unlock()
	s.stopHelpersLocked()
	if s.helpers.closed {
		return
	}
	s.helpers.closed = true
	for _, h := range s.cfg.Helpers {
		for _, f := range h.Files {
			f.Close()
		}
	}
}

// helperRun supervises one helper: its goroutine starts the process, waits for its exit through
// the reaper and starts it again, until stop is closed.
type helperRun struct {
	h    Helper
	s    *Supervisor
	log  *slog.Logger
	stop chan struct{} // closed: stop the helper and return
	done chan struct{} // closed once the helper is down and run has returned
}

// run is the helper's life: start, wait, back off, start again. A start that fails (no such
// file, not executable) is retried with the same back-off as an exit.
func (r *helperRun) run() {
	defer close(r.done)
	fails := 0
	for {
		began := time.Now()
		pid, exitc, err := r.start()
		if err == nil {
			r.log.Info("helper started", "pid", pid, "path", r.h.Path)
			select {
			case e := <-exitc:
				err = fmt.Errorf("helper %s (pid %d) exited: %s", r.h.Name, pid, e)
			case <-r.stop:
				r.terminate(pid, exitc)
				return
			}
		}
		if time.Since(began) >= r.s.cfg.Backoff.MinUptime {
			fails = 0
		}
		fails++
		delay := r.s.cfg.Backoff.Delay(fails)
		r.log.Error("helper ended; restarting", "err", err, "restart_in", delay.String())
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.stop:
			t.Stop()
			return
		}
	}
}

// start forks the helper through the reaper with its fds 0..2 and Files as 3, 4, ... The fds
// are read without os.File.Fd, which would put the shared socket in blocking mode.
func (r *helperRun) start() (int, <-chan jobstate.Exit, error) {
	fd := func(f *os.File) (uintptr, error) {
		if f == nil {
			f = r.s.devNull
		}
		n, err := fdpass.RawFd(f)
		return uintptr(n), err
	}
	var files []uintptr
	for _, f := range append([]*os.File{nil, r.h.Stdout, r.h.Stderr}, r.h.Files...) {
		n, err := fd(f)
		if err != nil {
			return 0, nil, fmt.Errorf("helper %s: %w", r.h.Name, err)
		}
		files = append(files, n)
	}
	pid, exitc, err := r.s.reaper.Start(reaper.Attr{
		Path:    r.h.Path,
		Argv:    append([]string{r.h.Path}, r.h.Args...),
		Env:     mergeEnv(r.s.baseEnv, r.h.Env...),
		Files:   files,
		Setpgid: true, // its own group: a Ctrl-C meant for god reaches it only through god
	})
	if err != nil {
		return 0, nil, fmt.Errorf("helper %s: start %s: %w", r.h.Name, r.h.Path, err)
	}
	return pid, exitc, nil
}

// terminate stops the helper: SIGTERM, then SIGKILL after its grace. It returns once the reaper
// has reaped it, or after a last bounded wait that only a process stuck in the kernel outlasts.
func (r *helperRun) terminate(pid int, exitc <-chan jobstate.Exit) {
	grace := r.h.Grace
	if grace <= 0 {
		grace = loader.DefaultStop.Timeout
	}
	_ = r.s.reaper.Signal(pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case e := <-exitc:
		r.log.Info("helper stopped", "pid", pid, "exit", e.String())
		return
	case <-t.C:
	}
	r.log.Warn("helper still runs after SIGTERM; killing it", "pid", pid, "grace", grace.String())
	_ = r.s.reaper.Signal(pid, syscall.SIGKILL)
	t.Reset(5 * time.Second)
	select {
	case e := <-exitc:
		r.log.Info("helper stopped", "pid", pid, "exit", e.String())
	case <-t.C:
		r.log.Error("helper still runs after SIGKILL", "pid", pid)
	}
}

// helperStates lists the helpers' files for the upgrade state. A helper whose files are closed
// already (god is shutting down) is left out: the new image opens them again.
func (s *Supervisor) helperStates() []upgradestate.Helper {
	var out []upgradestate.Helper
	for _, h := range s.cfg.Helpers {
		hs := upgradestate.Helper{Name: h.Name, Fds: []int{}}
		var err error
		for _, f := range h.Files {
			var fd int
			if fd, err = fdpass.RawFd(f); err != nil {
				break
			}
			hs.Fds = append(hs.Fds, fd)
		}
		if err != nil {
			s.log.Warn("upgrade: helper's files are not handed over", "helper", h.Name, "err", err)
			continue
		}
		out = append(out, hs)
	}
	return out
}
