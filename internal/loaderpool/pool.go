// Package loaderpool runs the loader files of god's directory: a pool of `FILE godv1` instances
// per file that answers the jobs' requests (definitions, checks, stops, hooks), and the rules for
// which files in the directory are loaders at all. The supervisor's loop decides when a file is
// read, replaced or removed; a pool only runs its instances, and its own goroutines never reach
// into the loop.
package loaderpool

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/loader"
)

// Pool runs the instances of one loader file and hands each request to an idle one. Loaders
// are stateless, so a long check on one instance never holds up another job's check or a control
// command: the pool starts another instance, up to max. An instance that breaks the protocol,
// answers late or exits is killed, and the next one starts after a back-off; the jobs it serves are
// never touched by that.
type Pool struct {
	path  string
	name  string
	cfg   *Config
	log   *slog.Logger
	max   int
	slots chan struct{} // one token per instance that may run at once
	mu    sync.Mutex
	idle  []*instance
	epoch int // bumped when the file changes: instances of an older epoch are retired
	// epochSig is the file as it was when the epoch's first instance started (epochSigOK): a
	// reload whose loader file is unchanged since may ask a running instance.
	epochSig   FileSig
	epochSigOK bool
	fails      int
	retryAt    time.Time
	// slowHandshakes counts the handshakes of this file that timed out: each doubles the next
	// one's timeout, up to maxSlowHandshakes, before god takes the file for one that does not
	// speak godv1. A loader may be slow to start on a loaded machine.
	slowHandshakes int
	closed         bool
	running        map[*instance]bool
	idleTimer      *time.Timer // armed while an instance is idle: see endIdle
	hooks          hookQueue   // the jobs' on<State> notifications (hooks.go)
}

// instance is one running `FILE godv1` process.
type instance struct {
	pid    int
	epoch  int
	jobs   []string
	client *loader.Client
	stdin  *os.File
	stdout *os.File
	exited chan struct{}
	exit   string // how the process ended, set before exited is closed
	killed bool
	ready  bool      // the handshake was read: from then on an exit is news
	idleAt time.Time // when it was last released
}

// Config is what the pools of one god share: its settings for loaders and what they run with.
// A pool reads it and never changes it.
type Config struct {
	Reaper           *reaper.Reaper    // starts every instance and reaps it
	Env              []string          // an instance's environment (god's, less its own variables)
	Log              *slog.Logger      // each pool logs with loader=PATH
	Instances        int               // instances of one file at once
	Idle             time.Duration     // an instance idle this long exits
	HandshakeTimeout time.Duration     // a new instance's first line (doubled per slow handshake)
	Timeout          time.Duration     // a reply to anything but a check (hooks, definitions)
	Backoff          jobstate.Backoff  // the delay before the next start after failures
	Procs            *Procs            // every instance of every pool, until reaped
	OnFailure        func(path string) // counts a failed instance (metrics); may be nil
}

// New returns the pool of the loader file at path. It starts no instance: the first request does.
func New(path string, cfg *Config) *Pool {
	return &Pool{
		path:    path,
		name:    filepath.Base(path),
		cfg:     cfg,
		log:     cfg.Log.With("loader", path),
		max:     cfg.Instances,
		slots:   make(chan struct{}, cfg.Instances),
		running: make(map[*instance]bool),
		hooks:   hookQueue{min: minHookQueue},
	}
}

// errLoaderBackoff is returned while a failed loader waits out its restart delay.
var errLoaderBackoff = errors.New("loader restarting after failure")

// Ask sends one request to an instance and returns its reply. ctx bounds the wait for an
// instance (all of them may be busy with requests queued before this one); within bounds the
// loader's reply from when the request is written to it, so that time spent queued in god never
// counts against the loader (a loader killed for being slow must have been given within).
func (p *Pool) Ask(ctx context.Context, within time.Duration, job, prop string, args ...string) (loader.Message, error) {
	inst, err := p.acquire(ctx, true)
	if err != nil {
		return nil, err
	}
	// The request is on its way: only within ends it now (ctx's deadline may be nearly spent
	// by the wait; cutting the exchange short would kill a loader that is fine).
	m, err := inst.client.AskWithin(context.WithoutCancel(ctx), within, job, prop, args...)
	if err != nil {
		p.fail(inst, &loaderError{path: p.path, err: err}, true)
		return nil, fmt.Errorf("loader %s: %s %s: %w", p.path, prop, job, err)
	}
	p.release(inst, true)
	return m, nil
}

