package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emielm/watchgod/internal/cgroup"
	"github.com/emielm/watchgod/internal/crashstate"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/loaderpool"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"

	"github.com/emielm/watchgod/internal/dirwatch"
	"github.com/emielm/watchgod/internal/notify"
)

// Config is what god runs with. Zero durations take their defaults.
type Config struct {
	Dir              string        // loader directory
	Socket           string        // control socket path, given to jobs as GOD_SOCKET
	Backoff          Backoff       // restart policy timing
	LoaderTimeout    time.Duration // a loader's reply to anything but check (5 s)
	HandshakeTimeout time.Duration // a new loader's first line (2 s)
	CheckTimeout     time.Duration // a check reply (10 s)
	LingerTimeout    time.Duration // a process group left after its leader exited gets SIGKILL after this (5 s)
	StartTimeout     time.Duration // a process not ready by then has failed (30 s)
	NotifySocket     string        // path of the NOTIFY_SOCKET god runs for its jobs ("": next to the control socket)
	LoaderInstances  int           // instances of one loader file at once (4)
	LoaderIdle       time.Duration // an instance idle this long exits; the next request starts one (10 s)
	Settle           time.Duration // quiet time before a changed loader file is read (150 ms)
	RemoveGrace      time.Duration // a loader file missing this long is gone for good (1 s)
	Logger           *slog.Logger
	Hub              *joblog.Hub
	Version          string
	// Inherited are the sockets god got from its parent (fdpass.Inherited), by name; a job that
	// declares a socket of that name and kind uses it instead of opening one.
	Inherited map[string][]*os.File
	// Upgrade is how `god upgrade` re-executes god (binary, argv, control socket, hooks); the
	// requesting connection is filled in per request. Exe empty: upgrades are refused.
	Upgrade UpgradeOptions
	// Helpers are programs god runs for itself while Run runs, such as the metrics exporter
	// (see Helper).
	Helpers []Helper
	// StateFile is where god keeps the list of its jobs' processes and sockets for a god started
	// after this one was killed (internal/crashstate); empty: none.
	StateFile string
	// Cgroup is a cgroup v2 directory god may create groups in: each job process then runs in
	// a cgroup of its own (containment.go). "auto": god's own cgroup when it is delegated to god
	// (god moves itself into a leaf of it), else subreaper mode. Empty or "off": subreaper mode.
	Cgroup string
}

// Defaults is what god runs with when nothing says otherwise: the daemon's flags show these
// values, and Config fills in every field left zero from them.
var Defaults = Config{
	Backoff:          jobstate.DefaultBackoff,
	LoaderTimeout:    jobstate.DefaultPolicy.LoaderTimeout,
	HandshakeTimeout: 2 * time.Second,
	CheckTimeout:     10 * time.Second,
	LingerTimeout:    jobstate.DefaultPolicy.LingerTimeout,
	StartTimeout:     jobstate.DefaultPolicy.StartTimeout,
	Settle:           150 * time.Millisecond,
	RemoveGrace:      time.Second,
	LoaderIdle:       10 * time.Second,
	LoaderInstances:  4,
}

