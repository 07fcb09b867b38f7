package reaper

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/procfs"
)

// Reaper is the one place in god that waits for children. A second wait (exec.Cmd.Wait beside a
// wait4(-1)) would steal exit statuses, and god must reap orphans it adopts as a subreaper or as
// PID 1, so every child god starts is started here, registered under the same lock the reaping
// loop takes: a child that exits at once is never reaped before it is known.
//
// A pid is only signalled through the Reaper while it is registered, so a signal can never reach a
// process that reused the pid of one already reaped.
type Reaper struct {
	onReap atomic.Pointer[func()] // SetOnReap

	// forking is held for reading by every Start from before its fork until its pid is
	// registered, and for writing by each wait4: a child is never reaped before it is known, yet
	// forks run in parallel (a fork+exec blocks its thread about a millisecond; 1000 jobs
	// started one fork at a time took a second). Lock order: forking, then mu.
	forking sync.RWMutex
	mu      sync.Mutex
	waiting map[int]func(jobstate.Exit) // called by reap outside mu (hold takes it); must not block (a buffered send, a mailbox put)
	held    map[int]jobstate.Exit       // exits of restored children no job has claimed yet (Claim)
	orphans map[int]jobstate.Exit       // recently reaped unknown children, for Adopt (MAINPID races)
	order   []int                       // orphans in reap order, bounded
	recent  map[int]jobstate.Exit       // recently reaped registered children, for god's re-exec (Reaped)
	rorder  []int
	remote  remote    // the fork server, once god's fd table is big (remote.go)
	exp     *expected // children whose exit god expects, by pidfd (Expect); nil: none to be had
	log     *slog.Logger
	sigc    chan os.Signal
	done    chan struct{}
	stopped chan struct{}
}

const maxRememberedOrphans = 256

// New starts reaping on SIGCHLD. Call Close to stop.
func New(log *slog.Logger) *Reaper {
	r := newReaper(log)
	r.start()
	return r
}

