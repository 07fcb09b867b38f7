package supervisor

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"syscall"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// job owns one job's state. Its goroutine (run) is the only code that reads or changes it: commands,
// process exits, check replies and timers all arrive as events on channels, tableflip-style. What the
// rest of god knows of a job is the snapshot the job publishes after each change.
type job struct {
	name   string
	loader string // loader file that defines it
	def    loader.Definition
	sup    *Supervisor
	log    *slog.Logger

	cmds      chan jobCmd
	exits     chan Exit
	checkDone chan checkResult
	stopSpecs chan stopSpec
	lingered  chan int // pgid of a group that is gone after its leader exited

	state      State
	since      time.Time
	reason     string
	generation int
	procs      map[int]*proc
	lingering  int
	restarts   int
	fails      int // quick failures in a row
	lastExit   string
	lastCheck  string
	statusText string
	after      afterStop
	removed    bool
	socks      []*jobSocket
	sockErr    error

	checkSeq      int // bumped per process start: stale check replies are ignored
	checkInFlight bool
	checkT        timer
	backoffT      timer
	killT         timer
	readyT        timer
	hooks         chan []string // on<State> notifications, sent in order by one goroutine
}

// proc is one running process of a job.
type proc struct {
	pid        int
	generation int
	instance   int
	started    time.Time
}

type jobCmdKind int

const (
	cmdStart jobCmdKind = iota
	cmdStop
	cmdRestart
	cmdKill   // hurry a stop: SIGKILL now
	cmdRemove // stop, then end the job's goroutine
	cmdDefine  // new definition; running processes are untouched until they restart
	cmdSockets // copies of the job's sockets, for a peer that asks god for them (SCM_RIGHTS)
)

type jobCmd struct {
	kind    jobCmdKind
	def     loader.Definition
	sockets chan<- socketCopies
}

// afterStop says what a stopping job does once its processes are gone.
type afterStop int

const (
	afterStopped afterStop = iota // stay stopped
	afterStart                    // start again (restart command)
	afterPolicy                   // treat as a failed exit: restart per policy (check said fail)
	afterRemove                   // the job is forgotten
)

type checkResult struct {
	seq   int
	reply loader.Message
	err   error
	took  time.Duration
}

type stopSpec struct {
	seq  int
	spec loader.Stop
}

// jobEvent is what a job tells the supervisor after every visible change.
type jobEvent struct {
	name    string
	state   State
	status  control.JobStatus
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
	j := &job{
		name:      def.Name,
		loader:    loaderPath,
		def:       def,
		sup:       s,
		log:       s.log.With("job", def.Name),
		cmds:      make(chan jobCmd, 16),
		exits:     make(chan Exit, 16),
		checkDone: make(chan checkResult, 1),
		stopSpecs: make(chan stopSpec, 1),
		lingered:  make(chan int, 16),
		state:     StateWait,
		since:     time.Now(),
		procs:     make(map[int]*proc),
		hooks:     make(chan []string, 64),
	}
	return j
}

// run is the job's event loop; it returns once the job is removed and its processes are gone.
func (j *job) run() {
	go j.sendHooks()
	defer close(j.hooks)
	defer j.closeSockets()
	j.openSockets()
	j.publish()
	j.hook(StateWait)
	for {
		select {
		case c := <-j.cmds:
			j.command(c)
		case e := <-j.exits:
			j.exited(e)
		case r := <-j.checkDone:
			j.checked(r)
		case sp := <-j.stopSpecs:
			j.applyStop(sp)
		case <-j.lingered:
			j.lingering--
			j.maybeStopped()
		case <-j.checkT.C():
			j.checkT.stop()
			j.startCheck()
		case <-j.backoffT.C():
			j.backoffT.stop()
			j.spawn()
		case <-j.killT.C():
			j.killT.stop()
			j.killAll("stop timeout")
		case <-j.readyT.C():
			j.readyT.stop()
			if j.state == StateStart {
				j.enter(StateRun, "")
			}
		}
		if j.removed && len(j.procs) == 0 && j.lingering == 0 {
			j.checkT.stop()
			j.backoffT.stop()
			j.killT.stop()
			j.readyT.stop()
			j.sup.jobEvent(jobEvent{name: j.name, state: j.state, removed: true})
			return
		}
	}
}

