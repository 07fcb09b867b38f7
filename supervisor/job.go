package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/procfs"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"

	"github.com/emielm/watchgod/internal/notify"
)

// job is the actor around one job's state machine (internal/jobstate): its goroutine (run) is the
// only code that touches the machine. Commands, process exits, loader replies, notify messages and
// deadlines arrive as events on channels, tableflip-style; the machine decides, and the actor runs
// what it decided (spawn, signal, ask the loader, publish, arm the timer) and feeds the outcomes
// back. What the rest of god knows of a job is the status the job publishes after each change.
//
// Besides the machine, the actor owns what is I/O: the job's listening sockets, the fds it stored
// with FDSTORE=1, the queue of on<State> notifications for its loader, the goroutines that wait
// for loader replies and for lingering process groups.
type job struct {
	name   string
	loader string // loader file that defines it
	m      *jobstate.Machine
	sup    *Supervisor
	log    *slog.Logger

	cmds   *mailbox[jobCmd]        // from the loop, which must never wait for a job (one busy starting, say)
	exits  *mailbox[jobstate.Exit] // from the reaper, which must never wait for the job
	events chan jobstate.Event     // outcomes of the job's own goroutines: loader replies, groups gone
	gone   chan struct{}           // closed when run returns: senders stop waiting
	wake   timer                   // the machine's next deadline (jobstate.Arm)
	ended  bool                    // the machine said Removed
	groups map[int]chan struct{}   // lingering process groups being watched; closed to stop a watch

	socks   []*jobSocket
	sockErr error
	unwatch func()             // ends the watch of the sockets while the job listens (ondemand.go); nil: none
	stored  []storedFile       // FDSTORE=1 files, handed to the next processes
	fdLog   *notify.LogLimiter // FDSTORE lines, at most one a second of each kind

	reloads   map[int]*reloadRequest // reloads asked, by the id the machine knows them by
	reloadSeq int

	acc      *acceptor          // the accept loop of a started accept job (accept.go); nil: none
	pidWatch *pidWatch          // the inotify watch of the job's pid-file (pidfile.go); nil: none
	pidFiles chan pidFileRead   // readings of the pid file, from the watch's goroutine
	hangups  chan *os.File      // stored fds that hung up (FDPOLL), from the socket watcher
	pidLog   *notify.LogLimiter // pid-file lines, at most one a second of each kind
}

type jobCmdKind int

const (
	cmdStart  jobCmdKind = iota
	cmdListen            // an auto ["socket"] job: wait for the first connection
	cmdStop
	cmdRestart
	cmdKill     // hurry a stop: SIGKILL now
	cmdRemove   // stop, then end the job's goroutine
	cmdDefine   // new definition; running processes are untouched until they restart
	cmdSockets  // copies of the job's sockets, for a peer that asks god for them (SCM_RIGHTS)
	cmdReload   // start a new generation (jobstate's reload)
	cmdNotify   // a message on the notify socket from one of the job's processes
	cmdSnapshot // the job's state, for an upgrade's pre-flight
	cmdFreeze   // write the state and stop until thawed: god re-executes itself (upgrade.go)
	cmdFDsFreed // fds came free: a job waiting for them tries now (fdlimit.go)
)

type jobCmd struct {
	kind    jobCmdKind
	def     *loader.Definition // cmdDefine; pointers keep the 16-deep command queue of a job small
	sockets chan<- socketCopies
	reload  *reloadRequest
	notify  *notify.Message
	freeze  *freezeReq
	snap    chan<- upgradestate.Job
}

// reloadRequest is one `god reload JOB` waiting for its outcome.
type reloadRequest struct {
	progress chan<- string // steps, as they happen (buffered; dropped when full)
	done     chan<- reloadOutcome
}

type reloadOutcome struct {
	ok  bool
	msg string
}

// jobEvent is what a job tells the supervisor after every visible change.
type jobEvent struct {
	name    string
	state   jobstate.State
	status  control.JobStatus
	def     *loader.Definition // set when the job's definition changed on its own (reload)
	groups  []int              // process groups of its processes whose leader is not one of them
	conns   []int              // an accept job's connection processes (accept.go), sorted
	removed bool
}

