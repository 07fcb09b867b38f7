package jobstate

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// Machine decides for one job. It does no I/O and reads no clock: [Machine.Step] takes an event
// and the time it happened, and returns what to do. One goroutine (the job's actor) owns it.
type Machine struct {
	j      Job
	policy Policy
	// Strict makes a move that Transitions does not allow panic instead of being logged: tests
	// set it, so that the table and the code cannot drift apart unnoticed.
	Strict bool

	now      time.Time
	out      []Effect
	armed    time.Time
	restored bool
	removed  bool
	finished bool
	spawning *Spawn // a Spawn whose outcome has not come back yet
	reload   *reloadOp
	handover *handover
	adopting *adoption
}

// handover is an exit held back while a MAINPID= may still be on its way.
type handover struct {
	p     *Proc
	e     Exit
	until time.Time
}

// handoverGrace is how long a clean exit that leaves its group alive waits for a MAINPID=.
const handoverGrace = time.Second

// killGrace is how long god waits for a stopping process's loader to say how to stop it, beyond
// the loader timeout, and for a group that was sent SIGKILL to go.
const killGrace = 5 * time.Second

// New returns the machine of a job the loader just defined; it is in state wait.
func New(name, loaderPath string, def loader.Definition, policy Policy, now time.Time) *Machine {
	return &Machine{j: Job{Name: name, Loader: loaderPath, Def: def, State: StateWait, Since: now}, policy: policy}
}

// Restore returns the machine of a job carried across god's re-exec. Every deadline the state
// holds is kept; a state written by an older god, which carried fewer of them, gets what a job
// that just started would have (a check at once, a start timeout, a watchdog).
func Restore(j Job, policy Policy, now time.Time) *Machine {
	m := &Machine{j: j, policy: policy, restored: true}
	m.j.Procs = append([]*Proc(nil), j.Procs...)
	def := m.j.Def
	for _, p := range m.j.Procs {
		p.def = &def
		if !p.Stopping && !p.HandedOver && !p.NoCheck && p.CheckAt.IsZero() {
			p.CheckAt = now
		}
		if !p.Ready && p.StartBy.IsZero() && policy.StartTimeout > 0 && def.Ready.Mode != loader.ReadyExit {
			p.StartBy = now.Add(policy.StartTimeout)
		}
		if p.Ready && p.ReadySince.IsZero() {
			p.ReadySince = p.Started
		}
		if p.Ready && def.Watchdog > 0 && p.WatchdogAt.IsZero() {
			p.WatchdogAt = now.Add(def.Watchdog)
		}
		if p.Stopping && p.KillAt.IsZero() {
			p.KillAt = now.Add(killGrace)
		}
	}
	return m
}

// Begin is the machine's first output: its status, onWait for a new job, the watch of every
// group an old image was ending, and its first deadline.
func (m *Machine) Begin(now time.Time) []Effect {
	m.now, m.out = now, nil
	m.publish()
	if !m.restored {
		m.hook(StateWait, "")
	}
	for _, l := range m.j.Lingering {
		m.emit(WatchGroup{Pgid: l.Pgid})
	}
	if m.j.State == StateListen {
		m.emit(WatchSockets{On: true}) // carried across god's upgrade: watch again
	}
	m.rearm()
	return m.out
}