func (j *job) command(c jobCmd) {
	switch c.kind {
	case cmdStart:
		j.start()
	case cmdStop:
		j.stop(afterStopped, "stopped on request")
	case cmdRestart:
		if j.state.Running() {
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
		j.backoffT.stop()
		if j.state.Running() {
			j.stop(afterRemove, "removed")
		}
	case cmdSockets:
		c.sockets <- j.copySockets()
	case cmdDefine:
		j.def = c.def
		j.openSockets()
		j.publish()
	}
}

// start runs the job now if it is down, resetting its failure count.
func (j *job) start() {
	switch j.state {
	case StateWait, StateStopped, StateDone, StateFailed:
		j.fails = 0
		j.spawn()
	case StateBackoff:
		j.backoffT.stop()
		j.spawn()
	case StateStop:
		j.after = afterStart
	}
}

// spawn starts the job's process and enters start.
func (j *job) spawn() {
	if j.removed {
		return
	}
	if len(j.def.Exec) == 0 {
		j.lastExit = "no exec"
		j.enter(StateFailed, "loader "+j.loader+" defines no exec for this job")
		return
	}
	if j.sockErr != nil || len(j.socks) < len(j.def.Listen) {
		j.openSockets()
		if j.sockErr != nil {
			j.lastExit = "no socket"
			j.enter(StateFailed, j.sockErr.Error())
			return
		}
	}
	j.generation = max(j.generation, 1)
	fds, names := j.socketFiles()
	env := j.env()
	if len(fds) > 0 {
		env = mergeEnv(env, fdpass.Env(names)...)
	}
	pid, exitc, err := j.sup.spawnProcess(spawnSpec{
		job:        j.name,
		generation: j.generation,
		argv:       j.def.Exec,
		env:        env,
		dir:        j.def.Dir,
		extraFiles: fds,
		listenPid:  len(fds) > 0,
		format:     joblog.Format(j.def.Log),
	})
	if err != nil {
		j.log.Error("cannot start", "err", err)
		j.lastExit = "exec: " + err.Error()
		j.restartOrFail(0, true, "cannot start: "+err.Error())
		return
	}
	p := &proc{pid: pid, generation: j.generation, started: time.Now()}
	j.procs[pid] = p
	go func() { j.exits <- <-exitc }()
	j.checkSeq++
	j.lastCheck = ""
	j.log.Info("started", "pid", pid, "gen", j.generation)
	j.enter(StateStart, "")
	switch j.def.Ready.Mode {
	case loader.ReadyMode("delay"):
		j.readyT.set(j.def.Ready.Delay)
		j.checkT.set(0)
	default:
		j.checkT.set(0)
	}
}

// openSockets syncs the job's sockets with its definition and logs what could not be opened.
func (j *job) openSockets() {
	err := j.syncSockets()
	if err != nil && (j.sockErr == nil || err.Error() != j.sockErr.Error()) {
		j.log.Error("socket", "err", err)
	}
	j.sockErr = err
}

// env is the complete environment of a new process of this job.
func (j *job) env() []string {
	env := mergeEnv(j.sup.baseEnv, j.def.Env...)
	return mergeEnv(env,
		"GOD_JOB="+j.name,
		"GOD_GENERATION="+strconv.Itoa(j.generation),
		"GOD_SOCKET="+j.sup.cfg.Socket,
	)
}

// exited handles the end of one process of the job.
func (j *job) exited(e Exit) {
	p, ok := j.procs[e.Pid]
	if !ok {
		return
	}
	delete(j.procs, e.Pid)
	lived := e.Time.Sub(p.started)
	j.lastExit = e.String()
	j.log.Info("exited", "pid", e.Pid, "exit", e.String(), "ran", lived.Round(time.Millisecond).String())
	j.lingerGroup(e.Pid)
	j.checkSeq++
	j.checkT.stop()
	j.readyT.stop()
	prev := j.state
	j.hookArgs(StateExit, strconv.Itoa(e.Code()), strconv.Itoa(e.Pid))
	if prev == StateStop {
		j.maybeStopped()
		return
	}
	j.state = StateExit
	j.since = time.Now()
	j.publish()
	if prev == StateStart && e.Success() {
		j.enter(StateDone, "exited 0 while starting (one-shot)")
		return
	}
	switch j.def.Restart {
	case loader.RestartPolicy("never"):
		if e.Success() {
			j.enter(StateDone, "exited 0 (restart: never)")
		} else {
			j.enter(StateFailed, "exited with "+e.String()+" (restart: never)")
		}
		return
	case loader.RestartPolicy("on-failure"):
		if e.Success() {
			j.enter(StateDone, "exited 0 (restart: on-failure)")
			return
		}
	}
	j.restartOrFail(lived, !e.Success() || lived < j.sup.cfg.Backoff.StayUp, "exited with "+e.String())
}

// restartOrFail restarts the job after its back-off delay, or marks it failed when it keeps failing.
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
		j.enter(StateFailed, fmt.Sprintf("flapping: %d quick failures in a row, last %s", j.fails, why))
		j.log.Error("failed: flapping, not restarting", "failures", j.fails, "last", why)
		return
	}
	j.restarts++
	d := b.Delay(j.fails)
	if d <= 0 {
		j.spawn()
		return
	}
	j.enter(StateBackoff, fmt.Sprintf("%s; restart in %s", why, d))
	j.backoffT.set(d)
}

