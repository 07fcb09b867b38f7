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
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// job owns one job's state. Its goroutine (run) is the only code that reads or changes it: commands,
// process exits, check replies, notify messages and deadlines all arrive as events on channels,
// tableflip-style. What the rest of god knows of a job is the snapshot the job publishes after each
// change.
//
// A job has one or more processes: `instances` of the generation that serves, and during a reload
// also those of the generation that replaces it (or of the one draining). Each process carries its
// own readiness, check schedule and stop deadline; the job's State is decided from them at the
// points marked by enter() below.
type job struct {
	name   string
	loader string // loader file that defines it
	def    loader.Definition
	sup    *Supervisor
	log    *slog.Logger

	cmds      chan jobCmd
	exits     *mailbox[Exit] // from the reaper, which must never wait for the job
	checkDone chan checkResult
	stopSpecs chan stopSpec
	defined   chan *redefined // a pointer: a parked job's frame stays small (step)
	lingered  chan int        // pgid of a group that is gone after its leader exited
	gone      chan struct{}   // closed when run returns: senders stop waiting

	state      State
	since      time.Time
	reason     string
	generation int // the generation that serves (or will, once started)
	genCounter int // highest generation number handed out
	procs      map[int]*proc
	lingering  int
	// lingerGroups are the groups being watched after their leader exited, with the time each
	// gets SIGKILL (watchGroup).
	lingerGroups map[int]time.Time
	restarts     int
	fails        int // quick failures in a row
	lastExit     string
	lastCheck    string
	statusText   string
	after        afterStop
	removed      bool
	socks        []*jobSocket
	sockErr      error
	stored       []storedFile // FDSTORE=1 files, handed to the next processes
	respawnAt    time.Time    // back-off: when the missing instances start again
	reload       *reloadOp
	lastReload   string
	handover     *pendingHandover // an exit held back for a MAINPID= (mayHandOver)
	restored     bool             // carried across god's re-exec: it is not new to its loader

	wake timer // the earliest deadline of the job and its processes
	// on<State> notifications waiting for the loader, sent one at a time by a short-lived
	// goroutine (hookBusy) that reports on hookDone: an idle job keeps no goroutine for them.
	hooks    [][]string
	hookBusy bool
	hookDone chan struct{}
}

// proc is one running process of a job.
type proc struct {
	pid        int
	pgid       int // its process group (differs from pid for a MAINPID that took over)
	generation int
	instance   int
	def        *loader.Definition // the definition it was started with
	started    time.Time
	ready      bool
	degraded   bool
	stopping   bool      // a stop is under way: its exit is expected
	failed     string    // why god stopped it as failed (check fail, watchdog, start timeout)
	handedOver bool      // it named another pid MAINPID: its exit is not the job's
	killAt     time.Time // SIGKILL deadline while stopping
	checkAt    time.Time // next check (zero: none scheduled)
	checking   bool
	checkSeq   int
	noCheck    bool // the loader defines no check for this job
	readyAt    time.Time
	startBy    time.Time // not ready by then: failed
	watchdogAt time.Time
}

type jobCmdKind int

const (
	cmdStart jobCmdKind = iota
	cmdStop
	cmdRestart
	cmdKill     // hurry a stop: SIGKILL now
	cmdRemove   // stop, then end the job's goroutine
	cmdDefine   // new definition; running processes are untouched until they restart
	cmdSockets  // copies of the job's sockets, for a peer that asks god for them (SCM_RIGHTS)
	cmdReload   // start a new generation (reload.go)
	cmdNotify   // a message on the notify socket from one of the job's processes
	cmdSnapshot // the job's state, for an upgrade's pre-flight
	cmdFreeze   // write the state and stop until thawed: god re-executes itself (upgrade.go)
)

type jobCmd struct {
	kind    jobCmdKind
	def     *loader.Definition // cmdDefine; pointers keep the 16-deep command queue of a job small
	sockets chan<- socketCopies
	reload  *reloadRequest
	notify  *NotifyMessage
	freeze  *freezeReq
	snap    chan<- JobState
}

// afterStop says what a stopping job does once its processes are gone.
type afterStop int

const (
	afterStopped afterStop = iota // stay stopped
	afterStart                    // start again (restart command, reload mode restart)
	afterFailed                   // stay failed (flapping with several instances)
	afterRemove                   // the job is forgotten
)

type checkResult struct {
	pid   int
	seq   int
	reply loader.Message
	err   error
	took  time.Duration
}

type stopSpec struct {
	pid  int
	spec loader.Stop
}