func (c *Config) defaults() {
	if c.Backoff == (Backoff{}) {
		c.Backoff = Defaults.Backoff
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LoaderTimeout, Defaults.LoaderTimeout)
	def(&c.HandshakeTimeout, Defaults.HandshakeTimeout)
	def(&c.CheckTimeout, Defaults.CheckTimeout)
	def(&c.LingerTimeout, Defaults.LingerTimeout)
	def(&c.StartTimeout, Defaults.StartTimeout)
	def(&c.Settle, Defaults.Settle)
	def(&c.RemoveGrace, Defaults.RemoveGrace)
	def(&c.LoaderIdle, Defaults.LoaderIdle)
	if c.LoaderInstances <= 0 {
		c.LoaderInstances = Defaults.LoaderInstances
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Hub == nil {
		c.Hub = joblog.NewHub(c.Logger, 1000)
	}
	if c.Version == "" {
		c.Version = "dev"
	}
}

// Supervisor is god: it reads loaders, owns the jobs, and answers control requests. Its state is
// owned by one goroutine (loop); everything else talks to it through events.
type Supervisor struct {
	cfg          Config
	log          *slog.Logger
	hub          *joblog.Hub
	reaper       *reaper.Reaper
	devNull      *os.File
	baseEnv      []string
	relayMux     *joblog.Mux      // relays every job's stdout and stderr; made by Run, closed when it returns
	relays       sync.WaitGroup   // pipes being relayed
	loaderProcs  loaderpool.Procs // loader processes not yet reaped
	relayMu      sync.Mutex
	relayPids    map[int]int             // pid -> relays still reading its output
	relayWaiters map[int][]chan struct{} // pid -> closed when its output is all relayed
	relayTags    map[int]*pipeTag        // read end -> the pid its lines carry (proc.go)
	metrics      *metrics
	pools        sync.Map // loader path -> *loaderpool.Pool; read by job goroutines
	inherited    *inheritedSockets
	notify       *notify.Server
	notifyPath   string
	helpers      helperSet
	contain      *containment   // every job process's unit: its group, its escapees, its cgroup
	pidIndex     map[int]string // pid -> job, from the jobs' snapshots; owned by loop
	notifyPids   sync.Map       // int -> struct{}: pidIndex's keys, read by the notify reader (admitNotify)

	notifyIn      chan notify.Message // from the notify socket's reader: bounded (queueNotify)
	notifyDrops   *notify.LogLimiter  // notify messages dropped: logged at most once a second
	euid          int
	pid           int              // god's own, the parent of every process it starts
	unrouted      []unroutedNotify // notify messages from pids not in pidIndex yet; owned by loop
	unroutedTimer timer            // fires when the oldest of them has waited long enough

	restoredState *upgradestate.State // set by Restore: god's new image after an upgrade
	upgradeFailed string              // set by Restore in an old image run again: why the new one gave up

	inbox  *mailbox[loopEvent]
	doneCh chan struct{}

	// Owned by loop.
	loaders   map[string]*loaderFile
	poolCfg   *loaderpool.Config            // what every loader pool runs with (newPool)
	notExec   map[string]loaderpool.FileSig // files skipped for want of execute bits, said once each
	fdLowSaid bool                          // the open-files limit was said to be low (fdlimit.go)
	fdShort   fdShortage                    // starts that failed for want of fds (fdlimit.go)
	unsafe    map[string]loaderpool.FileSig // loaders a root god refuses (loaderpool.Unsafe), said once each
	jobs      map[string]*jobHandle
	subs      map[chan jobEvent]bool
	shutting  bool
	// spawnSlots bounds the job processes being started at once (spawnConcurrency).
	spawnSlots chan struct{}
	// starts counts the processes started (Starts): god's trim after start-up waits until it
	// stops moving.
	starts atomic.Uint64
	// dependents indexes Auto.After backwards: the jobs that wait for a job. nil: to be built
	// (dependentsOf), after any definition changed.
	dependents   map[string][]*jobHandle
	criticalExit *int // set when a critical job ended for good: god's exit status
	hurried      bool
	// What a shutdown still waits for, kept so that asking costs O(1) per event, not a pass over
	// every job (allDown, nothingStopping): jobs seen needing a stop, and jobs sent their stop.
	// Each is a stack of handles whose top is looked at and popped once it no longer counts.
	downWait     []*jobHandle
	stopping     []*jobHandle
	shutWaiters  []chan struct{}
	scanWaiters  []chan string
	removeTimer  timer
	watch        *dirwatch.Watch
	crashTimer   timer                   // writes the crash file (crashfile.go)
	crashPace    pacer                   // when the next write of it may start (crashPacing)
	crashProcs   map[int]crashstate.Proc // pids named in it, read once each
	cycleReports map[string]bool

	sockWatch sockWatcher // the sockets of on-demand jobs in state listen (ondemand.go)
}

// loaderFile is what god knows of one file in the loader directory.
type loaderFile struct {
	path     string
	sig      loaderpool.FileSig
	pool     *loaderpool.Pool
	loading  bool
	loadSeq  int
	notGodv1 bool // reported once; ignored until the file changes
	loaded   bool // at least one successful load
	jobs     []string
	err      string
	fails    int
	retry    timer
	missing  time.Time // first seen missing (grace before removal)
}

// jobHandle is the loop's view of a job: the channel to its goroutine and its last snapshot.
type jobHandle struct {
	j           *job
	loader      string
	def         loader.Definition
	state       jobstate.State
	status      control.JobStatus
	groups      []int // process groups of its processes led by a pid that is gone (MAINPID successors)
	conns       []int // an accept job's connection processes
	startSent   bool  // an auto start or a command is on its way: don't send another
	stopSent    bool
	waitReason  string
	userStopped bool
	inDownWait  bool // in the supervisor's downWait
	inStopping  bool // in the supervisor's stopping
	// retryDefined: the job is failed and its loader changed its definition; autostart tries it
	// again.
	retryDefined bool
}

// loaderLoaded is a finished load of a loader file.
type loaderLoaded struct {
	path string
	seq  int
	defs []loader.Definition
	err  error
}

// spawnConcurrency is how many job processes god starts at once. A fork+exec holds its thread
// for about a millisecond; with thousands of jobs starting together, each of them waiting in
// fork would be a runnable goroutine, and the goroutines that read loaders' replies, run
// timers and answer god status would queue behind them for seconds (a loader that answered at
// once was killed for replies god had not read in time). Jobs past the bound wait, parked.
func spawnConcurrency() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// New prepares a supervisor; Run starts it.
func New(cfg Config) (*Supervisor, error) {
	cfg.defaults()
	dn, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	s := &Supervisor{
		cfg:          cfg,
		log:          cfg.Logger,
		hub:          cfg.Hub,
		devNull:      dn,
		baseEnv:      baseEnv(),
		metrics:      newMetrics(),
		inbox:        newMailbox[loopEvent](),
		spawnSlots:   make(chan struct{}, spawnConcurrency()),
		doneCh:       make(chan struct{}),
		loaders:      make(map[string]*loaderFile),
		jobs:         make(map[string]*jobHandle),
		subs:         make(map[chan jobEvent]bool),
		cycleReports: make(map[string]bool),
		inherited:    &inheritedSockets{files: cfg.Inherited},
		pidIndex:     make(map[int]string),
		crashProcs:   make(map[int]crashstate.Proc),
		crashPace:    crashPacing,
		euid:         os.Geteuid(),
		pid:          os.Getpid(),
		relayPids:    make(map[int]int),
		relayWaiters: make(map[int][]chan struct{}),
		relayTags:    make(map[int]*pipeTag),
	}
	return s, nil
}

// Run reads the loader directory, starts auto jobs and supervises until ctx is cancelled or a
// shutdown request; it then stops every job in reverse dependency order and returns.
func (s *Supervisor) Run(ctx context.Context, r *reaper.Reaper) error {
	if r != nil {
		s.reaper = r
	}
	root, why, err := s.cgroupRoot()
	if err != nil {
		return err
	}
	s.contain = newContainment(root, s.reaper, s.log)
	defer s.sockWatch.close()
	if st := s.restoredState; st != nil {
		s.restoreUnits(st)
		// Children reaped between the re-exec and now were reaped with no one looking for what
		// they left: look now, before the restored jobs hear of those exits.
		s.contain.scan()
	}
	s.log.Info("containment", "mode", s.contain.mode(), "why", why)
	if s.cfg.Dir == "" {
		return errors.New("no loader directory: use --dir DIR")
	}
	fi, err := os.Stat(s.cfg.Dir)
	if err != nil {
		return fmt.Errorf("loader directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("loader directory %s: not a directory", s.cfg.Dir)
	}
	w, err := dirwatch.New(s.cfg.Dir, s.cfg.Settle)
	if err != nil {
		return err
	}
	s.watch = w
	defer w.Close()
	if err := s.startNotify(); err != nil {
		return err
	}
	defer s.notify.Close()
	// Lines are held in god's log buffer and written once per round of the mux.
	mux, err := joblog.NewMux(func() { _ = s.hub.Flush() })
	if err != nil {
		return err
	}
	s.relayMux = mux
	defer mux.Close()
	if s.restoredState != nil {
		s.restore()
	}
	s.rescan(nil)
	s.startHelpers()
	defer s.closeHelpers() // after the loop: a helper may ask for god's state until the end
	return s.loop(ctx)
}

// Done is closed when Run has returned.
func (s *Supervisor) Done() <-chan struct{} { return s.doneCh }

func (s *Supervisor) loop(ctx context.Context) error {
	defer close(s.doneCh)
	ctxDone := ctx.Done()
	names, dirEvents := s.watch.Names(), s.watch.Events()
	for {
		select {
		case <-ctxDone:
			ctxDone = nil
			s.beginShutdown()
		case <-s.inbox.ready:
			for _, ev := range s.inbox.take() {
				s.handleEvent(ev)
				if s.shutdownDone() {
					return nil // what is left in the inbox is for a loop that has ended
				}
			}
			continue
		case m := <-s.notifyIn:
			s.routeNotify(m)
		case name, ok := <-names:
			if !ok {
				names = nil
				s.log.Error("loader directory watch ended; use god rescan", "dir", s.cfg.Dir)
				continue
			}
			if name == "" {
				s.rescan(nil)
			} else {
				s.rescanFile(name)
			}
		case what := <-dirEvents:
			s.log.Warn("loader directory "+what, "dir", s.cfg.Dir)
		case <-s.removeTimer.C():
			s.removeTimer.stop()
			s.rescan(nil)
		case <-s.crashTimer.C():
			s.crashTimer.stop()
			s.writeCrashFile()
		case <-s.unroutedTimer.C():
			s.unroutedTimer.stop()
			s.retryUnrouted()
		}
		if s.shutdownDone() {
			return nil
		}
	}
}

// shutdownDone finishes a shutdown once every job is down, and says whether it did: then the
// loop ends. It is asked after every event.
func (s *Supervisor) shutdownDone() bool {
	if s.shutting && s.allDown() {
		s.finishShutdown()
		return true
	}
	return false
}

// call runs f in the loop goroutine and waits for it; false if the loop has ended. It goes
// through the inbox like every other event, so the loop has one way in for work.
func (s *Supervisor) call(f func()) bool {
	done := make(chan struct{})
	s.inbox.put(loopFunc(func() { f(); close(done) }))
	select {
	case <-done:
		return true
	case <-s.doneCh:
		select {
		case <-done: // run as the loop's last event
			return true
		default:
			return false
		}
	}
}

// jobEvent is called by job goroutines; it never blocks.
func (s *Supervisor) jobEvent(ev jobEvent) { s.inbox.put(ev) }

// loopEvent is what reaches the supervisor's loop through its inbox: a job's status
// (jobEvent), a finished loader read (loaderLoaded), a check's command for another job
// (forwardCmd), or work to do in the loop (loopFunc). An event of any other type is a bug
// (unknownEvent).
type loopEvent interface{ loopEvent() }

// loopFunc is work another goroutine hands to the loop.
type loopFunc func()

func (jobEvent) loopEvent()     {}
func (loaderLoaded) loopEvent() {}
func (forwardCmd) loopEvent()   {}
func (loopFunc) loopEvent()     {}

func (s *Supervisor) handleEvent(ev loopEvent) {
	switch ev := ev.(type) {
	case jobEvent:
		s.jobChanged(ev)
	case loaderLoaded:
		s.loaderDone(ev)
	case forwardCmd:
		s.applyForward(ev)
	case loopFunc:
		ev()
	default:
		s.unknownEvent(ev)
	}
}

// unknownEvent is reached by an event handleEvent has no case for: a bug (a loopEvent added
// without its case, or a nil event). Under GOD_STRICT_STATES (the tests) it panics, so no test
// passes over it; a god in service logs it as an error and goes on, since ending the loop would
// leave every job unsupervised for the sake of one lost event.
func (s *Supervisor) unknownEvent(ev loopEvent) {
	if strictStates {
		panic(fmt.Sprintf("supervisor: loop event of unknown type %T", ev))
	}
	s.log.Error("bug: the loop dropped an event of unknown type", "type", fmt.Sprintf("%T", ev))
}

// define reads a job's definition from a fresh instance of its loader.
func (s *Supervisor) define(ctx context.Context, path, job string) (loader.Definition, error) {
	v, ok := s.pools.Load(path)
	if !ok {
		return loader.Definition{}, fmt.Errorf("loader %s: gone", path)
	}
	return v.(*loaderpool.Pool).Define(ctx, job)
}

// ask sends one request to a loader file's pool: ctx bounds the wait for an instance, within
// the reply from the request's write (see loaderpool.Pool.Ask).
func (s *Supervisor) ask(ctx context.Context, within time.Duration, path, job, prop string, args ...string) (loader.Message, error) {
	v, ok := s.pools.Load(path)
	if !ok {
		return nil, fmt.Errorf("loader %s: gone", path)
	}
	return v.(*loaderpool.Pool).Ask(ctx, within, job, prop, args...)
}

// newPool makes the pool of the loader file at path, with god's settings for loaders.
func (s *Supervisor) newPool(path string) *loaderpool.Pool {
	if s.poolCfg == nil { // made once Run has the reaper
		s.poolCfg = &loaderpool.Config{Reaper: s.reaper, Env: s.baseEnv, Log: s.log,
			Instances: s.cfg.LoaderInstances, Idle: s.cfg.LoaderIdle, HandshakeTimeout: s.cfg.HandshakeTimeout,
			Timeout: s.cfg.LoaderTimeout, Backoff: s.cfg.Backoff, Procs: &s.loaderProcs, OnFailure: s.metrics.loaderFailed}
	}
	return loaderpool.New(path, s.poolCfg)
}

// rescan looks at every file in the directory; reply, if set, gets a summary once loads finish.
func (s *Supervisor) rescan(reply chan string) {
	if reply != nil {
		s.scanWaiters = append(s.scanWaiters, reply)
	}
	entries, err := os.ReadDir(s.cfg.Dir)
	if err != nil {
		// A directory that is gone (being replaced, or removed by mistake) takes no job with it:
		// the loaders god knows stay until it is back and says otherwise.
		s.log.Error("cannot read the loader directory; its jobs keep running as they are", "dir", s.cfg.Dir, "err", err)
		s.answerScanWaiters()
		return
	}
	seen := map[string]bool{}
	for _, e := range entries {
		seen[e.Name()] = true
		s.rescanFile(e.Name())
	}
	for path := range s.loaders {
		if !seen[filepath.Base(path)] {
			s.rescanFile(filepath.Base(path))
		}
	}
	s.answerScanWaiters()
}

// rescanFile (re)loads one file if it is new or changed, and removes a loader whose file is gone.
func (s *Supervisor) rescanFile(name string) {
	if s.shutting {
		return
	}
	path := filepath.Join(s.cfg.Dir, name)
	lf := s.loaders[path]
	fi, ok := loaderpool.Candidate(s.cfg.Dir, name)
	if !ok {
		s.noteNotExecutable(name)
		if lf == nil {
			return
		}
		if _, err := os.Stat(s.cfg.Dir); err != nil {
			return // the whole directory is gone: its loaders stay until it is back (rescan)
		}
		if lf.missing.IsZero() {
			lf.missing = time.Now()
		}
		if wait := s.cfg.RemoveGrace - time.Since(lf.missing); wait > 0 && len(lf.jobs) > 0 {
			// An atomic replace can look like a removal for a moment.
			s.removeTimer.set(wait)
			return
		}
		s.removeLoader(lf)
		return
	}
	sig := loaderpool.SigOf(fi)
	if s.euid == 0 {
		if why := loaderpool.Unsafe(path); why != "" {
			// Jobs it defined keep running as they are; god runs the file again once it is safe.
			if old, said := s.unsafe[name]; !said || old != sig {
				if s.unsafe == nil {
					s.unsafe = map[string]loaderpool.FileSig{}
				}
				s.unsafe[name] = sig
				s.log.Error(fmt.Sprintf("%s refused: god runs loaders as root, and %s; chown root and chmod go-w to run it", path, why), "loader", path)
			}
			return
		}
		delete(s.unsafe, name)
	}
	if lf == nil {
		lf = &loaderFile{path: path}
		lf.pool = s.newPool(path)
		s.pools.Store(path, lf.pool)
		s.loaders[path] = lf
	} else {
		lf.missing = time.Time{}
		if lf.sig == sig && (lf.loaded || lf.notGodv1 || lf.loading) {
			return
		}
	}
	if lf.sig != sig {
		lf.pool.NewFileVersion()
	}
	lf.sig = sig
	lf.notGodv1 = false
	s.startLoad(lf)
}

// noteNotExecutable says once (per version of the file) that a file in the directory is not
// run because it is not executable; rescans and events about other files stay quiet.
func (s *Supervisor) noteNotExecutable(name string) {
	sig, ok := loaderpool.NotExecutable(s.cfg.Dir, name)
	if !ok {
		delete(s.notExec, name)
		return
	}
	if old, said := s.notExec[name]; said && old == sig {
		return
	}
	if s.notExec == nil {
		s.notExec = map[string]loaderpool.FileSig{}
	}
	s.notExec[name] = sig
	path := filepath.Join(s.cfg.Dir, name)
	s.log.Warn(fmt.Sprintf("%s is not executable: not run as a loader (chmod +x it to run it)", path), "loader", path)
}

func (s *Supervisor) startLoad(lf *loaderFile) {
	lf.retry.stop()
	lf.loading = true
	lf.loadSeq++
	seq, pool := lf.loadSeq, lf.pool
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.LoaderTimeout)
		defer cancel()
		defs, err := pool.Load(ctx)
		s.inbox.put(loaderLoaded{path: lf.path, seq: seq, defs: defs, err: err})
	}()
}