// acquire returns an idle instance of the current epoch, or starts one. A start that fails is
// logged here when logIt is set; a load's failure is logged by the supervisor (with its own
// count and retry), so that each attempt is one record.
func (p *Pool) acquire(ctx context.Context, logIt bool) (*instance, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("loader %s: all %d instances busy: %w", p.path, p.max, ctx.Err())
	}
	p.mu.Lock()
	for len(p.idle) > 0 {
		inst := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if inst.epoch == p.epoch && !inst.gone() {
			p.mu.Unlock()
			return inst, nil
		}
		p.killLocked(inst)
	}
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return nil, fmt.Errorf("loader %s: closed", p.path)
	}
	if wait := time.Until(p.retryAt); wait > 0 {
		p.mu.Unlock()
		<-p.slots
		return nil, fmt.Errorf("loader %s: %w in %s", p.path, errLoaderBackoff, wait.Round(time.Millisecond))
	}
	epoch := p.epoch
	if !p.epochSigOK {
		// Read before the exec: if the file changes in between, the next look sees a
		// difference and starts afresh, never the other way round.
		if fi, err := os.Stat(p.path); err == nil {
			p.epochSig, p.epochSigOK = SigOf(fi), true
		}
	}
	p.mu.Unlock()
	inst, err := p.spawn(ctx, epoch)
	if err != nil {
		if !errors.Is(err, loader.ErrNotGodv1) {
			p.noteFailure(err, logIt)
		}
		<-p.slots
		return nil, err
	}
	return inst, nil
}

// release returns an instance to the idle list.
func (p *Pool) release(inst *instance, ok bool) {
	p.mu.Lock()
	if ok {
		p.fails = 0
	}
	if p.closed || inst.epoch != p.epoch || inst.gone() {
		p.killLocked(inst)
	} else {
		inst.idleAt = time.Now()
		p.idle = append(p.idle, inst)
		if p.idleTimer == nil {
			p.idleTimer = time.AfterFunc(p.cfg.Idle, p.endIdle)
		}
	}
	p.mu.Unlock()
	<-p.slots
}

// endIdle ends the instances nobody asked anything for LoaderIdle. Loaders are stateless, so
// the next request simply starts one (a few milliseconds); meanwhile a quiet god with many jobs
// keeps no loader process around. Instances that are used stay: with checks every second, the one
// or two instances that answer them never go idle, and those a burst started go away again.
func (p *Pool) endIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.idleTimer = nil
	now := time.Now()
	keep := p.idle[:0]
	var next time.Time
	for _, inst := range p.idle {
		if now.Sub(inst.idleAt) >= p.cfg.Idle {
			p.log.Debug("loader idle: ended", "pid", inst.pid)
			p.killLocked(inst)
			continue
		}
		keep = append(keep, inst)
		if next.IsZero() || inst.idleAt.Before(next) {
			next = inst.idleAt
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	if len(p.idle) > 0 && !p.closed {
		p.idleTimer = time.AfterFunc(next.Add(p.cfg.Idle).Sub(now), p.endIdle)
	}
}

// fail kills an instance that broke the protocol or answered late and delays the next start
// (logged when logIt is set, see acquire).
func (p *Pool) fail(inst *instance, err error, logIt bool) {
	p.mu.Lock()
	closed := p.closed
	p.killLocked(inst)
	p.mu.Unlock()
	<-p.slots
	if !closed {
		p.noteFailure(err, logIt)
	}
}

// noteFailure counts a failure and sets the delay before the next start.
func (p *Pool) noteFailure(err error, logIt bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.fails++
	if p.cfg.OnFailure != nil {
		p.cfg.OnFailure(p.path)
	}
	d := p.cfg.Backoff.Delay(p.fails)
	if d < 100*time.Millisecond && p.fails > 1 {
		d = 100 * time.Millisecond
	}
	p.retryAt = time.Now().Add(d)
	if logIt {
		p.log.Error("loader failed; killed, restarting with back-off", "err", err, "retry_in", d.String(), "failures", p.fails)
	}
}

// retire ends every instance: the file changed (or is gone), so its next request starts a fresh one.
func (p *Pool) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch++
	p.epochSigOK = false
	p.fails = 0
	p.retryAt = time.Time{}
	for _, inst := range p.idle {
		p.killLocked(inst)
	}
	p.idle = nil
}

// Close retires every instance and refuses further requests.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	if p.idleTimer != nil {
		p.idleTimer.Stop()
		p.idleTimer = nil
	}
	p.mu.Unlock()
	p.retire()
	p.mu.Lock()
	for inst := range p.running {
		p.killLocked(inst)
	}
	p.mu.Unlock()
}