// jobEvent is what a job tells the supervisor after every visible change.
type jobEvent struct {
	name    string
	state   State
	status  control.JobStatus
	def     *loader.Definition // set when the job's definition changed on its own (reload)
	groups  []int              // process groups of its processes whose leader is not one of them
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

func newJob(s *Supervisor, loaderPath string, def loader.Definition) *job {
	return &job{
		name:      def.Name,
		loader:    loaderPath,
		def:       def,
		sup:       s,
		log:       s.log.With("job", def.Name),
		cmds:      make(chan jobCmd, 16),
		exits:     newMailbox[Exit](),
		checkDone: make(chan checkResult, 4), // senders are goroutines of the job's own (send)
		stopSpecs: make(chan stopSpec, 2),
		defined:   make(chan *redefined, 1),
		lingered:  make(chan int, 2),
		gone:      make(chan struct{}),
		state:     StateWait,
		since:     time.Now(),
		procs:     make(map[int]*proc),
		hookDone:  make(chan struct{}, 1),
	}
}

// run is the job's event loop; it returns once the job is removed and its processes are gone.
func (j *job) run() {
	defer j.flushHooks()
	defer close(j.gone)
	defer j.closeSockets()
	defer j.closeStored()
	j.openSockets()
	j.publish()
	if !j.restored {
		j.hook(StateWait, "")
	}
	for j.step() {
		j.rearm()
	}
}

// step waits for one event and handles it; it returns false once the job is removed and its
// processes are gone. It is a function of its own, kept out of line with its rare paths (finish),
// because a parked job sits on its frame: a goroutine stack shrinks (at a collection) only while
// less than a quarter of it is in use, and with run's frame of 1.3 KiB every idle job kept an
// 8 KiB stack; on this small frame it keeps 4 KiB (100 jobs: 400 KiB less).
//
//go:noinline
func (j *job) step() bool {
	select {
	case c := <-j.cmds:
		j.command(c)
	case <-j.exits.ready:
		for _, e := range j.exits.take() {
			j.exited(e)
		}
	case r := <-j.checkDone:
		j.checked(r)
	case sp := <-j.stopSpecs:
		j.applyStop(sp)
	case d := <-j.defined:
		j.reloadDefined(d)
	case pgid := <-j.lingered:
		j.lingering--
		delete(j.lingerGroups, pgid)
		j.maybeStopped()
	case <-j.hookDone:
		j.hookBusy = false
		j.sendHook()
	case <-j.wake.C():
		j.wake.stop()
		j.tick(time.Now())
	}
	if j.removed && len(j.procs) == 0 && j.lingering == 0 {
		j.finish()
		return false
	}
	return true
}

// finish reports a removed job gone (see step for why it is out of line).
//
//go:noinline
func (j *job) finish() {
	j.wake.stop()
	j.failReload("job removed")
	j.sup.jobEvent(jobEvent{name: j.name, state: j.state, removed: true})
}

// send delivers an event to the job's loop from another goroutine, unless the job is gone.
func send[T any](j *job, ch chan<- T, v T) {
	select {
	case ch <- v:
	case <-j.gone:
	}
}

func (j *job) command(c jobCmd) {
	switch c.kind {
	case cmdStart:
		j.start()
	case cmdStop:
		j.failReload("stopped on request")
		j.stop(afterStopped, "stopped on request")
	case cmdRestart:
		j.failReload("restarted on request")
		if j.live() > 0 {
			j.stop(afterStart, "restart on request")
		} else {
			j.start()
		}
	case cmdKill:
		if j.state == StateStop {
			j.killAll("hurried")
		}
	case cmdRemove:
		j.removed = true
		j.respawnAt = time.Time{}
		j.failReload("job removed")
		if len(j.procs) > 0 {
			j.stop(afterRemove, "removed")
		}
	case cmdSockets:
		c.sockets <- j.copySockets()
	case cmdDefine:
		j.def = *c.def
		j.openSockets()
		j.publish()
	case cmdReload:
		j.beginReload(c.reload)
	case cmdNotify:
		j.notified(*c.notify)
	case cmdSnapshot:
		c.snap <- j.snapshot()
	case cmdFreeze:
		// An exit held back for a MAINPID= is judged now: the state has no place for it.
		if j.handover != nil {
			j.handoverExpired()
		}
		c.freeze.state <- j.snapshot()
		// Blocks for good when the exec succeeds: the process image is replaced.
		<-c.freeze.thaw
	}
}

// live counts the processes of the serving generation that are not being stopped.
func (j *job) live() int {
	n := 0
	for _, p := range j.procs {
		if p.generation == j.generation && !p.stopping && !p.handedOver {
			n++
		}
	}
	return n
}

func (j *job) instances() int { return max(j.def.Instances, 1) }

// start runs the job now if it is down, resetting its failure count.
func (j *job) start() {
	switch j.state {
	case StateWait, StateStopped, StateDone, StateFailed:
		j.fails = 0
		j.generation = j.nextGeneration()
		j.spawnMissing()
	case StateBackoff:
		j.respawnAt = time.Time{}
		j.spawnMissing()
	case StateStop:
		j.after = afterStart
	}
}

func (j *job) nextGeneration() int {
	j.genCounter++
	return j.genCounter
}

// spawnMissing starts the instances of the serving generation that have no process.
func (j *job) spawnMissing() {
	if j.removed {
		return
	}
	have := map[int]bool{}
	for _, p := range j.procs {
		if p.generation == j.generation && !p.stopping {
			have[p.instance] = true
		}
	}
	for i := 0; i < j.instances(); i++ {
		if have[i] {
			continue
		}
		if _, err := j.spawn(j.generation, i, &j.def); err != nil {
			j.restartOrFail(0, true, "cannot start: "+err.Error())
			return
		}
	}
	j.settle()
}

// spawn starts one process of generation gen with definition def.
func (j *job) spawn(gen, instance int, def *loader.Definition) (*proc, error) {
	if len(def.Exec) == 0 {
		return nil, fmt.Errorf("loader %s defines no exec for job %s", j.loader, j.name)
	}
	if j.sockErr != nil || len(j.socks) < len(def.Listen) {
		j.openSockets()
		if j.sockErr != nil {
			return nil, j.sockErr
		}
	}
	fds, names := j.socketFiles()
	for _, s := range j.stored {
		if fd, err := fdpass.RawFd(s.file); err == nil {
			fds = append(fds, uintptr(fd))
			names = append(names, s.name)
		}
	}
	env := mergeEnv(j.sup.baseEnv, def.Env...)
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
	if len(fds) > 0 {
		env = mergeEnv(env, fdpass.Env(names)...)
	}
	pid, err := j.sup.spawnProcess(spawnSpec{
		job:        j.name,
		generation: gen,
		argv:       def.Exec,
		env:        env,
		dir:        def.Dir,
		extraFiles: fds,
		listenPid:  len(fds) > 0,
		format:     joblog.Format(def.Log),
		exited:     j.exits.put,
	})
	if err != nil {
		j.log.Error("cannot start", "err", err)
		j.lastExit = "exec: " + err.Error()
		return nil, err
	}
	now := time.Now()
	p := &proc{pid: pid, pgid: pid, generation: gen, instance: instance, def: def, started: now, checkAt: now}
	if def.Ready.Mode == loader.ReadyDelay {
		p.readyAt = now.Add(def.Ready.Delay)
	}
	if st := j.sup.cfg.StartTimeout; st > 0 {
		p.startBy = now.Add(st)
	}
	if def.Watchdog > 0 {
		p.watchdogAt = now.Add(def.Watchdog)
	}
	j.procs[pid] = p
	if j.reload != nil {
		j.reload.newPids[pid] = true
	}
	if gen == j.generation && !j.state.Running() {
		// The job starts with this process: its snapshot must not show a process beside an old
		// state (stopped, failed, backoff). onStart goes out below, once per process.
		j.state, j.since, j.reason = StateStart, now, ""
	}
	// Publish at once: the supervisor routes notify messages by the pids of the last snapshot,
	// and a process may say READY=1 before the job has started its other instances.
	j.publish()
	j.log.Info("started", "pid", pid, "gen", gen, "instance", instance)
	j.hook(StateStart, strconv.Itoa(pid))
	return p, nil
}

// settle decides the job's state from its processes when it is neither stopping nor down.
func (j *job) settle() {
	if j.state == StateStop {
		j.maybeStopped()
		return
	}
	var live, ready, degraded int
	for _, p := range j.procs {
		if p.generation != j.generation || p.stopping || p.handedOver {
			continue
		}
		live++
		if p.ready {
			ready++
		}
		if p.degraded {
			degraded++
		}
	}
	switch {
	case live == 0 && !j.respawnAt.IsZero():
		// enter(StateBackoff) was done by restartOrFail
	case live == 0:
	case ready == live && live >= j.instances() && degraded > 0:
		j.enterIfNew(StateDegrade, "check says degrade")
	case ready == live && live >= j.instances():
		j.enterIfNew(StateRun, "")
	default:
		j.enterIfNew(StateStart, "")
	}
}

func (j *job) enterIfNew(s State, reason string) {
	if j.state != s {
		j.enter(s, reason)
	} else {
		j.publish()
	}
	j.reloadWatch()
}

// exited handles the end of one process of the job.
func (j *job) exited(e Exit) {
	p, ok := j.procs[e.Pid]
	if !ok {
		return
	}
	delete(j.procs, e.Pid)
	j.sup.metrics.exited(j.name, e.Code())
	j.log.Info("exited", "pid", e.Pid, "gen", p.generation, "exit", e.String(), "ran", e.Time.Sub(p.started).Round(time.Millisecond).String())
	if j.mayHandOver(p, e) {
		// A clean exit that leaves its process group alive may be a hand-over whose MAINPID=
		// has not reached god yet (it travels through the notify socket, the exit through the
		// reaper: either can come first). Wait a moment for it before judging the exit, and
		// above all before ending what is left of the group: that may be the successor.
		j.handover = &pendingHandover{p: p, e: e, until: time.Now().Add(handoverGrace)}
		return
	}
	j.afterExit(p, e)
}

// handoverGrace is how long a clean exit that leaves its group alive waits for a MAINPID=.
const handoverGrace = time.Second

// pendingHandover is an exit held back while a MAINPID= may still be on its way.
type pendingHandover struct {
	p     *proc
	e     Exit
	until time.Time
}

// mayHandOver: jobs that can name a successor (notify readiness or signal reloads) and whose
// process exited 0 with other members of its group still alive.
func (j *job) mayHandOver(p *proc, e Exit) bool {
	if p.stopping || p.handedOver || !e.Success() || j.handover != nil {
		return false
	}
	if p.def.Ready.Mode != loader.ReadyNotify && p.def.Reload.Mode != loader.ReloadSignal {
		return false
	}
	return GroupAlive(p.pgid)
}

// handoverExpired judges a held-back exit once no MAINPID= came for it.
func (j *job) handoverExpired() {
	h := j.handover
	j.handover = nil
	j.afterExit(h.p, h.e)
}

// afterExit is what an exit means for the job: restart, done, failed, a reload's end...
func (j *job) afterExit(p *proc, e Exit) {
	lived := e.Time.Sub(p.started)
	if p.pgid == p.pid {
		j.lingerGroup(p.pgid, p.def)
	}
	j.hookArgs(StateExit, strconv.Itoa(e.Code()), strconv.Itoa(e.Pid))
	switch {
	case p.handedOver:
		// It named its successor with MAINPID=; that process is the job now.
		j.settle()
		return
	case j.reload != nil && j.reload.owns(p):
		j.reloadProcExited(p, e)
		return
	case p.generation != j.generation:
		// A draining generation: its exit is what was asked for.
		j.reloadProgress()
		j.settle()
		return
	}
	if r := j.reload; r != nil && r.phase == phaseSignal && !p.stopping {
		// Without a successor named by MAINPID= the job is gone, not reloaded; a READY=1 of the
		// process god restarts must not pass for the reload's.
		j.failReload(fmt.Sprintf("pid %d exited with %s before it or a successor (MAINPID=) said READY=1", e.Pid, e))
	}
	j.lastExit = e.String()
	if j.state == StateStop {
		j.maybeStopped()
		return
	}
	if p.stopping && p.failed == "" {
		j.settle()
		return
	}
	wasStarting := j.state == StateStart
	j.state, j.since = StateExit, time.Now()
	j.publish()
	why := "exited with " + e.String()
	if p.failed != "" {
		why = p.failed
	}
	if p.failed == "" && j.live() == 0 {
		if wasStarting && e.Success() {
			j.enter(StateDone, "exited 0 while starting (one-shot)")
			return
		}
		switch j.def.Restart {
		case loader.RestartNever:
			if e.Success() {
				j.enter(StateDone, "exited 0 (restart: never)")
			} else {
				j.enter(StateFailed, why+" (restart: never)")
			}
			return
		case loader.RestartOnFailure:
			if e.Success() {
				j.enter(StateDone, "exited 0 (restart: on-failure)")
				return
			}
		}
	}
	j.restartOrFail(lived, p.failed != "" || !e.Success() || lived < j.sup.cfg.Backoff.StayUp, why)
}

// restartOrFail starts the missing instances after the back-off delay, or marks the job failed
// when it keeps failing.
func (j *job) restartOrFail(lived time.Duration, quick bool, why string) {
	b := j.sup.cfg.Backoff
	if lived >= b.StayUp {
		j.fails = 0
	}
	if quick {
		j.fails++
	} else {
		j.fails = 1
	}
	if b.Limit > 0 && j.fails > b.Limit {
		msg := fmt.Sprintf("flapping: %d quick failures in a row, last %s", j.fails, why)
		j.log.Error("failed: flapping, not restarting", "failures", j.fails, "last", why)
		j.respawnAt = time.Time{}
		if len(j.procs) > 0 {
			j.stop(afterFailed, msg)
			return
		}
		j.enter(StateFailed, msg)
		return
	}
	j.restarts++
	j.sup.metrics.restarted(j.name)
	d := b.Delay(j.fails)
	if d <= 0 {
		j.respawnAt = time.Time{}
		j.spawnMissing()
		return
	}
	j.respawnAt = time.Now().Add(d)
	if j.live() == 0 {
		j.enter(StateBackoff, fmt.Sprintf("%s; restart in %s", why, d))
	} else {
		j.settle()
	}
}

// stop ends every process of the job per its stop semantics, then does what after says.
func (j *job) stop(after afterStop, why string) {
	if j.handover != nil {
		j.handoverExpired()
	}
	switch {
	case j.state == StateStop:
		if after != afterStopped {
			j.after = after
		}
	case len(j.procs) > 0:
		j.after = after
		j.respawnAt = time.Time{}
		j.enter(StateStop, why)
		for _, p := range j.procs {
			j.stopProc(p, "")
		}
	case j.state == StateBackoff || !j.respawnAt.IsZero():
		j.respawnAt = time.Time{}
		j.afterStopDone(after, why)
	default:
		if after == afterStart {
			j.start()
		} else if after == afterFailed {
			j.afterStopDone(after, why)
		}
	}
}

// stopProc asks the loader how to stop one process, then signals its group (applyStop).
// failed, when set, makes its exit count as a failure (check fail, watchdog, start timeout).
func (j *job) stopProc(p *proc, failed string) {
	if failed != "" && p.failed == "" {
		p.failed = failed
	}
	if p.stopping {
		return
	}
	p.stopping = true
	p.checkAt = time.Time{}
	p.killAt = time.Now().Add(j.sup.cfg.LoaderTimeout + 5*time.Second) // until the loader answers
	pid := p.pid
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.LoaderTimeout)
		defer cancel()
		spec := loader.Stop{Signal: syscall.SIGTERM, Timeout: 5 * time.Second}
		m, err := j.sup.ask(ctx, j.loader, j.name, "stop", strconv.Itoa(pid))
		if err == nil {
			if s, perr := loader.ParseStop(m); perr == nil {
				spec = s
			} else {
				j.log.Warn("bad stop reply, using SIGTERM", "loader", j.loader, "err", perr)
			}
		}
		send(j, j.stopSpecs, stopSpec{pid: pid, spec: spec})
	}()
}