// timer is a time.Timer whose channel is nil while it is off, so a select case on it sleeps.
type timer struct{ t *time.Timer }

func (t *timer) C() <-chan time.Time {
	if t.t == nil {
		return nil
	}
	return t.t.C
}
func (t *timer) set(d time.Duration) { t.stop(); t.t = time.NewTimer(d) }
func (t *timer) stop() {
	if t.t != nil {
		t.t.Stop()
		t.t = nil
	}
}

// strictStates makes a move outside the state table panic (jobstate.Machine.Strict), and so an
// event the supervisor's loop does not know (unknownEvent): the integration tests run god with
// it, so that no test passes over such a bug.
var strictStates = os.Getenv("GOD_STRICT_STATES") != ""

func newJob(s *Supervisor, loaderPath string, def loader.Definition) *job {
	return newJobFor(s, loaderPath, jobstate.New(def.Name, loaderPath, def, s.policy(), time.Now()))
}

func newJobFor(s *Supervisor, loaderPath string, m *jobstate.Machine) *job {
	m.Strict = strictStates
	return &job{
		name:     m.Name(),
		loader:   loaderPath,
		m:        m,
		sup:      s,
		log:      s.log.With("job", m.Name()),
		cmds:     newMailbox[jobCmd](),
		exits:    newMailbox[jobstate.Exit](),
		events:   make(chan jobstate.Event, 4), // senders are goroutines of the job's own (send)
		gone:     make(chan struct{}),
		reloads:  make(map[int]*reloadRequest),
		pidFiles: make(chan pidFileRead),
		hangups:  make(chan *os.File),
	}
}

// policy is the timing every job's machine runs with.
func (s *Supervisor) policy() jobstate.Policy {
	return jobstate.Policy{StartTimeout: s.cfg.StartTimeout, LoaderTimeout: s.cfg.LoaderTimeout,
		LingerTimeout: s.cfg.LingerTimeout, Backoff: s.cfg.Backoff}
}

// run is the job's event loop; it returns once the job is removed and its processes are gone.
func (j *job) run() {
	defer close(j.gone)
	defer j.closeSockets()
	defer j.closeStored()
	defer j.stopWatches()
	defer j.watchSockets(false)
	defer j.stopPidWatch()
	j.openSockets()
	j.apply(j.m.Begin(time.Now()))
	j.syncPidWatch()
	for j.step() {
	}
}

// step waits for one event and handles it; it returns false once the job is removed and its
// processes are gone. It is a function of its own, kept small, because a parked job sits on its
// frame: a goroutine stack shrinks (at a collection) only while less than a quarter of it is in
// use, and a small frame keeps an idle job on a 4 KiB stack.
//
//go:noinline
func (j *job) step() bool {
	select {
	case <-j.cmds.ready:
		for _, c := range j.cmds.take() {
			if j.ended {
				break // removed: what was sent after is for a job that is gone
			}
			j.command(c)
		}
	case <-j.exits.ready:
		for _, e := range j.exits.take() {
			j.exited(e)
		}
	case ev := <-j.events:
		j.handle(ev)
		if g, ok := ev.(jobstate.GroupGone); ok {
			j.forgetUnit(g.Pgid)
		}
	case <-j.wake.C():
		j.wake.stop()
		j.handle(jobstate.Tick{})
	case r := <-j.pidFiles:
		j.pidFileChanged(r)
	case f := <-j.hangups:
		j.storedHungUp(f)
	}
	return !j.ended
}

// handle steps the machine with one event and runs what it decided.
//
//go:noinline
func (j *job) handle(ev jobstate.Event) {
	j.apply(j.m.Step(time.Now(), ev))
	j.syncPidWatch()
}

// apply runs effects in order; the outcomes that come back as events (a started process, an
// adopted MAINPID, ...) are stepped in turn, before anything else reaches the machine.
func (j *job) apply(fxs []jobstate.Effect) {
	var queue []jobstate.Event
	for {
		for _, fx := range fxs {
			if ev := j.do(fx); ev != nil {
				queue = append(queue, ev)
			}
		}
		if len(queue) == 0 {
			return
		}
		ev := queue[0]
		queue = queue[1:]
		fxs = j.m.Step(time.Now(), ev)
	}
}