func newReaper(log *slog.Logger) *Reaper {
	return &Reaper{
		waiting: make(map[int]func(jobstate.Exit)),
		held:    make(map[int]jobstate.Exit),
		orphans: make(map[int]jobstate.Exit),
		recent:  make(map[int]jobstate.Exit),
		exp:     newExpected(),
		log:     log,
		sigc:    make(chan os.Signal, 1),
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
}

func (r *Reaper) start() {
	signal.Notify(r.sigc, syscall.SIGCHLD)
	go r.loop()
}

// Freeze stops reaping and starting until Thaw: god is about to re-execute itself, and every
// child that exits from now on stays a zombie for the new image to reap. Reaped reports the exits
// that were reaped but may not have reached their job yet.
func (r *Reaper) Freeze() {
	r.forking.Lock()
	r.mu.Lock()
}

// Thaw undoes Freeze (the re-exec failed).
func (r *Reaper) Thaw() {
	r.mu.Unlock()
	r.forking.Unlock()
}

// Reaped returns the exit of a registered pid reaped lately. Call it between Freeze and Thaw.
func (r *Reaper) Reaped(pid int) (jobstate.Exit, bool) {
	e, ok := r.recent[pid]
	return e, ok
}

// NewRestored is New for god's new image after a re-exec: the children named in pids
// are registered before the first wait, and exits reaped by the old image but not yet handled
// are held. Each restored job then claims the exits of its processes with Claim.
func NewRestored(log *slog.Logger, pids []int, pending []jobstate.Exit) *Reaper {
	r := newReaper(log)
	for _, pid := range pids {
		r.waiting[pid] = r.hold
	}
	for _, e := range pending {
		if _, ok := r.waiting[e.Pid]; ok {
			delete(r.waiting, e.Pid)
			r.held[e.Pid] = e
		}
	}
	r.start()
	return r
}

// hold keeps the exit of a restored child until its job claims it. It is the waiter of a
// restored child, which reap calls outside mu like every waiter: it takes mu itself (Claim
// reads held under it).
func (r *Reaper) hold(e jobstate.Exit) {
	r.mu.Lock()
	r.held[e.Pid] = e
	r.mu.Unlock()
}

// Claim routes the exit of a child registered by NewRestored to deliver: at once if it was
// reaped already, else when it is. A pid that is not such a child is an error.
func (r *Reaper) Claim(pid int, deliver func(jobstate.Exit)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.held[pid]; ok {
		delete(r.held, pid)
		deliver(e)
		return nil
	}
	if _, ok := r.waiting[pid]; !ok {
		return fmt.Errorf("pid %d: not a restored child", pid)
	}
	r.waiting[pid] = deliver
	return nil
}

// Close stops the reaping loop.
func (r *Reaper) Close() {
	r.stopRemote()
	signal.Stop(r.sigc)
	close(r.done)
	<-r.stopped
	if r.exp != nil {
		r.exp.close()
	}
}

func (r *Reaper) loop() {
	defer close(r.stopped)
	// Reap once at start: a child may have died before Notify took effect.
	r.reap()
	var kick chan struct{}
	if r.exp != nil {
		kick = r.exp.kick
	}
	for {
		select {
		case <-r.sigc:
			r.reap()
		case <-kick:
			r.reap()
		case <-r.done:
			return
		}
	}
}

// Expect says that god expects pid to exit soon (it signalled it to stop): if god waits for pid,
// its exit is then reaped by pid, not found by a walk over every child (expected).
func (r *Reaper) Expect(pid int) {
	if r.exp == nil || pid <= 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiting[pid]; ok {
		_ = r.exp.add(pid) // without it, wait4(-1) finds the exit all the same
	}
}

// reap collects every exited child without blocking and hands each exit to its waiter. The
// exits are taken in batches: the onReap hook runs once per batch, before any exit of the batch
// is delivered, so a burst of exits (a shutdown of thousands of jobs) costs one look at god's
// children per batch rather than one per exit.
func (r *Reaper) reap() {
	type reaped struct {
		e       jobstate.Exit
		deliver func(jobstate.Exit) // nil: an orphan
	}
	batch := make([]reaped, 0, 16)
	// wait takes one exit of wpid (-1: any child) if there is one, and says whether to go on.
	wait := func(wpid int) bool {
		var ws syscall.WaitStatus
		r.forking.Lock()
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, known := r.waiting[wpid]; wpid > 0 && !known {
			r.forking.Unlock()
			return false // reaped already (a stale pidfd event): nothing to wait for
		}
		pid, err := syscall.Wait4(wpid, &ws, syscall.WNOHANG, nil)
		r.forking.Unlock() // a pid it reaps was registered: Start registers before it unlocks
		switch {
		case err == syscall.EINTR:
			return true
		case wpid > 0 && err == syscall.ECHILD:
			// Not god's child (yet): an adopted MAINPID= whose parent still lives. Its
			// pidfd has fired; its exit, if god ever has it, comes through wait4(-1).
			r.exp.forget(wpid)
			return false
		case pid <= 0 || err != nil:
			return false
		case ws.Stopped() || ws.Continued():
			return true
		}
		e := jobstate.Exit{Pid: pid, Status: ws, Time: time.Now()}
		deliver, known := r.waiting[pid]
		if known {
			delete(r.waiting, pid)
			if r.exp != nil {
				r.exp.forget(pid)
			}
			r.rememberExit(e)
		} else {
			r.rememberOrphan(e)
		}
		batch = append(batch, reaped{e, deliver})
		return wpid < 0
	}
	for {
		batch = batch[:0]
		if r.exp != nil {
			// The exits god expected first, each by its pid; wait4(-1) then finds the rest.
			for _, pid := range r.exp.take() {
				for wait(pid) {
				}
			}
		}
		more := true
		for more && len(batch) < reapBatch {
			more = wait(-1)
		}
		if len(batch) == 0 {
			return
		}
		if f := r.onReap.Load(); f != nil {
			// A child's death is when its own children were reparented to god: the processes
			// that escaped its job are found before the job hears of the exit (supervisor/containment.go).
			(*f)()
		}
		for _, b := range batch {
			if b.deliver != nil {
				b.deliver(b.e) // never blocks (see waiting); an upgrade's freeze finds it in recent
				continue
			}
			if r.log != nil {
				r.log.Debug("reaped orphan", "pid", b.e.Pid, "exit", b.e.String())
			}
		}
		if !more {
			return
		}
	}
}

// reapBatch bounds the exits taken before they are delivered, so that the first of a burst is
// not held back long.
const reapBatch = 256

// SetOnReap makes f run after every child reaped, outside the reaper's lock.
func (r *Reaper) SetOnReap(f func()) { r.onReap.Store(&f) }

// Watch registers a child god did not start (a job's daemon, reparented to god) so that its exit
// is delivered; false when it is registered already or was reaped as an orphan before.
func (r *Reaper) Watch(pid int, deliver func(jobstate.Exit)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiting[pid]; ok {
		return false
	}
	if _, ok := r.orphans[pid]; ok && !r.forgetStaleOrphan(pid) {
		return false
	}
	r.waiting[pid] = deliver
	return true
}

// forgetStaleOrphan drops the remembered orphan exit of pid when a process with that pid exists
// now, and says whether it did. pids wrap (pid_max may be 32768: minutes on a busy machine), and
// a reaped process is gone from /proc, so a process that /proc shows under that pid while r.mu
// is held (no reap can run) is a newer one: the record is not its exit. Called with r.mu held.
func (r *Reaper) forgetStaleOrphan(pid int) bool {
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err != nil {
		return false
	}
	delete(r.orphans, pid)
	return true
}

// Unwatch forgets a pid registered by Watch, so that Adopt can register it for another owner. An
// exit reaped after it goes to the orphans, where Adopt finds it.
func (r *Reaper) Unwatch(pid int) {
	r.mu.Lock()
	delete(r.waiting, pid)
	if r.exp != nil {
		r.exp.forget(pid)
	}
	r.mu.Unlock()
}

// Unknown keeps, of pids (reordered in place), those god does not wait for, under one lock:
// the containment's look at thousands of children takes it once.
func (r *Reaper) Unknown(pids []int) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := pids[:0]
	for _, pid := range pids {
		if _, ok := r.waiting[pid]; !ok {
			out = append(out, pid)
		}
	}
	return out
}