// applyStop signals a stopping process's group and arms its kill deadline.
func (j *job) applyStop(sp stopSpec) {
	p := j.procs[sp.pid]
	if p == nil || !p.stopping {
		return
	}
	if sp.spec.Signal != 0 {
		if err := j.sup.reaper.SignalGroup(p.pgid, sp.spec.Signal); err != nil && err != syscall.ESRCH {
			j.log.Warn("signal", "pid", p.pid, "err", err)
		}
	}
	p.killAt = time.Now().Add(sp.spec.Timeout)
}

// killAll sends SIGKILL to every process group of the job.
func (j *job) killAll(why string) {
	for _, p := range j.procs {
		j.kill(p, why)
	}
}

func (j *job) kill(p *proc, why string) {
	j.log.Warn("killing process group", "pgid", p.pgid, "pid", p.pid, "why", why)
	_ = j.sup.reaper.SignalGroup(p.pgid, syscall.SIGKILL)
	p.killAt = time.Time{}
}

// lingerGroup ends what is left of a process group after its leader exited (children that ignore
// SIGTERM, a forgotten background process): SIGTERM, then SIGKILL after the stop timeout.
func (j *job) lingerGroup(pgid int, def *loader.Definition) {
	if !GroupAlive(pgid) {
		return
	}
	for _, p := range j.procs {
		if p.pgid == pgid {
			return // a MAINPID successor lives in this group: it is the job now
		}
	}
	_ = j.sup.reaper.SignalGroup(pgid, syscall.SIGTERM)
	j.watchGroup(pgid, time.Now().Add(j.sup.cfg.LingerTimeout))
}

