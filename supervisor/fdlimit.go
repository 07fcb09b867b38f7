package supervisor

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/loader"
)

// Open files. Go raises its own soft RLIMIT_NOFILE to the hard limit at start-up (syscall's
// init) and puts the original back in every child it starts with syscall.ForkExec or Exec, as
// long as the process never calls syscall.Setrlimit for it: so the jobs god starts (reaper.go)
// and those it starts through its shim (internal/procshim) get the limit god was started with,
// while god has room for many jobs' pipes.
//
// When that hard limit is too low for the jobs god was given, god raises it too if it may (as
// root), as systemd does for itself: an fd for each output pipe of each process a job may run
// (jobFDs; the read ends god holds while they run) and fdsBase for god itself. Go's restore in
// the child no longer applies then (it only restores while the limit is still the one Go set),
// so jobs get the limit god was started with from the shim instead.
//
// When fds run out anyway, a job that cannot start because of it is not to blame: god says so
// once per shortage with the numbers, not once per attempt (noteNoFDs).

// fdsBase is god's own fds: control connections, loaders, sockets, notify, log files, and the
// starts under way (at most spawnConcurrency at once, each with its pipes' write ends and Go's
// exec status pipe for a moment).
const fdsBase = 1024

// jobFDs is how many fds a job's output pipes hold in god when all its processes run: its
// instances, or an accept job's connection processes (whose stdout is their connection), each
// with the pipes of its stderr mode (loader.StderrMode.Pipes): 2 for a job of one process by
// default (stdout and stderr), 1 when its stderr shares stdout's pipe or goes to /dev/null.
func jobFDs(def *loader.Definition) int {
	procs := max(def.Instances, 1)
	if def.Accept {
		procs = max(def.MaxConnections, 1)
	}
	return procs * def.Stderr.Pipes(def.Accept)
}

// startNofile is RLIMIT_NOFILE as it was when god started, as far as it can be known: Go's
// init raised the soft limit to hard-1 already when it was lower. It is read at package init,
// before god sets anything.
var startNofile = func() unix.Rlimit {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return unix.Rlimit{}
	}
	if l.Max != unix.RLIM_INFINITY && l.Max > 0 && l.Cur == l.Max-1 {
		// Raised by Go from a lower soft limit it does not tell: the kernel's default soft
		// limit (1024), which is what systemd and login sessions give, within the hard one.
		l.Cur = min(1024, l.Max)
	}
	return l
}()

// nofileRaised is set once god raised its hard RLIMIT_NOFILE: jobs then get startNofile
// through the shim (jobNofile).
var nofileRaised atomic.Bool

// ensureFDs raises god's RLIMIT_NOFILE (soft and hard) to what the jobs need (fdsBase and
// jobFDs of each) when the hard limit is below it and god runs as root; otherwise it says once
// that the limit is low. It runs on god's loop after each loader read (fdLowSaid and jobs are
// the loop's).
func (s *Supervisor) ensureFDs() {
	jobs := len(s.jobs)
	need := uint64(fdsBase)
	for _, h := range s.jobs {
		need += uint64(jobFDs(&h.def))
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil || cur.Max == unix.RLIM_INFINITY || cur.Max >= need {
		if err == nil && cur.Cur < need && cur.Max >= need {
			// The soft limit was lowered since (prlimit): take what the hard one allows.
			_ = unix.Prlimit(0, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: cur.Max, Max: cur.Max}, nil)
			nofileRaised.Store(true)
		}
		return
	}
	if os.Geteuid() != 0 {
		if !s.fdLowSaid {
			s.fdLowSaid = true
			s.log.Warn("open-files limit is low for the jobs (only root may raise the hard limit): jobs may not start with too many open files",
				"limit", cur.Max, "need", need, "jobs", jobs)
		}
		return
	}
	// x/sys's Prlimit, not syscall.Setrlimit: the latter would also tell Go to stop restoring
	// the soft limit in children, which jobNofile does instead now.
	if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: need, Max: need}, nil); err != nil {
		if !s.fdLowSaid { // root without CAP_SYS_RESOURCE (a container): said once, as for a user
			s.fdLowSaid = true
			s.log.Warn("cannot raise the open-files limit for the jobs: jobs may not start with too many open files",
				"limit", cur.Max, "need", need, "jobs", jobs, "err", err)
		}
		return
	}
	nofileRaised.Store(true)
	s.log.Info("raised the open-files limit for the jobs", "from", cur.Max, "to", need, "jobs", jobs)
}