func (p *Pool) killLocked(inst *instance) {
	if !inst.killed {
		inst.killed = true
		_ = p.cfg.Reaper.SignalGroup(inst.pid, syscall.SIGKILL)
		inst.stdin.Close()
	}
}

func (inst *instance) gone() bool {
	select {
	case <-inst.exited:
		return true
	default:
		return false
	}
}

// Procs are the loader processes of every pool, the closed ones' too, until reaped: god
// waits for them before it exits. Not a WaitGroup: a hook may start an instance while god waits.
type Procs struct {
	mu     sync.Mutex
	exited map[chan struct{}]bool // each instance's exited channel
}

func (l *Procs) add(c chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.exited == nil {
		l.exited = map[chan struct{}]bool{}
	}
	l.exited[c] = true
}

func (l *Procs) remove(c chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.exited, c)
}

// Wait waits until every loader process known now is reaped, for at most timeout, and says
// whether they were.
func (l *Procs) Wait(timeout time.Duration) bool {
	l.mu.Lock()
	chans := make([]chan struct{}, 0, len(l.exited))
	for c := range l.exited {
		chans = append(chans, c)
	}
	l.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	for _, c := range chans {
		select {
		case <-c:
		case <-t.C:
			return false
		}
	}
	return true
}

// spawn starts `FILE godv1` and reads its handshake.
func (p *Pool) spawn(ctx context.Context, epoch int) (*instance, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, err
	}
	pid, exitc, err := p.cfg.Reaper.Start(reaper.Attr{
		Path: p.path, Argv: []string{p.path, loader.Version}, Env: p.cfg.Env,
		Files: []uintptr{inR.Fd(), outW.Fd(), errW.Fd()}, Setpgid: true,
	})
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("loader %s: start: %w", p.path, err)
	}
	inst := &instance{pid: pid, epoch: epoch, stdin: inW, stdout: outR, exited: make(chan struct{})}
	inst.client = loader.NewClient(outR, inW)
	p.cfg.Procs.add(inst.exited)
	p.mu.Lock()
	p.running[inst] = true
	if p.closed {
		// Closed while it started (its loader was removed, or god shuts down): close killed
		// the others, and nothing else would end this one.
		p.killLocked(inst)
	}
	p.mu.Unlock()
	go p.stderr(errR, pid)
	go func() {
		e := <-exitc
		p.mu.Lock()
		inst.exit = e.String()
		p.mu.Unlock()
		close(inst.exited)
		outR.Close()
		p.mu.Lock()
		delete(p.running, inst)
		report := !inst.killed && inst.ready // before its handshake, the failure says how it ended
		p.mu.Unlock()
		p.cfg.Procs.remove(inst.exited)
		if report {
			p.log.Warn("loader exited", "pid", pid, "exit", e.String())
		}
	}()
	p.mu.Lock()
	hto := p.cfg.HandshakeTimeout << min(p.slowHandshakes, maxSlowHandshakes)
	p.mu.Unlock()
	hctx, cancel := context.WithTimeout(ctx, hto)
	defer cancel()
	jobs, err := inst.client.Handshake(hctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && hctx.Err() != nil && ctx.Err() == nil {
			p.mu.Lock()
			p.slowHandshakes++
			p.mu.Unlock()
			err = fmt.Errorf("%w (within %s)", err, hto)
		}
		if ended := p.endedBeforeHandshake(inst, err); ended != "" {
			err = errors.New(ended)
		}
		p.mu.Lock()
		p.killLocked(inst)
		p.mu.Unlock()
		return nil, &loaderError{path: p.path, err: err}
	}
	p.mu.Lock()
	inst.ready = true
	p.mu.Unlock()
	inst.jobs = jobs
	return inst, nil
}

// maxSlowHandshakes bounds the doubling of the handshake timeout (2 s: 4, 8, 16 s).
const maxSlowHandshakes = 3

// RetrySlowHandshake says whether a file whose handshake timed out gets another try, with a
// longer timeout, before it is taken for a program that does not speak godv1.
func (p *Pool) RetrySlowHandshake() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.slowHandshakes <= maxSlowHandshakes
}

// NewFileVersion forgets the slow handshakes of an older version of the file.
func (p *Pool) NewFileVersion() {
	p.mu.Lock()
	p.slowHandshakes = 0
	p.mu.Unlock()
}