// watchGroup waits for the group pgid to be empty, SIGKILLs it at killAt, and tells the job's
// loop when it is gone. The job keeps killAt (lingerGroups) so that god's re-exec carries the
// watch over to its new image (JobState.Lingering).
func (j *job) watchGroup(pgid int, killAt time.Time) {
	j.lingering++
	if j.lingerGroups == nil {
		j.lingerGroups = make(map[int]time.Time)
	}
	j.lingerGroups[pgid] = killAt
	go func() {
		defer send(j, j.lingered, pgid)
		deadline := killAt
		killed := false
		// The kernel has no event for "process group empty"; members are not god's children
		// unless orphaned to it, so this looks at the group at a short interval, bounded in time.
		for i := 0; GroupAlive(pgid); i++ {
			if !killed && time.Now().After(deadline) {
				j.log.Warn("process group outlived its leader; killing", "pgid", pgid)
				_ = j.sup.reaper.SignalGroup(pgid, syscall.SIGKILL)
				killed = true
				deadline = time.Now().Add(5 * time.Second)
			} else if killed && time.Now().After(deadline) {
				j.log.Error("process group survives SIGKILL", "pgid", pgid)
				return
			}
			time.Sleep(min(time.Millisecond<<min(i, 5), 20*time.Millisecond))
		}
	}()
}