// do runs one effect; it returns the event that reports its outcome, if the machine waits for one.
func (j *job) do(fx jobstate.Effect) jobstate.Event {
	switch fx := fx.(type) {
	case jobstate.Spawn:
		pid, err := j.spawn(fx.Gen, fx.Instance, fx.Def)
		if err != nil {
			if jobstate.OutOfFDs(err) {
				j.sup.noteNoFDs(j.name) // said once for every job; the machine retries quietly
			}
			return jobstate.SpawnFailed{Gen: fx.Gen, Instance: fx.Instance, Err: err}
		}
		j.sup.fdStarted(j.name)
		return jobstate.Spawned{Gen: fx.Gen, Instance: fx.Instance, Pid: pid}
	case jobstate.SignalGroup:
		if err := j.sup.contain.signal(fx.Pgid, fx.Sig); err != nil && err != syscall.ESRCH {
			j.log.Warn("signal", "pgid", fx.Pgid, "signal", loader.SignalName(fx.Sig), "err", err)
		}
	case jobstate.SignalProc:
		if err := j.sup.reaper.Signal(fx.Pid, fx.Sig); err != nil {
			return jobstate.SignalFailed{Pid: fx.Pid, Sig: fx.Sig, Err: err}
		}
	case jobstate.AskCheck:
		j.askCheck(fx.Pid, fx.Seq)
	case jobstate.AskStop:
		j.askStop(fx.Pid)
	case jobstate.AskDefine:
		j.askDefine()
	case jobstate.Adopt:
		// The new main process may have been found first as a process that left the job's group
		// (its parent exited before god read its MAINPID=): it becomes the job's own process.
		j.sup.contain.release(fx.Pid)
		err := j.sup.reaper.Adopt(fx.Pid, fx.Pgid, j.exits.put)
		j.sup.contain.adopted(fx.Pid)
		if err == nil && fx.From > 0 {
			// A successor writes to the stdout and stderr it inherited: its lines carry its pid.
			j.sup.retagOutput(j.name, fx.From, fx.Pid)
		}
		return jobstate.Adopted{Pid: fx.Pid, Err: err}
	case jobstate.WatchGroup:
		return j.watchGroup(fx.Pgid)
	case jobstate.SyncSockets:
		if fx.Report {
			return jobstate.SocketsSynced{Err: j.syncSocketsFor(fx.Listen, fx.User, fx.Group)}
		}
		j.openSocketsFor(fx.Listen, fx.User, fx.Group)
	case jobstate.WatchSockets:
		j.watchSockets(fx.On)
	case jobstate.Hook:
		// Queued on the loader's hook queue (hooks.go), in the order the job enters its states.
		j.sup.hook(j.loader, j.name, fx.Args)
	case jobstate.Publish:
		j.publish(fx.Def)
	case jobstate.Log:
		j.log.Log(context.Background(), fx.Level, fx.Msg, fx.Args...)
		j.sup.hub.Note(j.name, fx.Level, fx.Msg, fx.Args...) // into the job's log file, with --log-dir
	case jobstate.Forward:
		j.sup.forward(j.name, fx.Target, fx.Command)
	case jobstate.Restarted:
		j.sup.metrics.restarted(j.name)
	case jobstate.ReloadStep:
		if req := j.reloads[fx.ID]; req != nil {
			select {
			case req.progress <- fx.Msg:
			default:
			}
		}
	case jobstate.ReloadDone:
		j.reloadDone(fx)
	case jobstate.Arm:
		if fx.At.IsZero() {
			j.wake.stop()
		} else {
			j.wake.set(max(time.Until(fx.At), 0))
		}
	case jobstate.Removed:
		j.ended = true
		j.wake.stop()
		j.sup.jobEvent(jobEvent{name: j.name, state: j.m.State(), removed: true})
	default:
		panic(fmt.Sprintf("job %s: unknown effect %T", j.name, fx))
	}
	return nil
}

// send delivers an event to the job's loop from another goroutine, unless the job is gone.
func send[T any](j *job, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-j.gone:
	}
}