// Step applies one event that happened at now and returns the effects, in the order to run them.
func (m *Machine) Step(now time.Time, ev Event) []Effect {
	m.now, m.out = now, nil
	if m.finished {
		return nil
	}
	switch ev := ev.(type) {
	case Start:
		m.start()
	case Listen:
		m.listen()
	case Readable:
		m.readable()
	case Stop:
		m.interruptReload("stopped on request")
		m.stop(AfterStopped, "stopped on request")
	case Restart:
		m.interruptReload("restarted on request")
		if m.live() > 0 {
			m.stop(AfterStart, "restart on request")
		} else {
			m.start()
		}
	case Kill:
		if m.j.State == StateStop {
			for _, p := range m.j.Procs {
				m.kill(p, "hurried")
			}
		}
	case Remove:
		m.removed = true
		m.j.RespawnAt, m.j.RetryAt = time.Time{}, time.Time{}
		m.interruptReload("job removed")
		if len(m.j.Procs) > 0 {
			m.stop(AfterRemove, "removed")
		}
	case Define:
		m.j.Def = ev.Def
		m.emit(SyncSockets{Listen: ev.Def.Listen, User: ev.Def.User, Group: ev.Def.Group})
		if m.j.State == StateListen {
			m.emit(WatchSockets{On: true}) // the sockets may have changed
		}
		m.publish()
	case Spawned:
		m.spawned(ev)
	case SpawnFailed:
		m.spawnFailed(ev)
	case Exited:
		m.exited(ev)
	case Checked:
		m.checked(ev)
	case StopAnswered:
		m.stopAnswered(ev)
	case Notified:
		m.notified(ev)
	case Adopted:
		m.adopted(ev)
	case GroupGone:
		m.groupGone(ev.Pgid)
	case Tick:
		m.armed = time.Time{} // the timer fired: whatever comes next must be armed again
		m.tick()
	case FDsFreed:
		if m.j.Reason == ReasonNoFDs && !m.removed && m.j.RespawnAt.After(m.now) {
			m.j.RespawnAt = m.now
			m.tick()
		}
	case ReloadAsked:
		m.beginReload(ev.ID)
	case Defined:
		m.reloadDefined(ev)
	case SocketsSynced:
		m.reloadSocketsSynced(ev)
	case SignalFailed:
		m.failReload(fmt.Sprintf("signal %s to pid %d: %v", loader.SignalName(ev.Sig), ev.Pid, ev.Err))
	case Freeze:
		if m.handover != nil {
			m.handoverExpired()
		}
	default:
		panic(fmt.Sprintf("jobstate: unknown event %T", ev))
	}
	if m.removed && len(m.j.Procs) == 0 && len(m.j.Lingering) == 0 && m.spawning == nil {
		m.finished = true
		m.interruptReload("job removed")
		m.emit(Arm{})
		m.emit(Removed{})
		return m.out
	}
	m.rearm()
	return m.out
}

func (m *Machine) emit(e Effect) { m.out = append(m.out, e) }

func (m *Machine) log(level slog.Level, msg string, args ...any) {
	m.emit(Log{Level: level, Msg: msg, Args: args})
}

// move is the one place where the job's state changes; it keeps the machine to Transitions.
func (m *Machine) move(to State, reason string) {
	if from := m.j.State; from != to && !Allowed(from, to) {
		msg := fmt.Sprintf("job %s: move from %s to %s is not in the state table (%s)", m.j.Name, from, to, reason)
		if m.Strict {
			panic(msg)
		}
		m.log(slog.LevelError, "BUG: "+msg)
	}
	switch {
	case to == StateListen:
		m.emit(WatchSockets{On: true})
	case m.j.State == StateListen:
		m.emit(WatchSockets{On: false})
	}
	m.j.State, m.j.Since, m.j.Reason = to, m.now, reason
}

// enter moves to state s, publishes the change and tells the loader (on<State>).
func (m *Machine) enter(s State, reason string) {
	m.move(s, reason)
	m.publish()
	defer m.reloadWatch()
	if s == StateStart {
		return // onStart went out with each process started: once per process
	}
	pid := ""
	for _, p := range m.j.Procs {
		if p.Generation == m.j.Generation && !p.Stopping {
			pid = strconv.Itoa(p.Pid)
		}
	}
	m.hook(s, pid)
}

func (m *Machine) enterIfNew(s State, reason string) {
	if m.j.State != s {
		m.enter(s, reason)
	} else {
		m.publish()
	}
	m.reloadWatch()
}

func (m *Machine) hook(s State, args ...string) {
	if len(args) == 1 && args[0] == "" {
		args = nil
	}
	m.emit(Hook{Args: append([]string{s.Hook()}, args...)})
}