// stop ends the job's processes per its stop semantics, then does what after says.
func (j *job) stop(after afterStop, why string) {
	switch {
	case j.state == StateStop:
		if after != afterStopped || j.after == afterPolicy {
			j.after = after
		}
	case j.state.Running():
		j.after = after
		j.checkT.stop()
		j.readyT.stop()
		j.enter(StateStop, why)
		j.askStop()
	case j.state == StateBackoff:
		j.backoffT.stop()
		j.afterStopDone(after)
	default:
		if after == afterStart {
			j.start()
		}
	}
}

// askStop asks the loader how to stop the job, without blocking the job's loop.
func (j *job) askStop() {
	pid := 0
	for p := range j.procs {
		pid = p
	}
	seq := j.checkSeq
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
		j.stopSpecs <- stopSpec{seq: seq, spec: spec}
	}()
}

// applyStop signals the job's process groups and arms the kill timer.
func (j *job) applyStop(sp stopSpec) {
	if j.state != StateStop || len(j.procs) == 0 {
		return
	}
	if sp.spec.Signal != 0 {
		for pid := range j.procs {
			if err := j.sup.reaper.SignalGroup(pid, sp.spec.Signal); err != nil && err != syscall.ESRCH {
				j.log.Warn("signal", "pid", pid, "err", err)
			}
		}
	}
	j.killT.set(sp.spec.Timeout)
}

// killAll sends SIGKILL to every process group of the job.
func (j *job) killAll(why string) {
	for pid := range j.procs {
		j.log.Warn("killing process group", "pgid", pid, "why", why)
		_ = j.sup.reaper.SignalGroup(pid, syscall.SIGKILL)
	}
}

// lingerGroup ends what is left of a process group after its leader exited (children that ignore
// SIGTERM, a forgotten background process): the stop signal, then SIGKILL after the stop timeout.
func (j *job) lingerGroup(pgid int) {
	if !GroupAlive(pgid) {
		return
	}
	j.lingering++
	timeout := j.sup.cfg.LingerTimeout
	go func() {
		defer func() { j.lingered <- pgid }()
		_ = j.sup.reaper.SignalGroup(pgid, syscall.SIGTERM)
		deadline := time.Now().Add(timeout)
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
	j.killT.stop()
	j.afterStopDone(j.after)
}

func (j *job) afterStopDone(after afterStop) {
	j.after = afterStopped
	switch after {
	case afterStart:
		j.fails = 0
		j.spawn()
	case afterPolicy:
		j.restartOrFail(0, true, "check failed")
	case afterRemove:
		j.enter(StateStopped, "removed")
	default:
		if j.removed {
			j.enter(StateStopped, "removed")
			return
		}
		j.enter(StateStopped, "")
	}
}

// startCheck asks the loader for the job's health without blocking the loop.
func (j *job) startCheck() {
	if j.checkInFlight || len(j.procs) == 0 {
		return
	}
	pid := 0
	for p := range j.procs {
		pid = p
	}
	j.checkInFlight = true
	seq := j.checkSeq
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.CheckTimeout)
		defer cancel()
		t0 := time.Now()
		m, err := j.sup.ask(ctx, j.loader, j.name, "check", strconv.Itoa(pid))
		j.checkDone <- checkResult{seq: seq, reply: m, err: err, took: time.Since(t0)}
	}()
}