func (j *job) command(c jobCmd) {
	if j.acceptCommand(c) {
		return
	}
	switch c.kind {
	case cmdStart:
		j.handle(jobstate.Start{})
	case cmdListen:
		j.handle(jobstate.Listen{})
	case cmdStop:
		j.handle(jobstate.Stop{})
	case cmdRestart:
		j.handle(jobstate.Restart{})
	case cmdKill:
		j.handle(jobstate.Kill{})
	case cmdRemove:
		j.handle(jobstate.Remove{})
	case cmdSockets:
		c.sockets <- j.copySockets()
	case cmdDefine:
		j.handle(jobstate.Define{Def: *c.def})
	case cmdReload:
		j.reloadSeq++
		j.reloads[j.reloadSeq] = c.reload
		j.handle(jobstate.ReloadAsked{ID: j.reloadSeq})
	case cmdNotify:
		j.notified(*c.notify)
	case cmdFDsFreed:
		j.handle(jobstate.FDsFreed{})
	case cmdSnapshot:
		c.snap <- j.snapshot()
	case cmdFreeze:
		// An exit held back for a MAINPID= is judged now: the state has no place for it.
		j.handle(jobstate.Freeze{})
		if j.acc != nil {
			j.acc.stopLoop() // connections wait in the kernel's queue for the new image
		}
		c.freeze.state <- j.snapshot()
		// Blocks for good when the exec succeeds: the process image is replaced.
		<-c.freeze.thaw
		if j.acc != nil {
			if err := j.acc.startLoop(); err != nil {
				j.log.Error("accept job does not accept again after a failed upgrade", "err", err)
			}
		}
	}
}

// exited passes the end of one of the job's processes to the machine, with whether its process
// group outlived it (a hand-over to a MAINPID=, or children to end).
func (j *job) exited(e jobstate.Exit) {
	pgid := j.m.PgidOf(e.Pid)
	if pgid == 0 {
		return
	}
	j.sup.metrics.exited(j.name, e.Code())
	j.readPidFileAtExit(e.Pid)
	alive := j.sup.contain.alive(pgid)
	j.handle(jobstate.Exited{Exit: e, GroupAlive: alive})
	j.forgetUnit(pgid)
}

// spawn starts one process of generation gen with definition def.
func (j *job) spawn(gen, instance int, def *loader.Definition) (int, error) {
	if len(def.Exec) == 0 {
		return 0, fmt.Errorf("loader %s defines no exec for job %s", j.loader, j.name)
	}
	if j.sockErr != nil || len(j.socks) < len(def.Listen) {
		j.openSockets()
		if j.sockErr != nil {
			return 0, j.sockErr
		}
	}
	fds, names := j.socketFiles()
	for _, s := range j.stored {
		if fd, err := fdpass.RawFd(s.file); err == nil {
			fds = append(fds, uintptr(fd))
			names = append(names, s.name)
		}
	}
	env, settings, err := j.procEnv(gen, instance, def)
	if err != nil {
		return 0, err
	}
	if len(fds) > 0 {
		env = mergeEnv(env, fdpass.Env(names)...)
	}
	return j.sup.spawnProcess(spawnSpec{
		job:        j.name,
		generation: gen,
		argv:       def.Exec,
		env:        env,
		dir:        def.Dir,
		extraFiles: fds,
		listenPid:  len(fds) > 0,
		format:     joblog.Format(def.Log),
		settings:   settings,
		cgroup:     def.Cgroup,
		exited:     j.exits.put,
		stderr:     def.Stderr,
	})
}

// procEnvShared is procEnv for a connection process of an accept job: generation and
// instance 0. Safe beside the job's loop: it reads only the definition it is given.
func (j *job) procEnvShared(def *loader.Definition) ([]string, procSettings, error) {
	return j.procEnv(0, 0, def)
}