// jobNofile is the RLIMIT_NOFILE a job without one of its own is given through the shim: the
// limit god was started with, once god raised its own past what Go restores by itself.
func jobNofile(limits []loader.Limit) []loader.Limit {
	if !nofileRaised.Load() || startNofile.Max == 0 {
		return limits
	}
	for _, l := range limits {
		if l.Resource == unix.RLIMIT_NOFILE {
			return limits
		}
	}
	return append(limits[:len(limits):len(limits)], loader.Limit{Resource: unix.RLIMIT_NOFILE, Soft: startNofile.Cur, Hard: startNofile.Max})
}

// fdShortage is the record of the jobs that could not start for want of fds: a shortage is said
// once, when it begins, and once more when every job that waited has started.
type fdShortage struct {
	active  atomic.Bool // some job waits: spawns report their success (fdStarted)
	mu      sync.Mutex
	waiting map[string]time.Time // job -> its last try that lacked fds
	said    bool                 // the shortage was logged
}

// shortageSettle is how long after a shortage's first failure god says it: the starts under way
// (an autostart of every job) fail within it, so the record counts them all.
const shortageSettle = 250 * time.Millisecond

// staleWait is how long after its last try a job no longer counts as waiting for fds: a waiting
// job tries every jobstate.FDRetry, so one that has not tried for this long was stopped or
// removed meanwhile (and must not keep the next shortage from being said).
const staleWait = 10 * jobstate.FDRetry

// noteNoFDs records that job could not start for want of fds. The shortage is logged once, a
// moment after its first failure, with the fds god has open, its limit and the jobs waiting; the
// job retries by itself (jobstate.FDRetry) without a record of its own.
func (s *Supervisor) noteNoFDs(job string) {
	sh := &s.fdShort
	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := time.Now()
	if sh.waiting == nil {
		sh.waiting = map[string]time.Time{}
	}
	for j, at := range sh.waiting {
		if now.Sub(at) > staleWait {
			delete(sh.waiting, j)
		}
	}
	begins := len(sh.waiting) == 0
	sh.waiting[job] = now
	if !begins {
		return
	}
	sh.active.Store(true)
	sh.said = false
	time.AfterFunc(shortageSettle, s.sayNoFDs)
}

// fdsFreed is called when god closed a fd of a job's (a relayed pipe ended): while jobs wait
// for fds, the one that has waited longest since its last try is told to try now, rather than
// at its next jobstate.FDRetry. It never blocks (the relay mux calls it): the job is reached
// through the loop's inbox. One fd freed wakes one job; the others keep their timers.
func (s *Supervisor) fdsFreed() {
	sh := &s.fdShort
	if !sh.active.Load() {
		return
	}
	sh.mu.Lock()
	var oldest string
	var at time.Time
	for job, t := range sh.waiting {
		if oldest == "" || t.Before(at) {
			oldest, at = job, t
		}
	}
	if oldest != "" {
		sh.waiting[oldest] = time.Now() // woken: the next fd goes to the next job
	}
	sh.mu.Unlock()
	if oldest == "" {
		return
	}
	s.inbox.put(loopFunc(func() {
		if h := s.jobs[oldest]; h != nil {
			h.j.cmds.put(jobCmd{kind: cmdFDsFreed})
		}
	}))
}

// sayNoFDs logs the shortage that began, if it still goes on.
func (s *Supervisor) sayNoFDs() {
	sh := &s.fdShort
	sh.mu.Lock()
	waiting := len(sh.waiting)
	if waiting == 0 || sh.said {
		sh.mu.Unlock()
		return
	}
	sh.said = true
	sh.mu.Unlock()
	var lim unix.Rlimit
	_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	s.log.Error("out of file descriptors: jobs wait to start until some are free (raise god's open-files limit: ulimit -n, LimitNOFILE= under systemd)",
		"fds_open", openFDs(), "limit", lim.Cur, "jobs_waiting", waiting)
}

// fdStarted records that job started: once no job waits for fds any more, the shortage is over
// (said once, if it was said at all).
func (s *Supervisor) fdStarted(job string) {
	sh := &s.fdShort
	if !sh.active.Load() {
		return
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.waiting[job]; !ok {
		return
	}
	delete(sh.waiting, job)
	if len(sh.waiting) > 0 {
		return
	}
	sh.active.Store(false)
	if sh.said {
		s.log.Info("file descriptors free again: every job that waited for them started")
	}
	sh.said = true // a settle timer still pending stays quiet
}

// openFDs is how many fds god has open (/proc/self/fd), -1 when that cannot be read.
func openFDs() int {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // the directory's own fd
}