// loaderDone reconciles the jobs of a loader with what it just defined.
func (s *Supervisor) loaderDone(ev loaderLoaded) {
	lf := s.loaders[ev.path]
	if lf == nil || ev.seq != lf.loadSeq {
		return
	}
	lf.loading = false
	defer s.answerScanWaiters()
	if ev.err != nil {
		lf.err = ev.err.Error()
		slow := errors.Is(ev.err, context.DeadlineExceeded) && lf.pool.RetrySlowHandshake()
		if errors.Is(ev.err, loader.ErrNotGodv1) && !lf.loaded && !slow {
			lf.notGodv1 = true
			s.log.Warn(fmt.Sprintf("%s does not speak godv1; ignored until it changes", lf.path), "loader", lf.path, "err", ev.err)
			return
		}
		lf.fails++
		d := max(s.cfg.Backoff.Delay(lf.fails), 100*time.Millisecond)
		s.log.Error("loader failed; retrying", "loader", lf.path, "err", ev.err, "retry_in", d.String(), "failures", lf.fails)
		if s.shutting {
			return
		}
		lf.retry.set(d)
		go func(c <-chan time.Time, seq int) {
			<-c
			s.inbox.put(loopFunc(func() {
				if cur := s.loaders[lf.path]; cur == lf && lf.loadSeq == seq && !lf.loading && !s.shutting {
					s.startLoad(lf)
				}
			}))
		}(lf.retry.C(), lf.loadSeq)
		return
	}
	lf.fails = 0
	lf.err = ""
	lf.loaded = true
	defined := map[string]bool{}
	var names []string
	for _, def := range ev.defs {
		if h, ok := s.jobs[def.Name]; ok && h.loader != lf.path {
			s.log.Error(fmt.Sprintf("job %s is defined by both %s and %s; %s keeps it", def.Name, h.loader, lf.path, h.loader),
				"job", def.Name, "loader", lf.path, "owner", h.loader)
			continue
		}
		defined[def.Name] = true
		names = append(names, def.Name)
		if h, ok := s.jobs[def.Name]; ok {
			if !reflect.DeepEqual(h.def, def) {
				h.def = def
				s.dependents = nil
				s.applyLogLimits(def)
				h.j.cmds.put(jobCmd{kind: cmdDefine, def: &def})
				if h.state == jobstate.StateFailed && !h.userStopped {
					// A new definition deserves a new try: autostart starts it like a waiting
					// job. The job's own machine moves its state; the loop only asks.
					h.startSent = false
					h.retryDefined = true
				}
			}
			continue
		}
		s.addJob(lf.path, def)
	}
	for _, name := range lf.jobs {
		if !defined[name] {
			s.removeJob(name)
		}
	}
	lf.jobs = names
	s.log.Info("loader read", "loader", lf.path, "jobs", strings.Join(names, ","))
	s.ensureFDs() // before they start
	s.checkDeps()
	s.autostart()
}