// procEnv is the environment and settings of one process of generation gen: god's environment,
// the user's passwd entry, env files, env, then god's own variables (later wins).
func (j *job) procEnv(gen, instance int, def *loader.Definition) ([]string, procSettings, error) {
	settings, err := resolveSettings(j.name, def)
	if err != nil {
		return nil, procSettings{}, err
	}
	fileEnv, err := readEnvFiles(j.name, def.EnvFiles)
	if err != nil {
		return nil, procSettings{}, err
	}
	// Later wins: god's environment, the user's passwd entry, env files, env, god's own.
	env := j.sup.baseEnv
	env = mergeEnv(env, settings.env...)
	env = mergeEnv(env, fileEnv...)
	env = mergeEnv(env, def.Env...)
	env = mergeEnv(env,
		"GOD_JOB="+j.name,
		"GOD_GENERATION="+strconv.Itoa(gen),
		"GOD_INSTANCE="+strconv.Itoa(instance),
		"GOD_SOCKET="+j.sup.cfg.Socket,
	)
	if j.sup.notifyPath != "" {
		env = mergeEnv(env, "NOTIFY_SOCKET="+j.sup.notifyPath)
	}
	if def.Watchdog > 0 {
		env = mergeEnv(env, "WATCHDOG_USEC="+strconv.FormatInt(def.Watchdog.Microseconds(), 10))
	}
	if def.IdleExit > 0 {
		env = mergeEnv(env, idleExitEnv+"="+def.IdleExit.String())
	}
	return env, settings, nil
}

// askCheck asks the loader for one process's health without blocking the loop.
func (j *job) askCheck(pid, seq int) {
	go func() {
		// CheckTimeout to get an instance (others may be busy), and CheckTimeout for the reply.
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.CheckTimeout)
		defer cancel()
		t0 := time.Now()
		m, err := j.sup.ask(ctx, j.sup.cfg.CheckTimeout, j.loader, j.name, "check", strconv.Itoa(pid))
		if err == nil {
			j.sup.metrics.checkLatency(time.Since(t0))
		}
		send(j, j.events, jobstate.Event(jobstate.Checked{Pid: pid, Seq: seq, Reply: m, Err: err}))
	}()
}

// askStop asks the loader how to stop one process; a loader that cannot say gets the default.
func (j *job) askStop(pid int) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.LoaderTimeout)
		defer cancel()
		spec := loader.DefaultStop
		m, err := j.sup.ask(ctx, j.sup.cfg.LoaderTimeout, j.loader, j.name, "stop", strconv.Itoa(pid))
		if err == nil {
			if s, perr := loader.ParseStop(m); perr == nil {
				spec = s
			} else {
				j.log.Warn("bad stop reply, using SIGTERM", "loader", j.loader, "err", perr)
			}
		}
		send(j, j.events, jobstate.Event(jobstate.StopAnswered{Pid: pid, Spec: spec}))
	}()
}

// askDefine reads the job's definition again (a reload), from a fresh loader instance if the
// file changed.
func (j *job) askDefine() {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.LoaderTimeout+j.sup.cfg.HandshakeTimeout)
		defer cancel()
		def, err := j.sup.define(ctx, j.loader, j.name)
		send(j, j.events, jobstate.Event(jobstate.Defined{Def: def, Err: err}))
	}()
}

// watchGroup reports when the process group pgid is empty: at once if it is, else from a
// goroutine. The kernel has no event for "process group empty", and the members are not god's
// children unless orphaned to it, so the goroutine looks at the group at a short interval; the
// machine decides when to SIGKILL it and when to give up (stopWatch ends the goroutine).
func (j *job) watchGroup(pgid int) jobstate.Event {
	if !j.sup.contain.alive(pgid) {
		j.forgetUnit(pgid)
		return jobstate.GroupGone{Pgid: pgid}
	}
	if j.groups == nil {
		j.groups = make(map[int]chan struct{})
	}
	if _, ok := j.groups[pgid]; ok {
		return nil
	}
	stop := make(chan struct{})
	j.groups[pgid] = stop
	go func() {
		for i := 0; j.sup.contain.alive(pgid); i++ {
			select {
			case <-stop:
				return
			case <-j.gone:
				return
			case <-time.After(min(time.Millisecond<<min(i, 5), 20*time.Millisecond)):
			}
		}
		send(j, j.events, jobstate.Event(jobstate.GroupGone{Pgid: pgid}))
	}()
	return nil
}

