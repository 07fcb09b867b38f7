package supervisor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// Per-connection jobs (the accept property, systemd's Accept=yes): god accepts on the job's
// stream socket itself and runs one process of the job per connection. The job's state machine
// never sees these processes: the job actor runs an acceptor instead of the machine while the
// job is started, and a connection process's exit is only counted.

// acceptor is the accept loop of one started accept job and the processes it runs.
type acceptor struct {
	j     *job
	ln    net.Listener
	slots chan struct{} // one token per running connection process: max-connections
	quit  chan struct{} // closed to stop the accept loop (stopLoop)
	done  chan struct{} // closed when the accept loop returned

	mu       sync.Mutex
	running  map[int]bool  // pids of the connection processes
	idle     chan struct{} // closed once stopping and no process is left
	stopping bool
	served   int // connection processes ended
	status   control.JobStatus
}

// acceptStart starts accepting on the job's one socket; it returns an error naming the job.
func (j *job) acceptStart() error {
	if j.acc != nil {
		return nil
	}
	def := j.m.Def()
	if j.sockErr != nil || len(j.socks) < len(def.Listen) {
		j.openSockets()
	}
	if j.sockErr != nil {
		return j.sockErr
	}
	a := &acceptor{j: j, slots: make(chan struct{}, max(def.MaxConnections, 1)),
		done: make(chan struct{}), running: make(map[int]bool), idle: make(chan struct{})}
	close(a.done) // no loop yet
	a.status = j.m.Status(j.socketList())
	a.status.State = string(jobstate.StateRun)
	a.status.Since = time.Now()
	if err := a.startLoop(); err != nil {
		return err
	}
	j.acc = a
	a.publish()
	return nil
}

// acceptListener is a listener on a copy of the job's one socket, for god to accept on.
func (j *job) acceptListener() (net.Listener, error) {
	if len(j.socks) != 1 {
		return nil, fmt.Errorf("job %s: accept needs exactly one listen socket, got %d", j.name, len(j.socks))
	}
	f, err := dupFile(j.socks[0].file)
	if err != nil {
		return nil, fmt.Errorf("job %s: accept: socket %s: %w", j.name, j.socks[0].spec.Name, err)
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("job %s: accept: socket %s is not a stream listener: %w", j.name, j.socks[0].spec.Name, err)
	}
	return ln, nil
}

// acceptRenew restarts the accept loop with the job's current definition (a reload); the
// running connection processes and their slots stay.
func (j *job) acceptRenew() error {
	a := j.acc
	a.stopLoop()
	def := j.m.Def()
	if j.sockErr != nil || len(j.socks) < len(def.Listen) {
		j.openSockets()
	}
	if err := a.startLoop(); err != nil {
		j.acceptStop(acceptStopGrace)
		return err
	}
	return nil
}

// stopLoop stops accepting and waits until the accept loop returned: no connection is being
// accepted or spawned after it. Connections wait in the kernel's queue.
func (a *acceptor) stopLoop() {
	if a.quit != nil {
		close(a.quit) // a loop waiting for a free slot
		a.quit = nil
	}
	if a.ln != nil {
		a.ln.Close() // a loop in Accept
	}
	<-a.done
}

// startLoop accepts again, with the job's current definition, on a new listener.
func (a *acceptor) startLoop() error {
	ln, err := a.j.acceptListener()
	if err != nil {
		return err
	}
	a.ln, a.quit, a.done = ln, make(chan struct{}), make(chan struct{})
	go a.loop(*a.j.m.Def(), ln, a.quit, a.done)
	return nil
}