func (m *Machine) publish() { m.emit(Publish{}) }

func (m *Machine) proc(pid int) *Proc {
	for _, p := range m.j.Procs {
		if p.Pid == pid {
			return p
		}
	}
	return nil
}

func (m *Machine) dropProc(pid int) {
	for i, p := range m.j.Procs {
		if p.Pid == pid {
			m.j.Procs = append(m.j.Procs[:i:i], m.j.Procs[i+1:]...)
			return
		}
	}
}

// live counts the processes of the serving generation that are not being stopped.
func (m *Machine) live() int {
	n := 0
	for _, p := range m.j.Procs {
		if p.Generation == m.j.Generation && !p.Stopping && !p.HandedOver {
			n++
		}
	}
	return n
}

func (m *Machine) instances() int { return max(m.j.Def.Instances, 1) }

func (m *Machine) backoff() Backoff { return m.policy.Backoff.With(m.j.Def.Rules) }

func (m *Machine) nextGeneration() int {
	m.j.GenCounter++
	return m.j.GenCounter
}

// start runs the job now if it is down, resetting its failure count.
func (m *Machine) start() {
	switch m.j.State {
	case StateWait, StateListen, StateStopped, StateDone, StateFailed:
		m.j.Fails = 0
		m.j.RetryAt = time.Time{}
		m.j.Generation = m.nextGeneration()
		m.spawnMissing()
	case StateBackoff:
		m.j.RespawnAt = time.Time{}
		m.spawnMissing()
	case StateStop:
		m.j.After = AfterStart
	}
}

// missing returns an instance of generation gen that has no process.
func (m *Machine) missing(gen, instances int) (int, bool) {
	have := make([]bool, instances)
	for _, p := range m.j.Procs {
		if p.Generation == gen && !p.Stopping && p.Instance < instances {
			have[p.Instance] = true
		}
	}
	for i, ok := range have {
		if !ok {
			return i, true
		}
	}
	return 0, false
}

// spawnMissing starts the instances of the serving generation that have no process, one at a
// time: each Spawned goes on with the next.
func (m *Machine) spawnMissing() {
	if m.removed || m.spawning != nil {
		return
	}
	if i, ok := m.missing(m.j.Generation, m.instances()); ok {
		def := m.j.Def
		m.spawning = &Spawn{Gen: m.j.Generation, Instance: i, Def: &def}
		m.emit(*m.spawning)
		return
	}
	m.settle()
}

func (m *Machine) spawned(ev Spawned) {
	sp := m.spawning
	if sp == nil || sp.Gen != ev.Gen || sp.Instance != ev.Instance {
		panic(fmt.Sprintf("jobstate: job %s: Spawned %+v without its Spawn", m.j.Name, ev))
	}
	m.spawning = nil
	p := &Proc{Pid: ev.Pid, Pgid: ev.Pid, Generation: ev.Gen, Instance: ev.Instance, Started: m.now, CheckAt: m.now, def: sp.Def}
	if sp.Def.Ready.Mode == loader.ReadyDelay {
		p.ReadyAt = m.now.Add(sp.Def.Ready.Delay)
	}
	// A one-shot (ready: exit) runs as long as its task takes: no start timeout.
	if st := m.policy.StartTimeout; st > 0 && sp.Def.Ready.Mode != loader.ReadyExit {
		p.StartBy = m.now.Add(st)
	}
	// The watchdog is armed once the process is ready (becameReady): start-up is the start
	// timeout's business, as with systemd's WatchdogSec=.
	m.j.Procs = append(m.j.Procs, p)
	if m.reload != nil {
		m.reload.newPids = append(m.reload.newPids, p.Pid)
	}
	if ev.Gen == m.j.Generation && (!m.j.State.Running() || m.j.State == StateStop) {
		// The job starts with this process (a restart starts once the stop is over); onStart goes
		// out below, once per process.
		m.move(StateStart, "")
	}
	// Publish at once: the supervisor routes notify messages by the pids of the last status,
	// and a process may say READY=1 before the job has started its other instances.
	m.publish()
	m.log(slog.LevelInfo, "started", "pid", p.Pid, "gen", p.Generation, "instance", p.Instance)
	m.hook(StateStart, strconv.Itoa(p.Pid))
	if r := m.reload; r != nil && r.phase == phaseStart && ev.Gen == r.newGen {
		m.reloadSpawnNext()
		return
	}
	m.spawnMissing()
}