func (s *Supervisor) addJob(loaderPath string, def loader.Definition) {
	s.applyLogLimits(def)
	j := newJob(s, loaderPath, def)
	// The job's first status is its machine's (wait), read before its goroutine owns it: a
	// status asked before the job published is never half-made.
	s.jobs[def.Name] = &jobHandle{j: j, loader: loaderPath, def: def, state: j.m.State(), status: j.m.Status(nil)}
	s.dependents = nil
	go j.run()
}

// applyLogLimits gives the job's log file the rotation of its log-size and log-keep (god's
// flags where it has none), when god writes log files.
func (s *Supervisor) applyLogLimits(def loader.Definition) {
	fs := s.hub.Files()
	if fs == nil {
		return
	}
	size, keep := int64(0), -1
	if def.LogSize != nil {
		size = *def.LogSize
	}
	if def.LogKeep != nil {
		keep = *def.LogKeep
	}
	fs.SetLimits(def.Name, size, keep)
}

func (s *Supervisor) removeJob(name string) {
	h := s.jobs[name]
	if h == nil {
		return
	}
	s.log.Info("job no longer defined; stopping and forgetting it", "job", name, "loader", h.loader)
	h.j.cmds.put(jobCmd{kind: cmdRemove})
}

func (s *Supervisor) removeLoader(lf *loaderFile) {
	s.log.Info("loader gone", "loader", lf.path)
	for _, name := range lf.jobs {
		s.removeJob(name)
	}
	lf.jobs = nil
	lf.retry.stop()
	lf.pool.Close()
	s.pools.Delete(lf.path)
	delete(s.loaders, lf.path)
}