// restoreAccept takes an accept job over in god's new image after an upgrade: the connection
// processes the old image ran are the acceptor's again (their exits free their slots, god stop
// ends them) and god accepts on the job's socket again. Connections that came during the
// hand-over waited in the kernel's queue.
func (j *job) restoreAccept(st *upgradestate.Accept) {
	def := j.m.Def()
	a := &acceptor{j: j, slots: make(chan struct{}, max(def.MaxConnections, 1, len(st.Conns))),
		done: make(chan struct{}), running: make(map[int]bool), idle: make(chan struct{}), served: st.Served}
	close(a.done) // no loop yet
	a.status = j.m.Status(j.socketList())
	a.status.State, a.status.Since = string(jobstate.StateRun), st.Since
	for _, pid := range st.Conns {
		a.running[pid] = true
		a.slots <- struct{}{}
	}
	a.status.Connections = len(a.running)
	j.acc = a
	for _, pid := range st.Conns {
		if err := j.sup.reaper.Claim(pid, func(e jobstate.Exit) { go a.exited(e) }); err != nil {
			j.log.Warn("upgrade: connection process not restored", "pid", pid, "err", err)
			a.mu.Lock()
			delete(a.running, pid)
			a.status.Connections = len(a.running)
			a.mu.Unlock()
			<-a.slots
		}
	}
	if err := a.startLoop(); err != nil {
		j.log.Error("upgrade: accept job does not accept again", "err", err)
	}
	a.publish()
}

// state is the acceptor's part of the upgrade state; the loop must be stopped (stopLoop), so
// that no process is being spawned.
func (a *acceptor) state() *upgradestate.Accept {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &upgradestate.Accept{Conns: a.connsLocked(), Served: a.served, Since: a.status.Since}
}

// dupFile gives an *os.File of its own for the socket, so that the listener's Close leaves god's copy.
func dupFile(f *os.File) (*os.File, error) {
	fd, err := fdpass.RawFd(f)
	if err != nil {
		return nil, err
	}
	nfd, err := syscall.Dup(fd)
	if err != nil {
		return nil, err
	}
	syscall.CloseOnExec(nfd)
	return os.NewFile(uintptr(nfd), "accept"), nil
}

// loop accepts while a slot is free; beyond max-connections running processes it waits, and
// connections wait in the kernel's queue.
func (a *acceptor) loop(def loader.Definition, ln net.Listener, quit <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case a.slots <- struct{}{}:
		case <-quit:
			return
		}
		c, err := ln.Accept()
		if err != nil {
			<-a.slots
			if !errors.Is(err, net.ErrClosed) {
				a.j.log.Warn("accept", "err", err)
			}
			return
		}
		if err := a.spawn(&def, c); err != nil {
			<-a.slots
			a.j.log.Warn("connection process", "err", err)
		}
	}
}

// spawn runs one process of the job on connection c (closed here: the process holds it).
func (a *acceptor) spawn(def *loader.Definition, c net.Conn) error {
	defer c.Close()
	fc, ok := c.(interface{ File() (*os.File, error) })
	if !ok {
		return fmt.Errorf("job %s: connection of type %T", a.j.name, c)
	}
	f, err := fc.File() // a blocking descriptor, as a shell's read wants
	if err != nil {
		return fmt.Errorf("job %s: connection: %w", a.j.name, err)
	}
	defer f.Close()
	host, port := "", ""
	switch ra := c.RemoteAddr().(type) {
	case *net.TCPAddr:
		host, port = ra.IP.String(), strconv.Itoa(ra.Port)
	case *net.UnixAddr:
		if ra.Name != "@" { // Go's name of an unnamed (unbound) peer
			host = ra.Name
		}
	}
	env, settings, err := a.j.procEnvShared(def)
	if err != nil {
		return err
	}
	env = mergeEnv(env, "REMOTE_ADDR="+host, "REMOTE_PORT="+port)
	env = mergeEnv(env, fdpass.Env([]string{"connection"})...)
	var pid int
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.stopping {
		return fmt.Errorf("job %s: stopping", a.j.name)
	}
	pid, err = a.j.sup.spawnProcess(spawnSpec{
		job: a.j.name, argv: def.Exec, env: env, dir: def.Dir,
		extraFiles: []uintptr{f.Fd()}, listenPid: true, conn: f.Fd(),
		format: joblog.Format(def.Log), settings: settings, cgroup: def.Cgroup, stderr: def.Stderr,
		exited: func(e jobstate.Exit) { go a.exited(e) }, // the reaper must not wait for a.mu
	})
	if err != nil {
		return err
	}
	a.running[pid] = true
	a.status.Connections = len(a.running)
	a.publishLocked()
	return nil
}