// maybeStopped finishes a stop once no process and no group of the job is left.
func (j *job) maybeStopped() {
	if j.state != StateStop || len(j.procs) > 0 || j.lingering > 0 {
		return
	}
	j.afterStopDone(j.after, j.reason)
}

func (j *job) afterStopDone(after afterStop, why string) {
	j.after = afterStopped
	switch after {
	case afterStart:
		j.fails = 0
		j.generation = j.nextGeneration()
		// The stop is over: leave StateStop first, or settle() would take the new processes for
		// ones being stopped and the job would hang in stop with a live process.
		j.state = StateStopped
		j.spawnMissing()
	case afterFailed:
		j.enter(StateFailed, why)
	default:
		if j.removed {
			j.enter(StateStopped, "removed")
			return
		}
		j.enter(StateStopped, "")
	}
}

// tick handles every deadline that is due: checks, ready delays, start timeouts, watchdogs, stop
// timeouts and the back-off.
func (j *job) tick(now time.Time) {
	for _, p := range j.procs {
		switch {
		case p.stopping:
			if !p.killAt.IsZero() && !now.Before(p.killAt) {
				j.kill(p, "stop timeout")
			}
			continue
		case !p.ready && !p.readyAt.IsZero() && !now.Before(p.readyAt):
			p.readyAt = time.Time{}
			j.becameReady(p)
		case !p.ready && !p.startBy.IsZero() && !now.Before(p.startBy):
			j.log.Warn("not ready in time; stopping it", "pid", p.pid, "timeout", j.sup.cfg.StartTimeout.String())
			j.procFailed(p, fmt.Sprintf("not ready within %s", j.sup.cfg.StartTimeout))
			continue
		case !p.watchdogAt.IsZero() && !now.Before(p.watchdogAt):
			j.log.Warn("watchdog: no WATCHDOG=1 in time; stopping it", "pid", p.pid, "watchdog", p.def.Watchdog.String())
			j.procFailed(p, fmt.Sprintf("watchdog: silent for %s", p.def.Watchdog))
			continue
		}
		if !p.checkAt.IsZero() && !p.checking && !now.Before(p.checkAt) {
			j.startCheck(p)
		}
	}
	if j.handover != nil && !now.Before(j.handover.until) {
		j.handoverExpired()
	}
	if !j.respawnAt.IsZero() && !now.Before(j.respawnAt) {
		j.respawnAt = time.Time{}
		j.spawnMissing()
	}
	if j.reload != nil && !j.reload.deadline.IsZero() && !now.Before(j.reload.deadline) {
		j.failReload(fmt.Sprintf("new generation not ready within %s", j.sup.cfg.StartTimeout))
	}
}