// rememberExit keeps the last exits of registered children: if god re-executes itself while an
// exit is on its way to its job, the new image still learns of it.
func (r *Reaper) rememberExit(e jobstate.Exit) {
	r.recent[e.Pid] = e
	r.rorder = append(r.rorder, e.Pid)
	if len(r.rorder) > 4096 {
		delete(r.recent, r.rorder[0])
		r.rorder = r.rorder[1:]
	}
}

func (r *Reaper) rememberOrphan(e jobstate.Exit) {
	r.orphans[e.Pid] = e
	r.order = append(r.order, e.Pid)
	if len(r.order) > maxRememberedOrphans {
		delete(r.orphans, r.order[0])
		r.order = r.order[1:]
	}
}

// Attr is what a child gets: argv, environment, working directory and its fds (0, 1, 2, 3...).
type Attr struct {
	Path  string // resolved executable
	Argv  []string
	Env   []string
	Dir   string
	Files []uintptr
	// Setpgid puts the child in a process group of its own, so its whole tree can be signalled.
	Setpgid bool
	// CgroupFD, when not negative, starts the child in that cgroup (clone3 CLONE_INTO_CGROUP):
	// every descendant stays in it (supervisor/containment.go). Zero is "none" too: fd 0 is stdin.
	CgroupFD int
	// Credential, when set, is the identity the child runs as (a job's user, group, groups).
	Credential *syscall.Credential
}