// exited counts one connection process's end and frees its slot.
func (a *acceptor) exited(e jobstate.Exit) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.running[e.Pid] {
		return // its spawn has not returned yet: cannot happen with the lock held there
	}
	delete(a.running, e.Pid)
	a.served++
	a.j.sup.contain.forget(e.Pid)
	a.status.Connections = len(a.running)
	if a.stopping && len(a.running) == 0 {
		close(a.idle)
	}
	if !a.stopping {
		a.publishLocked()
	}
	<-a.slots
}

func (a *acceptor) publish() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.publishLocked()
}

// publishLocked tells the supervisor the job runs, with its connection processes (counted in
// its status, and listed in the crash file for a god started after this one is killed).
func (a *acceptor) publishLocked() {
	st := a.status
	a.j.sup.jobEvent(jobEvent{name: a.j.name, state: jobstate.StateRun, status: st, conns: a.connsLocked()})
}

// connsLocked lists the running connection processes, sorted.
func (a *acceptor) connsLocked() []int {
	out := make([]int, 0, len(a.running))
	for pid := range a.running {
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// acceptStop stops accepting, sends SIGTERM to every connection process's group, SIGKILL
// after grace, and waits until they are gone.
func (j *job) acceptStop(grace time.Duration) {
	a := j.acc
	if a == nil {
		return
	}
	j.acc = nil
	a.stopLoop()
	a.mu.Lock()
	a.stopping = true
	pids := make([]int, 0, len(a.running))
	for pid := range a.running {
		pids = append(pids, pid)
	}
	if len(a.running) == 0 {
		close(a.idle)
	}
	a.mu.Unlock()
	for _, pid := range pids {
		j.sup.contain.signal(pid, syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-a.idle:
	case <-t.C:
		a.mu.Lock()
		for pid := range a.running {
			j.sup.contain.signal(pid, syscall.SIGKILL)
		}
		a.mu.Unlock()
		<-a.idle
	}
}

// acceptStopGrace is how long connection processes get between SIGTERM and SIGKILL: a job's
// default stop.
var acceptStopGrace = loader.DefaultStop.Timeout

// acceptCommand runs start, stop, restart, reload and remove of an accept job; it returns
// false for a command the job's machine handles.
func (j *job) acceptCommand(c jobCmd) bool {
	if !j.m.Def().Accept && j.acc == nil {
		return false
	}
	kind := c.kind
	switch kind {
	case cmdStart, cmdListen:
		if err := j.acceptStart(); err != nil {
			j.log.Warn("accept", "err", err)
			st := j.m.Status(j.socketList())
			st.State, st.Reason = string(jobstate.StateFailed), err.Error()
			j.sup.jobEvent(jobEvent{name: j.name, state: jobstate.StateFailed, status: st})
		}
		return true
	case cmdStop, cmdKill:
		grace := acceptStopGrace
		if kind == cmdKill {
			grace = 0
		}
		j.acceptStop(grace)
		st := j.m.Status(j.socketList())
		st.State, st.Since = string(jobstate.StateStopped), time.Now()
		j.sup.jobEvent(jobEvent{name: j.name, state: jobstate.StateStopped, status: st})
		return true
	case cmdRestart:
		j.acceptStop(acceptStopGrace)
		if err := j.acceptStart(); err != nil {
			j.log.Warn("accept", "err", err)
		}
		return true
	case cmdReload:
		// New connections get the current definition at once; running ones keep theirs.
		out := reloadOutcome{ok: true, msg: "accept job: new connections run the current definition"}
		if j.acc == nil {
			out = reloadOutcome{msg: "accept job is not running"}
		} else if err := j.acceptRenew(); err != nil {
			out = reloadOutcome{msg: err.Error()}
		}
		c.reload.done <- out
		return true
	case cmdRemove:
		j.acceptStop(acceptStopGrace)
	}
	return false
}