// rearm sets the wake timer to the earliest deadline.
func (j *job) rearm() {
	var next time.Time
	at := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, p := range j.procs {
		if p.stopping {
			at(p.killAt)
			continue
		}
		if !p.checking {
			at(p.checkAt)
		}
		if !p.ready {
			at(p.readyAt)
			at(p.startBy)
		}
		at(p.watchdogAt)
	}
	at(j.respawnAt)
	if j.handover != nil {
		at(j.handover.until)
	}
	if j.reload != nil {
		at(j.reload.deadline)
	}
	if next.IsZero() {
		j.wake.stop()
		return
	}
	j.wake.set(max(time.Until(next), 0))
}

// procFailed stops one process because god judged it failed; its exit is then handled like a
// crash (or fails the reload it belongs to).
func (j *job) procFailed(p *proc, why string) {
	if j.reload != nil && j.reload.owns(p) {
		j.failReload(why)
		return
	}
	j.stopProc(p, why)
}

// startCheck asks the loader for one process's health without blocking the loop.
func (j *job) startCheck(p *proc) {
	p.checking = true
	p.checkSeq++
	pid, seq := p.pid, p.checkSeq
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.CheckTimeout)
		defer cancel()
		t0 := time.Now()
		m, err := j.sup.ask(ctx, j.loader, j.name, "check", strconv.Itoa(pid))
		send(j, j.checkDone, checkResult{pid: pid, seq: seq, reply: m, err: err, took: time.Since(t0)})
	}()
}

// checked acts on a check reply (see "Check replies" in docs/protocol.md).
func (j *job) checked(r checkResult) {
	p := j.procs[r.pid]
	if p == nil || r.seq != p.checkSeq {
		return
	}
	p.checking = false
	if p.stopping {
		return
	}
	j.sup.metrics.checkLatency(r.took)
	now := time.Now()
	if r.err != nil {
		// A failing loader never touches a running job: note it and ask again later.
		j.lastCheck = "error: " + r.err.Error()
		p.checkAt = now.Add(time.Second)
		j.publish()
		return
	}
	c, err := loader.ParseCheck(r.reply)
	if err != nil {
		j.lastCheck = "bad reply: " + err.Error()
		j.log.Warn("bad check reply", "loader", j.loader, "err", err)
		p.checkAt = now.Add(time.Second)
		j.publish()
		return
	}
	next := c.Next
	if next <= 0 {
		next = time.Second
	}
	p.checkAt = now.Add(next)
	readyByCheck := p.def.Ready.Mode == loader.ReadyDefault || p.def.Ready.Mode == loader.ReadyCheck
	switch c.Kind {
	case loader.CheckNone:
		j.lastCheck = ""
		p.noCheck = true
		p.checkAt = time.Time{}
		if readyByCheck && !p.ready {
			j.becameReady(p)
			return
		}
	case loader.CheckOK:
		j.lastCheck = "ok"
		p.degraded = false
		if readyByCheck && !p.ready {
			j.becameReady(p)
			return
		}
		j.settle()
		return
	case loader.CheckDegrade:
		j.lastCheck = "degrade"
		if p.ready {
			p.degraded = true
			j.settle()
			return
		}
	case loader.CheckFail:
		j.lastCheck = "fail"
		j.log.Warn("check failed; stopping", "pid", p.pid)
		j.procFailed(p, "check failed")
		return
	case loader.CheckStart:
		j.start()
	case loader.CheckStop:
		j.stop(afterStopped, "check asked to stop")
	case loader.CheckRestart:
		j.stop(afterStart, "check asked to restart")
	case loader.CheckForward:
		j.sup.forward(j.name, c.Target, c.Command)
	}
	j.publish()
}