// forgetUnit lets containment forget the unit of pgid once nothing of it is left and no process
// of the job is in it (a MAINPID successor keeps its leader's group).
func (j *job) forgetUnit(pgid int) {
	if j.m.UsesGroup(pgid) || j.sup.contain.alive(pgid) {
		return
	}
	j.sup.contain.forget(pgid)
}

func (j *job) stopWatches() {
	for pgid, stop := range j.groups {
		close(stop)
		delete(j.groups, pgid)
	}
}

// reloadDone answers the client of a reload. A failed one shows the new generation's last
// words, which may still be in its pipes: the answer waits for them (briefly), the loop does not.
func (j *job) reloadDone(fx jobstate.ReloadDone) {
	req := j.reloads[fx.ID]
	delete(j.reloads, fx.ID)
	if fx.Counted {
		j.sup.metrics.jobReloaded(j.name, fx.Took, fx.OK)
	}
	if req == nil {
		return
	}
	if fx.OK || len(fx.NewPids) == 0 {
		req.done <- reloadOutcome{ok: fx.OK, msg: fx.Msg}
		return
	}
	pids := make(map[int]bool, len(fx.NewPids))
	for _, pid := range fx.NewPids {
		pids[pid] = true
	}
	go func(msg string, done chan<- reloadOutcome) {
		j.sup.waitOutput(pids, 500*time.Millisecond)
		if out := j.lastLines(10, pids); out != "" {
			msg += "\nlast output of the new generation:\n" + out
		}
		done <- reloadOutcome{msg: msg}
	}(fx.Msg, req.done)
}

// publish sends the job's status to the supervisor; def is set when the definition changed on
// its own (a reload).
func (j *job) publish(def *loader.Definition) {
	st := j.m.Status(j.socketList())
	for i := range st.Processes {
		st.Processes[i].Escaped = j.sup.contain.escapedOf(j.m.PgidOf(st.Processes[i].Pid))
	}
	if a := j.acc; a != nil {
		// An accept job's state is its acceptor's, not the machine's (accept.go).
		a.mu.Lock()
		defer a.mu.Unlock()
		st.State, st.Since, st.Connections = a.status.State, a.status.Since, a.status.Connections
		a.status = st
		j.sup.jobEvent(jobEvent{name: j.name, state: jobstate.StateRun, status: st, def: def, conns: a.connsLocked()})
		return
	}
	j.sup.jobEvent(jobEvent{name: j.name, state: j.m.State(), status: st, def: def, groups: j.m.Groups()})
}

// storedFile is an fd a process of the job gave god with FDSTORE=1, for its successors.
type storedFile struct {
	name   string
	file   *os.File
	noPoll bool   // FDPOLL=0: kept even once it hangs up
	cancel func() // ends the watch for its hang-up; nil when not watched
}

// close closes the stored fd and ends the watch of it.
func (s storedFile) close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.file.Close()
}

const maxStoredFiles = 64

func (j *job) closeStored() {
	for _, s := range j.stored {
		s.close()
	}
	j.stored = nil
}

// pollStored watches a stored fd for a hang-up, as systemd does unless FDPOLL=0: a connection
// whose peer closed it, or a pipe whose writers are gone, is no use to the next process and is
// dropped from the store. An fd epoll cannot watch (a regular file, a memfd) is kept unwatched.
func (j *job) pollStored(s *storedFile) {
	if s.noPoll {
		return
	}
	w, err := j.sup.sockWatch.get()
	if err != nil {
		return
	}
	fd, err := fdpass.RawFd(s.file)
	if err != nil {
		return
	}
	f := s.file
	s.cancel, _ = w.WatchHangup(fd, func() { go send(j, j.hangups, f) })
}

// storedHungUp drops a stored fd that hung up (pollStored).
func (j *job) storedHungUp(f *os.File) {
	for i, s := range j.stored {
		if s.file == f {
			s.close()
			j.stored = slices.Delete(j.stored, i, i+1)
			j.storeLog().Log(slog.LevelInfo, "hangup", "FDSTORE: a stored fd hung up; removed (FDPOLL=0 keeps it)", "name", s.name)
			return
		}
	}
}