// checked acts on a check reply (see "Check replies" in the protocol docs).
func (j *job) checked(r checkResult) {
	j.checkInFlight = false
	if r.seq != j.checkSeq || !(j.state == StateStart || j.state == StateRun || j.state == StateDegrade) {
		return
	}
	j.sup.metrics.checkLatency(r.took)
	if r.err != nil {
		// A failing loader never touches a running job: note it and ask again later.
		j.lastCheck = "error: " + r.err.Error()
		j.publish()
		j.checkT.set(time.Second)
		return
	}
	c, err := loader.ParseCheck(r.reply)
	if err != nil {
		j.lastCheck = "bad reply: " + err.Error()
		j.log.Warn("bad check reply", "loader", j.loader, "err", err)
		j.publish()
		j.checkT.set(time.Second)
		return
	}
	next := c.Next
	if next <= 0 {
		next = time.Second
	}
	switch c.Kind {
	case loader.CheckKind("none"):
		j.lastCheck = ""
		if j.state == StateStart && j.def.Ready.Mode != loader.ReadyMode("delay") && j.def.Ready.Mode != loader.ReadyMode("notify") {
			j.enter(StateRun, "")
		}
	case loader.CheckKind("ok"):
		j.lastCheck = "ok"
		if j.state == StateDegrade || j.state == StateStart && (j.def.Ready.Mode == "" || j.def.Ready.Mode == loader.ReadyMode("check")) {
			j.enter(StateRun, "")
		} else {
			j.publish()
		}
		j.checkT.set(next)
	case loader.CheckKind("degrade"):
		j.lastCheck = "degrade"
		if j.state == StateRun {
			j.enter(StateDegrade, "check says degrade")
		} else {
			j.publish()
		}
		j.checkT.set(next)
	case loader.CheckKind("fail"):
		j.lastCheck = "fail"
		j.log.Warn("check failed; stopping")
		j.stop(afterPolicy, "check failed")
	case loader.CheckKind("start"):
		j.checkT.set(next)
	case loader.CheckKind("stop"):
		j.stop(afterStopped, "check asked to stop")
	case loader.CheckKind("restart"):
		j.stop(afterStart, "check asked to restart")
	case loader.CheckKind("forward"):
		j.sup.forward(j.name, c.Target, c.Command)
		j.checkT.set(next)
	}
}

// enter moves to state s, tells the loader (on<State>) and publishes the change.
func (j *job) enter(s State, reason string) {
	j.state = s
	j.since = time.Now()
	j.reason = reason
	j.publish()
	j.hook(s)
}

func (j *job) hook(s State) {
	pid := ""
	for p := range j.procs {
		pid = strconv.Itoa(p)
	}
	if pid == "" {
		j.hookArgs(s)
		return
	}
	j.hookArgs(s, pid)
}

// hookArgs queues on<State> for the loader; when the loader falls far behind, notifications are dropped.
func (j *job) hookArgs(s State, args ...string) {
	select {
	case j.hooks <- append([]string{s.hook()}, args...):
	default:
		j.log.Debug("loader behind: dropped", "hook", s.hook())
	}
}

// sendHooks delivers on<State> notifications in order; the replies are ignored.
func (j *job) sendHooks() {
	for h := range j.hooks {
		ctx, cancel := context.WithTimeout(context.Background(), j.sup.cfg.LoaderTimeout)
		_, _ = j.sup.ask(ctx, j.loader, j.name, h[0], h[1:]...)
		cancel()
	}
}

// publish sends the job's snapshot to the supervisor.
func (j *job) publish() {
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
	}
	for _, p := range j.procs {
		st.Processes = append(st.Processes, control.ProcessStatus{Pid: p.pid, Generation: p.generation, Instance: p.instance, Started: p.started})
	}
	j.sup.jobEvent(jobEvent{name: j.name, state: j.state, status: st})
}