func (m *Machine) spawnFailed(ev SpawnFailed) {
	m.spawning = nil
	m.j.LastExit = "exec: " + ev.Err.Error()
	if OutOfFDs(ev.Err) && (m.reload == nil || ev.Gen != m.reload.newGen) {
		// god (or the system) has no fd left: not the job's failure. No failure is counted, so
		// it never backs off longer nor fails for it; it tries again every FDRetry, quietly (the
		// supervisor says it once for all jobs), and starts once a stopped job freed its fds.
		// A job that was waiting to start goes on waiting (god stop still ends it: the pending
		// try is cleared like a back-off's); one that was restarting waits in backoff.
		m.log(slog.LevelDebug, "cannot start: out of file descriptors; trying again", "err", ev.Err, "retry_in", FDRetry.String())
		m.j.RespawnAt = m.now.Add(FDRetry)
		switch {
		case m.live() > 0:
			m.settle()
		case m.j.State == StateWait || m.j.State == StateBackoff:
			if m.j.Reason != ReasonNoFDs {
				m.j.Reason = ReasonNoFDs
				m.publish()
			}
		default:
			m.enter(StateBackoff, ReasonNoFDs)
		}
		return
	}
	m.log(slog.LevelError, "cannot start", "err", ev.Err)
	if r := m.reload; r != nil && r.phase == phaseStart && ev.Gen == r.newGen {
		m.failReload("cannot start the new generation: " + ev.Err.Error())
		return
	}
	m.restartOrFail(false, "cannot start: "+ev.Err.Error())
}

// settle decides the job's state from its processes when it is neither stopping nor down.
func (m *Machine) settle() {
	if m.j.State == StateStop {
		m.maybeStopped()
		return
	}
	var live, ready, degraded int
	for _, p := range m.j.Procs {
		if p.Generation != m.j.Generation || p.Stopping || p.HandedOver {
			continue
		}
		live++
		if p.Ready {
			ready++
		}
		if p.Degraded {
			degraded++
		}
	}
	switch {
	case live == 0:
		// down, or backing off: restartOrFail entered the state
	case ready == live && live >= m.instances() && degraded > 0:
		m.enterIfNew(StateDegrade, "check says degrade")
	case ready == live && live >= m.instances():
		m.enterIfNew(StateRun, "")
	default:
		m.enterIfNew(StateStart, "")
	}
}

// becameReady marks one process ready and moves the job (or its reload) on.
func (m *Machine) becameReady(p *Proc) {
	p.Ready = true
	p.ReadySince = m.now
	p.StartBy = time.Time{}
	if p.def.Watchdog > 0 {
		p.WatchdogAt = m.now.Add(p.def.Watchdog)
	}
	if r := m.reload; r != nil && (r.owns(p) || r.phase == phaseSignal) {
		m.reloadProgress()
		return
	}
	m.settle()
}

// procFailed stops one process because god judged it failed; its exit then counts as a failure
// (or fails the reload it belongs to).
func (m *Machine) procFailed(p *Proc, why string) {
	if m.reload != nil && m.reload.owns(p) {
		m.failReload(why)
		return
	}
	m.stopProc(p, why)
}

// ReasonNoFDs is the reason of a job waiting to start because god has no fd left.
const ReasonNoFDs = "waiting for a free file descriptor (god has none left)"

// FDRetry is how often a job that could not start because god had no file descriptor left tries
// again.
const FDRetry = time.Second

// OutOfFDs reports a start that failed for want of file descriptors: EMFILE (god's limit) or
// ENFILE (the system's). The machine then waits and retries; the actor says it once.
func OutOfFDs(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