// jobChanged records a job's new snapshot, starts dependents that became startable and drives
// shutdown.
func (s *Supervisor) jobChanged(ev jobEvent) {
	h := s.jobs[ev.name]
	if h == nil {
		return
	}
	if ev.removed {
		for _, p := range h.status.Processes {
			s.unindexPid(p.Pid)
		}
		for _, pg := range h.groups {
			s.unindexPid(pg)
		}
		delete(s.jobs, ev.name)
		s.dependents = nil
		s.crashChanged()
		s.hub.Forget(ev.name)
		s.fanout(ev)
		s.checkDeps()
		if s.shutting {
			s.shutdownRelease(h)
		}
		return
	}
	for _, p := range h.status.Processes {
		s.unindexPid(p.Pid)
	}
	for _, pg := range h.groups {
		s.unindexPid(pg)
	}
	for _, p := range ev.status.Processes {
		s.indexPid(p.Pid, ev.name)
	}
	// A group id is its leader's pid, which the kernel does not reuse while the group lives: a
	// notify message from the group (a MAINPID successor whose leader exited) is the job's.
	h.groups = ev.groups
	for _, pg := range ev.groups {
		s.indexPid(pg, ev.name)
	}
	if len(s.unrouted) > 0 {
		s.retryUnrouted()
	}
	if ev.def != nil {
		if !slices.Equal(h.def.Auto.After, ev.def.Auto.After) {
			s.dependents = nil
		}
		h.def = *ev.def
	}
	prev := h.state
	h.state = ev.state
	// A start is answered once the job runs, or once it ended without running (it could not
	// start: failed, or done at once); a start still pending would hold up god's shutdown.
	if ev.state != prev && (!ev.state.Down() || ev.state == jobstate.StateFailed || ev.state == jobstate.StateDone) {
		h.startSent = false
	}
	if ev.state.Running() || ev.state == jobstate.StateBackoff {
		h.userStopped = false
	}
	if h.waitReason != "" && ev.state == jobstate.StateWait {
		ev.status.Reason = h.waitReason
	}
	if !samePids(h.status.Processes, ev.status.Processes) || !slices.Equal(h.conns, ev.conns) {
		s.crashChanged()
	}
	h.conns = ev.conns
	h.status = ev.status
	s.fanout(ev)
	if ev.state.Ready() && !prev.Ready() {
		s.autostartDependents(ev.name)
	}
	if h.def.Critical && ev.state != prev && (ev.state == jobstate.StateFailed || ev.state == jobstate.StateDone) && !s.shutting {
		code := exitCodeOf(ev.status.LastExit)
		s.criticalExit = &code
		s.log.Error("critical job ended; god stops every job and exits with its status",
			"job", ev.name, "state", string(ev.state), "last_exit", ev.status.LastExit, "exit_status", code)
		s.beginShutdown()
	}
	if s.shutting {
		s.trackShutdown(h)
		s.shutdownStepFor(h)
	}
}