// becameReady marks one process ready and moves the job (or its reload) on.
func (j *job) becameReady(p *proc) {
	p.ready = true
	p.startBy = time.Time{}
	if j.reload != nil && (j.reload.owns(p) || j.reload.phase == phaseSignal) {
		j.reloadProgress()
		return
	}
	j.settle()
}

// enter moves to state s, tells the loader (on<State>) and publishes the change.
func (j *job) enter(s State, reason string) {
	j.state = s
	j.since = time.Now()
	j.reason = reason
	j.publish()
	defer j.reloadWatch()
	if s == StateStart {
		return // spawn already sent onStart with each process it started: once per start
	}
	pid := ""
	for _, p := range j.procs {
		if p.generation == j.generation && !p.stopping {
			pid = strconv.Itoa(p.pid)
		}
	}
	j.hook(s, pid)
}

func (j *job) hook(s State, pid string) {
	if pid == "" {
		j.hookArgs(s)
		return
	}
	j.hookArgs(s, pid)
}

// maxQueuedHooks bounds the notifications waiting for a loader that fell behind.
const maxQueuedHooks = 64

// hookArgs queues on<State> for the loader; when the loader falls far behind, notifications are dropped.
func (j *job) hookArgs(s State, args ...string) {
	if len(j.hooks) >= maxQueuedHooks {
		j.log.Debug("loader behind: dropped", "hook", s.hook())
		return
	}
	j.hooks = append(j.hooks, append([]string{s.hook()}, args...))
	j.sendHook()
}

// sendHook sends the oldest queued notification unless one is on its way: they reach the loader
// in order, and the replies are ignored.
func (j *job) sendHook() {
	if j.hookBusy || len(j.hooks) == 0 {
		return
	}
	h := j.hooks[0]
	j.hooks[0] = nil
	j.hooks = j.hooks[1:]
	j.hookBusy = true
	go func() {
		j.askHook(h)
		j.hookDone <- struct{}{} // one in flight, buffered: never blocks
	}()
}

func (j *job) askHook(h []string) {
	ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.LoaderTimeout)
	defer cancel()
	_, _ = j.sup.ask(ctx, j.loader, j.name, h[0], h[1:]...)
}

// flushHooks sends what is still queued once the job's loop has ended (onStopped of a removed
// job), after the one on its way.
func (j *job) flushHooks() {
	if !j.hookBusy && len(j.hooks) == 0 {
		return
	}
	busy, rest := j.hookBusy, j.hooks
	j.hooks = nil
	go func() {
		if busy {
			<-j.hookDone
		}
		for _, h := range rest {
			j.askHook(h)
		}
	}()
}

// publish sends the job's snapshot to the supervisor.
func (j *job) publish() { j.publishDef(nil) }

func (j *job) publishDef(def *loader.Definition) {
	st := control.JobStatus{
		Name:       j.name,
		Loader:     j.loader,
		State:      string(j.state),
		Reason:     j.reason,
		Generation: j.generation,
		Since:      j.since,
		Restarts:   j.restarts,
		LastExit:   j.lastExit,
		Check:      j.lastCheck,
		Sockets:    j.socketList(),
		Status:     j.statusText,
		Reload:     j.lastReload,
	}
	for _, p := range j.procs {
		ps := control.ProcessStatus{Pid: p.pid, Generation: p.generation, Instance: p.instance, Started: p.started, State: "starting"}
		switch {
		case p.stopping:
			ps.State = "stopping"
		case p.degraded:
			ps.State = "degraded"
		case p.ready:
			ps.State = "ready"
		}
		st.Processes = append(st.Processes, ps)
	}
	sortProcs(st.Processes)
	var groups []int
	for _, p := range j.procs {
		if j.procs[p.pgid] == nil && !slices.Contains(groups, p.pgid) {
			groups = append(groups, p.pgid)
		}
	}
	j.sup.jobEvent(jobEvent{name: j.name, state: j.state, status: st, def: def, groups: groups})
}