// endedBeforeHandshake says how a loader whose output ended before its handshake ended, "ended
// before its handshake: exit 3 (EOF)", waiting a moment for its exit; "" for another error. The
// read error alone (EOF, or a closed pipe when the exit won the race) would not say why.
func (p *Pool) endedBeforeHandshake(inst *instance, err error) string {
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, os.ErrClosed) {
		return ""
	}
	select {
	case <-inst.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		return "ended before its handshake: " + inst.exit + " (EOF)"
	case <-time.After(time.Second):
		return "closed its output before its handshake (EOF)"
	}
}

// loaderError is an error of the loader at path. Its text names the file once: the loader
// package's own "loader: " prefix is dropped, so a failure reads "loader /etc/god/web: handshake:
// read reply: ..." and not "loader /etc/god/web: handshake: loader: handshake: ...".
type loaderError struct {
	path string
	err  error
}

func (e *loaderError) Error() string {
	return "loader " + e.path + ": " + strings.TrimPrefix(e.err.Error(), "loader: ")
}

func (e *loaderError) Unwrap() error { return e.err }

// stderr relays a loader's stderr into god's log, one record a line, tagged with the loader. A
// loader that writes without end must not flood god's log (or the journal): past a burst of
// stderrBurst lines it gets stderrRate lines a second, and god says how many it left out.
func (p *Pool) stderr(r *os.File, pid int) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64*1024)
	tokens, last, suppressed := float64(stderrBurst), time.Now(), 0
	for sc.Scan() {
		now := time.Now()
		tokens = min(stderrBurst, tokens+now.Sub(last).Seconds()*stderrRate)
		last = now
		if tokens < 1 {
			if suppressed == 0 {
				p.log.Warn("loader stderr: too many lines; leaving lines out", "pid", pid, "rate", stderrRate)
			}
			suppressed++
			continue
		}
		tokens--
		if suppressed > 0 {
			p.log.Warn("loader stderr: lines left out (too many)", "pid", pid, "lines", suppressed)
			suppressed = 0
		}
		p.log.Info(sc.Text(), "stream", "loader-stderr", "pid", pid)
	}
	if suppressed > 0 {
		p.log.Warn("loader stderr: lines left out (too many)", "pid", pid, "lines", suppressed)
	}
}

// The rate limit of a loader's stderr in god's log.
const (
	stderrBurst = 200 // lines at once
	stderrRate  = 50  // lines a second after that
)

// Load starts a fresh instance and reads every job definition it announces.
func (p *Pool) Load(ctx context.Context) ([]loader.Definition, error) {
	p.retire()
	inst, err := p.acquire(ctx, false)
	if err != nil {
		return nil, err
	}
	// Every job's properties in one pipelined set: a loader of 1000 jobs is read in a few dozen
	// round trips instead of 11000. Each reply still has LoaderTimeout.
	defs, err := inst.client.DefineAll(ctx, p.cfg.Timeout, inst.jobs)
	if err != nil {
		if inst.client.Broken() != nil {
			p.fail(inst, err, false)
		} else {
			p.release(inst, false)
		}
		return nil, &loaderError{path: p.path, err: err} // names the job and property
	}
	p.release(inst, true)
	p.hookJobs(len(defs))
	return defs, nil
}

// Define reads one job's definition from a fresh instance (a reload: the file may have been
// replaced since the instances now running were started).
func (p *Pool) Define(ctx context.Context, job string) (loader.Definition, error) {
	if !p.unchanged() {
		p.retire()
	}
	inst, err := p.acquire(ctx, true)
	if err != nil {
		return loader.Definition{}, err
	}
	found := false
	for _, n := range inst.jobs {
		found = found || n == job
	}
	if !found {
		p.release(inst, true)
		return loader.Definition{}, fmt.Errorf("loader %s no longer defines job %s", p.path, job)
	}
	// Each reply has LoaderTimeout from its request's write, not from when this reload waited for
	// an instance (ctx bounded that, and the start of a fresh one).
	defs, err := inst.client.DefineAll(context.WithoutCancel(ctx), p.cfg.Timeout, []string{job})
	var def loader.Definition
	if err == nil {
		def = defs[0]
	}
	if err != nil {
		if inst.client.Broken() != nil {
			p.fail(inst, err, true)
		} else {
			p.release(inst, false)
		}
		return loader.Definition{}, fmt.Errorf("loader %s: job %s: %w", p.path, job, err)
	}
	p.release(inst, true)
	return def, nil
}

// unchanged reports whether the loader file is the one the running instances were started from:
// then a reload can ask one of them (loaders are stateless) instead of paying for a fresh start.
func (p *Pool) unchanged() bool {
	fi, err := os.Stat(p.path)
	if err != nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epochSigOK && p.epochSig == SigOf(fi)
}