// Start forks and execs a child and registers it before any SIGCHLD of it can be handled.
// The returned channel receives the child's Exit once (it is buffered). Starts run in parallel
// with each other; reaping waits until every Start under way has registered its child.
func (r *Reaper) Start(a Attr) (int, <-chan jobstate.Exit, error) {
	ch := make(chan jobstate.Exit, 1)
	pid, err := r.StartFunc(a, func(e jobstate.Exit) { ch <- e })
	if err != nil {
		return 0, nil, err
	}
	return pid, ch, nil
}

// StartFunc is Start for an owner that takes exits from a mailbox rather than a channel per
// child (a job: no goroutine waits on each of its processes). deliver is called once, from the
// reaping loop, and must not block.
func (r *Reaper) StartFunc(a Attr, deliver func(jobstate.Exit)) (int, error) {
	attr := &syscall.ProcAttr{
		Dir:   a.Dir,
		Env:   a.Env,
		Files: a.Files,
		Sys:   &syscall.SysProcAttr{Setpgid: a.Setpgid, Credential: a.Credential},
	}
	if a.CgroupFD > 0 {
		attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, a.CgroupFD
	}
	r.forking.RLock()
	defer r.forking.RUnlock()
	pid, err := r.forkExec(a, attr)
	if err != nil {
		return 0, forkExecError(err, a.Files)
	}
	r.mu.Lock()
	r.waiting[pid] = deliver
	delete(r.orphans, pid) // an older process's: this pid is the new child's now
	r.mu.Unlock()
	return pid, nil
}

// forkExecError tells an fd shortage for what it is. Between fork and exec Go moves its exec
// status pipe above the highest fd the child gets (dup3 to max+1); when those fds are the last
// the open-files limit allows, dup3 fails with EBADF, which would read as a bug rather than as
// "too many open files". Such an EBADF is reported as EMFILE.
func forkExecError(err error, files []uintptr) error {
	if !errors.Is(err, syscall.EBADF) {
		return err
	}
	var top uintptr
	for _, f := range files {
		top = max(top, f)
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil || uint64(top)+1+uint64(len(files)) < lim.Cur {
		return err
	}
	return fmt.Errorf("%w: no fd free above %d, the highest given to the child, within the limit of %d (%w)", syscall.EMFILE, top, lim.Cur, err)
}

// errNotChild is returned by Adopt for a pid that is neither a child of god nor one it reaped lately.
var errNotChild = errors.New("not a child of god")

// Adopt registers a pid god did not start itself: a job's process that replaced its parent and
// named itself with MAINPID=. It must be god's child already or live in process group pgid (the
// job's); as subreaper god becomes its parent once the old process exits, and reaps it then. If
// that pid was already reaped, its Exit is delivered at once. deliver must not block.
func (r *Reaper) Adopt(pid, pgid int, deliver func(jobstate.Exit)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiting[pid]; ok {
		return fmt.Errorf("pid %d: already watched", pid)
	}
	if e, ok := r.orphans[pid]; ok && !r.forgetStaleOrphan(pid) {
		delete(r.orphans, pid)
		deliver(e)
		return nil
	}
	if ppid, pg, err := procfs.ParentAndGroup(pid); err != nil || (ppid != os.Getpid() && pg != pgid) {
		return fmt.Errorf("pid %d: %w nor in the job's process group %d", pid, errNotChild, pgid)
	}
	r.waiting[pid] = deliver
	return nil
}

// Signal sends sig to pid if god still waits for it.
func (r *Reaper) Signal(pid int, sig syscall.Signal) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.waiting[pid]; !ok {
		return syscall.ESRCH
	}
	return syscall.Kill(pid, sig)
}

// SignalGroup sends sig to the process group pgid whose leader god started. While the leader is not
// reaped its pid cannot be reused; after that the group id stays reserved by the kernel for as long
// as any member lives, so a group that still answers is still the job's.
func (r *Reaper) SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return syscall.EINVAL
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return syscall.Kill(-pgid, sig)
}

// BecomeSubreaper makes god the parent of every orphaned descendant, so a job that forks and lets
// its parent die, or that replaces itself by a child, stays within god's reach.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}