// storeLog says what happens to stored fds, each kind at most once a second.
func (j *job) storeLog() *notify.LogLimiter {
	if j.fdLog == nil {
		j.fdLog = notify.NewLogLimiter(time.Second, func() *slog.Logger { return j.log })
	}
	return j.fdLog
}

// notified passes a notify message to the machine. The fds it carries (FDSTORE=1) are kept when
// it comes from the job, closed otherwise.
func (j *job) notified(msg notify.Message) {
	pgid := 0
	if !j.m.HasPid(msg.Pid) {
		pgid, _ = procfs.ProcessGroup(msg.Pid)
	}
	owned := j.m.Owns(msg.Pid, pgid)
	if msg.FdStoreRemove && owned {
		j.removeStored(msg.FdName) // before a store in the same message, as systemd does
	}
	if msg.FdStore && len(msg.Files) > 0 && owned {
		j.storeFiles(msg)
	} else {
		for _, f := range msg.Files {
			f.Close()
		}
	}
	n := jobstate.Notified{Pid: msg.Pid, SenderPgid: pgid, Ready: msg.Ready, Reloading: msg.Reloading,
		Stopping: msg.Stopping, Watchdog: msg.Watchdog, WatchdogTrigger: msg.WatchdogTrigger, MainPid: msg.MainPid,
		ExtendTimeout: extendDuration(msg.ExtendUsec)}
	if msg.Status != "" || msg.Fields["STATUS"] != "" {
		n.Status = &msg.Status
	}
	j.handle(n)
}

// removeStored is FDSTOREREMOVE=1: it closes and forgets the stored fds named name (FDNAME=),
// so that later processes no longer get them. Without a name nothing is removed (systemd
// requires FDNAME= with it).
func (j *job) removeStored(name string) {
	if name == "" {
		j.storeLog().Log(slog.LevelWarn, "remove-noname", "FDSTOREREMOVE=1 without FDNAME=: nothing removed")
		return
	}
	kept := j.stored[:0]
	removed := 0
	for _, s := range j.stored {
		if s.name == name {
			s.close()
			removed++
			continue
		}
		kept = append(kept, s)
	}
	clear(j.stored[len(kept):])
	j.stored = kept
	j.storeLog().Log(slog.LevelInfo, "removed", "FDSTOREREMOVE: stored fds closed", "name", name, "count", removed)
}

func (j *job) storeFiles(msg notify.Message) {
	dropped := 0
	for _, f := range msg.Files {
		if len(j.stored) >= maxStoredFiles {
			dropped++
			f.Close()
			continue
		}
		name := msg.FdName
		if name == "" {
			name = "stored"
		}
		s := storedFile{name: name, file: f, noPoll: msg.FdNoPoll}
		j.pollStored(&s)
		j.stored = append(j.stored, s)
	}
	// A job that stores fds in a loop must not cost god a log line a datagram: each kind of line
	// goes out at most once a second, with the count of those held back.
	if dropped > 0 {
		j.storeLog().Log(slog.LevelWarn, "dropped", "FDSTORE: too many stored fds; dropped", "dropped", dropped, "max", maxStoredFiles)
	}
	if kept := len(msg.Files) - dropped; kept > 0 {
		j.storeLog().Log(slog.LevelInfo, "kept", "FDSTORE: keeping fds for the next generation", "count", kept, "name", msg.FdName)
	}
}

// lastLines returns the last n output lines of the given pids (all of the job's when pids is
// empty), for an error that has to show what a process said before it failed.
func (j *job) lastLines(n int, pids map[int]bool) string {
	tail := j.sup.hub.Tail([]string{j.name}, 200)
	var lines []string
	for _, l := range tail {
		if len(pids) == 0 || pids[l.Pid] {
			lines = append(lines, fmt.Sprintf("[%d %s] %s", l.Pid, l.Stream, l.Msg))
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// extendDuration is EXTEND_TIMEOUT_USEC= as a duration, capped (a year) so that a huge value does
// not overflow time arithmetic.
func extendDuration(usec uint64) time.Duration {
	const maxExtend = 365 * 24 * time.Hour
	if usec >= uint64(maxExtend/time.Microsecond) {
		return maxExtend
	}
	return time.Duration(usec) * time.Microsecond
}