// trackShutdown notes h in what the shutdown waits for (downWait, stopping) when it counts
// there: after an event of h, which may have started again.
func (s *Supervisor) trackShutdown(h *jobHandle) {
	if !h.needsStop() {
		return
	}
	if !h.inDownWait {
		h.inDownWait = true
		s.downWait = append(s.downWait, h)
	}
	if h.stopSent && !h.inStopping {
		h.inStopping = true
		s.stopping = append(s.stopping, h)
	}
}

// forwardCmd is a check's ["@JOB", CMD, ...]: one job asking god to act on another.
type forwardCmd struct {
	from, target string
	cmd          []string
}

func (s *Supervisor) forward(from, target string, cmd []string) {
	s.inbox.put(forwardCmd{from: from, target: target, cmd: cmd})
}

func (s *Supervisor) applyForward(f forwardCmd) {
	h := s.jobs[f.target]
	if h == nil || len(f.cmd) == 0 {
		s.log.Warn("check forwards to unknown job or empty command", "job", f.from, "target", f.target)
		return
	}
	switch f.cmd[0] {
	case "start":
		h.userStopped = false
		h.j.cmds.put(jobCmd{kind: cmdStart})
	case "stop":
		h.userStopped = true
		h.j.cmds.put(jobCmd{kind: cmdStop})
	case "restart":
		h.j.cmds.put(jobCmd{kind: cmdRestart})
	default:
		s.log.Warn("check forwards an unknown command", "job", f.from, "target", f.target, "cmd", f.cmd[0])
	}
}

// checkDeps reports cycles and unknown names in auto dependency lists, once per change.
func (s *Supervisor) checkDeps() {
	reports := map[string]bool{}
	for name, h := range s.jobs {
		h.waitReason = ""
		var missing []string
		for _, d := range h.def.Auto.After {
			if _, ok := s.jobs[d]; !ok {
				missing = append(missing, d)
			}
		}
		if len(missing) > 0 {
			h.waitReason = "waits for unknown job " + strings.Join(missing, ", ")
			key := name + ":" + h.waitReason
			reports[key] = true
			if !s.cycleReports[key] {
				s.log.Error(fmt.Sprintf("job %s waits for unknown job %s", name, strings.Join(missing, ", ")), "job", name)
			}
		}
	}
	for _, cyc := range findCycles(s.jobs) {
		msg := "dependency cycle: " + strings.Join(cyc, " -> ")
		for _, name := range cyc[:len(cyc)-1] {
			s.jobs[name].waitReason = msg
		}
		reports[msg] = true
		if !s.cycleReports[msg] {
			s.log.Error(msg)
		}
	}
	s.cycleReports = reports
}