func sortProcs(ps []control.ProcessStatus) {
	for i := 1; i < len(ps); i++ {
		for k := i; k > 0 && (ps[k].Generation < ps[k-1].Generation ||
			ps[k].Generation == ps[k-1].Generation && ps[k].Instance < ps[k-1].Instance); k-- {
			ps[k], ps[k-1] = ps[k-1], ps[k]
		}
	}
}

// storedFile is an fd a process of the job gave god with FDSTORE=1, for its successors.
type storedFile struct {
	name string
	file *os.File
}

const maxStoredFiles = 64

func (j *job) closeStored() {
	for _, s := range j.stored {
		s.file.Close()
	}
	j.stored = nil
}

// notified applies a notify message from one of the job's processes (or from a process in one's
// group: a child sending READY=1 on its parent's behalf).
func (j *job) notified(m NotifyMessage) {
	p := j.procs[m.Pid]
	if p == nil {
		if pg, err := ProcessGroupOf(m.Pid); err == nil {
			for _, q := range j.procs {
				if q.pgid == pg {
					p = q
					break
				}
			}
			if h := j.handover; p == nil && h != nil && h.p.pgid == pg && m.MainPid > 0 {
				// The successor of a process whose exit god held back: the hand-over it waited for.
				j.handover = nil
				h.p.handedOver = true
				j.takeMainPid(h.p, m.MainPid)
				p = j.procs[m.MainPid]
				if p == nil {
					j.afterExit(h.p, h.e)
					return
				}
			}
		}
	}
	if p == nil {
		j.log.Warn("notify message from a process that is not the job's: dropped", "sender", m.Pid)
		for _, f := range m.Files {
			f.Close()
		}
		return
	}
	if m.Status != "" || m.Fields["STATUS"] != "" {
		j.statusText = m.Status
	}
	if m.Watchdog && !p.watchdogAt.IsZero() {
		p.watchdogAt = time.Now().Add(p.def.Watchdog)
	}
	if m.WatchdogTrigger {
		j.procFailed(p, "watchdog triggered by the job")
	}
	if m.FdStore && len(m.Files) > 0 {
		for _, f := range m.Files {
			if len(j.stored) >= maxStoredFiles {
				j.log.Warn("FDSTORE: too many stored fds; dropped", "max", maxStoredFiles)
				f.Close()
				continue
			}
			name := m.FdName
			if name == "" {
				name = "stored"
			}
			j.stored = append(j.stored, storedFile{name: name, file: f})
		}
		j.log.Info("FDSTORE: keeping fds for the next generation", "count", len(m.Files), "name", m.FdName)
	} else {
		for _, f := range m.Files {
			f.Close()
		}
	}
	if m.MainPid > 0 && m.MainPid != p.pid {
		j.takeMainPid(p, m.MainPid)
		if q := j.procs[m.MainPid]; q != nil {
			p = q
		}
	}
	if m.Reloading && j.reload != nil && j.reload.mode == loader.ReloadSignal {
		j.reload.sawReloading = true
		j.reloadStep("job says RELOADING=1")
	}
	if m.Stopping {
		j.log.Info("job says STOPPING=1", "pid", p.pid)
	}
	// READY=1 decides readiness only for `ready: notify`: with `ready: check` a process that
	// says it is ready before its check passes (a new build whose check fails) is not ready.
	if m.Ready && !p.ready && p.def.Ready.Mode == loader.ReadyNotify {
		j.becameReady(p)
	} else if m.Ready && j.reload != nil && j.reload.phase == phaseSignal {
		j.reloadProgress()
	}
	j.publish()
}

// takeMainPid follows a job that replaced its main process (tableflip, nginx-style upgrades): the
// named pid, reparented to god as subreaper once its parent exits, is the job's process now.
func (j *job) takeMainPid(old *proc, pid int) {
	if err := j.sup.reaper.Adopt(pid, old.pgid, j.exits.put); err != nil {
		j.log.Warn("MAINPID: cannot follow", "pid", pid, "err", err)
		return
	}
	gen := old.generation
	if j.reload != nil && j.reload.mode == loader.ReloadSignal {
		gen = j.reload.newGen
		j.reload.successor = pid
		j.reload.newPids[pid] = true
	}
	now := time.Now()
	p := &proc{pid: pid, pgid: old.pgid, generation: gen, instance: old.instance, def: old.def, started: now, checkAt: now}
	if p.def.Ready.Mode != loader.ReadyNotify {
		p.checkAt = now
	}
	if p.def.Watchdog > 0 {
		p.watchdogAt = now.Add(p.def.Watchdog)
	}
	old.handedOver = true
	old.checkAt = time.Time{}
	j.procs[pid] = p
	j.log.Info("MAINPID: following the job's new main process", "old", old.pid, "new", pid, "gen", gen)
	if p.def.Ready.Mode != loader.ReadyNotify {
		p.ready = old.ready
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