// findCycles returns each dependency cycle once, as a path that ends where it starts.
func findCycles(jobs map[string]*jobHandle) [][]string {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var cycles [][]string
	var visit func(string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		deps := append([]string(nil), jobs[n].def.Auto.After...)
		sort.Strings(deps)
		for _, d := range deps {
			if _, ok := jobs[d]; !ok {
				continue
			}
			switch color[d] {
			case white:
				visit(d)
			case grey:
				for i := len(stack) - 1; i >= 0; i-- {
					if stack[i] == d {
						cyc := append(append([]string(nil), stack[i:]...), d)
						cycles = append(cycles, cyc)
						break
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	names := make([]string, 0, len(jobs))
	for n := range jobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if color[n] == white {
			visit(n)
		}
	}
	return cycles
}

// autostart starts every auto job that waits and whose dependencies are all ready.
func (s *Supervisor) autostart() {
	if s.shutting {
		return
	}
	for _, h := range s.jobs {
		s.autostartOne(h)
	}
}

// autostartDependents is autostart for the jobs that wait for job, which just became ready: the
// only ones its readiness can let start. With thousands of jobs coming up, each one's readiness
// costs its dependents, not a pass over every job.
func (s *Supervisor) autostartDependents(job string) {
	if s.shutting {
		return
	}
	for _, h := range s.dependentsOf(job) {
		s.autostartOne(h)
	}
}

// autostartOne starts h if it is an auto job that waits and its dependencies are all ready.
func (s *Supervisor) autostartOne(h *jobHandle) {
	if !h.def.Auto.Start || h.startSent || h.userStopped || h.waitReason != "" {
		return
	}
	if h.state != jobstate.StateWait && !(h.retryDefined && h.state == jobstate.StateFailed) {
		return
	}
	for _, d := range h.def.Auto.After {
		if dh := s.jobs[d]; dh == nil || !dh.state.Ready() {
			return
		}
	}
	h.startSent = true
	h.retryDefined = false
	if h.def.Auto.Socket {
		h.j.cmds.put(jobCmd{kind: cmdListen}) // started by its first connection
		return
	}
	h.j.cmds.put(jobCmd{kind: cmdStart})
}

// dependentsOf lists the jobs whose Auto.After names job (job itself left out), from the index
// built once after definitions change.
func (s *Supervisor) dependentsOf(job string) []*jobHandle {
	if s.dependents == nil {
		s.dependents = map[string][]*jobHandle{}
		for name, h := range s.jobs {
			for _, d := range h.def.Auto.After {
				if d != name {
					s.dependents[d] = append(s.dependents[d], h)
				}
			}
		}
	}
	return s.dependents[job]
}

// subscribe returns a channel of every job event from now on; cancel ends it.
func (s *Supervisor) subscribe() (chan jobEvent, func()) {
	ch := make(chan jobEvent, 4096)
	s.call(func() { s.subs[ch] = true })
	return ch, func() {
		s.call(func() {
			if s.subs[ch] {
				delete(s.subs, ch)
				close(ch)
			}
		})
	}
}

func (s *Supervisor) fanout(ev jobEvent) {
	for ch := range s.subs {
		select {
		case ch <- ev:
		default:
			// A subscriber that fell this far behind is cut off; it re-reads the snapshot.
			delete(s.subs, ch)
			close(ch)
		}
	}
}

func (s *Supervisor) answerScanWaiters() {
	if len(s.scanWaiters) == 0 {
		return
	}
	var errs []string
	njobs, loaders, ignored := 0, 0, 0
	for _, lf := range s.loaders {
		if lf.loading {
			return
		}
		if lf.notGodv1 {
			// A file that does not speak godv1 is ignored, as the protocol says: it is no
			// error of the rescan (god's log said so once).
			ignored++
			continue
		}
		loaders++
		njobs += len(lf.jobs)
		if lf.err != "" {
			errs = append(errs, lf.err)
		}
	}
	sort.Strings(errs)
	msg := fmt.Sprintf("%d loaders, %d jobs", loaders, njobs)
	if ignored > 0 {
		msg += fmt.Sprintf(" (%d files that do not speak godv1 ignored)", ignored)
	}
	if len(errs) > 0 {
		msg += "; errors: " + strings.Join(errs, "; ")
	}
	for _, w := range s.scanWaiters {
		w <- msg
	}
	s.scanWaiters = nil
}

// beginShutdown stops every job, dependents before what they depend on.
func (s *Supervisor) beginShutdown() {
	if s.shutting {
		if !s.hurried {
			s.hurried = true
			s.log.Warn("shutdown hurried: killing every job now")
			for _, h := range s.jobs {
				h.j.cmds.put(jobCmd{kind: cmdStop})
				h.j.cmds.put(jobCmd{kind: cmdKill})
			}
		}
		return
	}
	s.shutting = true
	s.log.Info("shutting down: stopping every job in reverse dependency order", "jobs", len(s.jobs))
	for _, lf := range s.loaders {
		lf.retry.stop()
	}
	s.shutdownStep()
}

// needsStop: the job has a process, or a start on its way to it.
func (h *jobHandle) needsStop() bool { return !h.state.Down() || h.startSent }

// shutdownStep stops each job that no job still running depends on. It is the first step of a
// shutdown; after it, shutdownStepFor looks only at what one job's event can change.
func (s *Supervisor) shutdownStep() {
	progress := false
	waiting := false
	for _, h := range s.jobs {
		if !h.needsStop() || h.stopSent {
			continue
		}
		if s.dependentsRunning(h) {
			waiting = true
			continue
		}
		s.shutdownStop(h)
		progress = true
	}
	if !progress && waiting {
		s.breakShutdownCycle()
	}
}

// shutdownStepFor is shutdownStep after an event of h: h itself may need a stop (it started
// while god shut down), and once h is down, the jobs it depends on may be stopped. A shutdown of
// thousands of jobs costs each event its dependencies, not a pass over every job.
func (s *Supervisor) shutdownStepFor(h *jobHandle) {
	if h.needsStop() {
		if !h.stopSent && !s.dependentsRunning(h) {
			s.shutdownStop(h)
		}
		return
	}
	s.shutdownRelease(h)
}

// shutdownRelease stops the jobs h depends on that no running job waits for any more, now that
// h is down or gone (removed while god shut down: its dependencies must not wait for it).
func (s *Supervisor) shutdownRelease(h *jobHandle) {
	progress := false
	for _, d := range h.def.Auto.After {
		dh := s.jobs[d]
		if dh == nil || dh == h || !dh.needsStop() || dh.stopSent || s.dependentsRunning(dh) {
			continue
		}
		s.shutdownStop(dh)
		progress = true
	}
	if !progress {
		s.breakShutdownCycle()
	}
}

// dependentsRunning reports whether a job that waits for h still needs a stop: h is stopped
// after them.
func (s *Supervisor) dependentsRunning(h *jobHandle) bool {
	for _, dep := range s.dependentsOf(h.j.name) {
		if dep.needsStop() {
			return true
		}
	}
	return false
}

// shutdownStop sends h its stop, once.
func (s *Supervisor) shutdownStop(h *jobHandle) {
	h.stopSent = true
	s.trackShutdown(h)
	h.j.cmds.put(jobCmd{kind: cmdStop})
}

// breakShutdownCycle stops what is left when nothing is stopping and jobs still wait for their
// dependents: a cycle would wait forever.
func (s *Supervisor) breakShutdownCycle() {
	if !s.nothingStopping() {
		return
	}
	for _, h := range s.jobs {
		if h.needsStop() && !h.stopSent {
			s.shutdownStop(h)
		}
	}
}

// nothingStopping reports whether no job that was sent its stop still needs one. Every such job
// is in s.stopping (shutdownStop, trackShutdown); those that no longer count are popped as they
// come to the top, each once, so a shutdown of N jobs asks this in O(N) in all.
func (s *Supervisor) nothingStopping() bool {
	for len(s.stopping) > 0 {
		h := s.stopping[len(s.stopping)-1]
		if h.stopSent && h.needsStop() && s.jobs[h.j.name] == h {
			return false
		}
		h.inStopping = false
		s.stopping = s.stopping[:len(s.stopping)-1]
	}
	return true
}

// allDown reports whether no job needs a stop any more. The jobs that did when last looked at
// are in s.downWait, popped as above; once it is empty, one pass over every job makes sure (a
// job may have been started with no event of it yet: god start while god shuts down) and
// refills it. So it costs O(1) per event, and a pass over the jobs only when all seem down.
func (s *Supervisor) allDown() bool {
	for len(s.downWait) > 0 {
		h := s.downWait[len(s.downWait)-1]
		if h.needsStop() && s.jobs[h.j.name] == h {
			return false
		}
		h.inDownWait = false
		s.downWait = s.downWait[:len(s.downWait)-1]
	}
	for _, h := range s.jobs {
		if h.needsStop() && !h.inDownWait {
			h.inDownWait = true
			s.downWait = append(s.downWait, h)
		}
	}
	return len(s.downWait) == 0
}

func (s *Supervisor) finishShutdown() {
	for _, lf := range s.loaders {
		lf.pool.Close()
	}
	// Closed pools killed their instances: god reaps them before it exits, so that none goes
	// on running unsupervised for a moment (nor one a removed loader's hook was starting).
	if !s.loaderProcs.Wait(5 * time.Second) {
		s.log.Warn("loader processes not ended within 5s of their SIGKILL; god exits without them")
	}
	for _, w := range s.shutWaiters {
		close(w)
	}
	s.waitRelays(time.Second)
	s.crashTimer.stop()
	s.removeCrashFile()
	s.log.Info("every job stopped; god exits")
}

// waitRelays lets the output of the jobs that just stopped reach the log before god exits. A
// pipe held open by a process that escaped its job's group ends the wait at timeout.
func (s *Supervisor) waitRelays(timeout time.Duration) {
	done := make(chan struct{})
	go func() { s.relays.Wait(); close(done) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// CriticalExit is the status god exits with because a critical job ended for good (the
// job's own, 128+N for a signal, 1 when it could not start); ok is false when none did.
// Read it after Run returned.
func (s *Supervisor) CriticalExit() (code int, ok bool) {
	if s.criticalExit == nil {
		return 0, false
	}
	return *s.criticalExit, true
}

// exitCodeOf reads a job status's last exit ("exit 3", "signal 9 (SIGKILL)") as an exit
// status; anything else (it could not start) is 1.
func exitCodeOf(last string) int {
	var n int
	if _, err := fmt.Sscanf(last, "exit %d", &n); err == nil && n >= 0 && n <= 255 {
		return n
	}
	if _, err := fmt.Sscanf(last, "signal %d", &n); err == nil && n > 0 && n < 128 {
		return 128 + n
	}
	return 1
}

// Shutdown stops every job in reverse dependency order, then Run returns. A second call hurries
// it: every process still running gets SIGKILL.
func (s *Supervisor) Shutdown() { s.inbox.put(loopFunc(s.beginShutdown)) }

// samePids reports whether two process lists name the same pids in the same order.
func samePids(a, b []control.ProcessStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Pid != b[i].Pid {
			return false
		}
	}
	return true
}

// cgroupRoot decides the containment mode from --cgroup: the cgroup to create job cgroups in
// (nil: subreaper mode) and why, for god's log. "auto" takes god's own cgroup when it was
// delegated to god and moves god into a leaf of it; a delegated cgroup god cannot use falls back
// to subreaper mode, saying why. An explicit DIR that is not usable is an error.
func (s *Supervisor) cgroupRoot() (*cgroup.Root, string, error) {
	switch s.cfg.Cgroup {
	case "", "off":
		return nil, "--cgroup off", nil
	case "auto":
	default:
		r, err := cgroup.Open(s.cfg.Cgroup)
		if err != nil {
			return nil, "", fmt.Errorf("--cgroup: %w", err)
		}
		if self, err := cgroup.Self(); err == nil && self == filepath.Clean(r.Dir) {
			// god's own cgroup, named (as god.service once did with Delegate=yes): god must
			// leave it for a leaf, or it could not give controllers to its jobs' cgroups.
			if err := cgroup.MoveSelf(r.Dir); err != nil {
				return nil, "", fmt.Errorf("--cgroup %s is god's own cgroup: %w", r.Dir, err)
			}
			return r, "--cgroup " + s.cfg.Cgroup + " (god's own cgroup; god runs in its leaf " + cgroup.LeafName + ")", nil
		}
		return r, "--cgroup " + s.cfg.Cgroup, nil
	}
	d := cgroup.Detect()
	if d.Dir == "" {
		return nil, d.Why, nil
	}
	r, err := cgroup.Open(d.Dir)
	if err != nil {
		return nil, d.Why + ", but god cannot use it: " + err.Error(), nil
	}
	if !d.InLeaf {
		if err := cgroup.MoveSelf(d.Dir); err != nil {
			return nil, d.Why + ", but god cannot use it: " + err.Error(), nil
		}
	}
	return r, d.Why + "; god runs in its leaf " + cgroup.LeafName, nil
}
