package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/crashstate"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// daemonFlags are the options of `god [run] --dir DIR`.
type daemonFlags struct {
	dir          string
	socket       string
	logMode      string
	logLevel     string
	logLines     int
	logDir       string
	logSize      int64
	logKeep      int
	restartLimit int
	backoffMax   time.Duration
	restartDelay time.Duration
	minUptime    time.Duration
	coolDown     time.Duration
	loaderTO     time.Duration
	handshakeTO  time.Duration
	loaderIdle   time.Duration
	checkTO      time.Duration
	startTO      time.Duration
	metrics      string
	cgroup       string
	cpuProfile   string // hidden debug flags (profile.go)
	memProfile   string
	traceFile    string
	forkServer   bool // hidden: --fork-server=false makes god fork every child itself (for measuring)
	stopProfile  string
}

func parseDaemonFlags(args []string) (*daemonFlags, error) {
	f := &daemonFlags{}
	fs := flag.NewFlagSet("god", flag.ContinueOnError)
	// The flag package would print the error, then every flag, to stderr; god says what was
	// wrong in one line (runDaemon) and prints its flags only when asked (--help, to stdout).
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.dir, "dir", defaultDir(), "loader directory `DIR`: $GOD_DIR, else /etc/god for root, $XDG_CONFIG_HOME/god or ~/.config/god")
	fs.StringVar(&f.socket, "socket", "", "control socket `PATH` (default: $GOD_SOCKET, /run/god/god.sock for root, $XDG_RUNTIME_DIR/god.sock, /tmp/god-UID/god.sock)")
	fs.StringVar(&f.logMode, "log", "auto", "god's own log format `MODE`: auto (colour on a terminal, JSON otherwise, journal under systemd), text, color, json")
	fs.StringVar(&f.logLevel, "log-level", "info", "lowest level logged, `LEVEL`: debug, info, warn, error")
	fs.IntVar(&f.logLines, "log-lines", joblog.DefaultPerJob, "recent output lines kept per job, `N`, for god logs")
	fs.StringVar(&f.logDir, "log-dir", "", "also write each job's output to `DIR`/JOB/current, rotated by size (default: off; see docs/control.md)")
	fs.Int64Var(&f.logSize, "log-size", joblog.DefaultFileSize, "with --log-dir: rotate a job's current file before it would exceed `BYTES`")
	fs.IntVar(&f.logKeep, "log-keep", joblog.DefaultFileKeep, "with --log-dir: rotated files kept per job, `N`, the oldest removed")
	fs.IntVar(&f.restartLimit, "restart-limit", supervisor.Defaults.Backoff.Limit, "quick failures in a row, `N`, before a job is marked failed (0: never)")
	fs.DurationVar(&f.restartDelay, "restart-delay", supervisor.Defaults.Backoff.First, "delay before the second quick failure in a row restarts; it doubles for each further one (job property restart-delay)")
	fs.DurationVar(&f.backoffMax, "backoff-max", supervisor.Defaults.Backoff.Max, "longest delay between restarts (job property restart-delay-max)")
	fs.DurationVar(&f.minUptime, "min-uptime", supervisor.Defaults.Backoff.MinUptime, "a process that was ready and ran this long restarts at once when it dies, and resets its job's failure count (job property min-uptime)")
	// --stay-up was the flag of the rule min-uptime replaced; a god started with it must still
	// parse its argv after `god upgrade`.
	fs.DurationVar(&f.minUptime, "stay-up", supervisor.Defaults.Backoff.MinUptime, "deprecated: --min-uptime")
	fs.DurationVar(&f.coolDown, "cool-down", supervisor.Defaults.Backoff.CoolDown, "a job failed by flapping tries again after this; 0: never (job property cool-down)")
	fs.DurationVar(&f.loaderTO, "loader-timeout", supervisor.Defaults.LoaderTimeout, "how long a loader may take to answer (check excepted)")
	fs.DurationVar(&f.handshakeTO, "handshake-timeout", supervisor.Defaults.HandshakeTimeout, "how long a new loader instance may take to name its jobs (doubled after each timeout, up to 8 times as long); raise it for a loader that builds thousands of jobs at start")
	fs.DurationVar(&f.loaderIdle, "loader-idle", supervisor.Defaults.LoaderIdle, "a loader instance nobody asked anything this long exits (the next request starts one)")
	fs.DurationVar(&f.checkTO, "check-timeout", supervisor.Defaults.CheckTimeout, "how long a check may take")
	fs.DurationVar(&f.startTO, "start-timeout", supervisor.Defaults.StartTimeout, "a process not ready by then has failed (and a reload is rolled back)")
	fs.StringVar(&f.cgroup, "cgroup", "auto", "`auto`, off, or a cgroup v2 directory DIR god may create groups in: each job process runs in a cgroup of its own, and nothing it starts escapes the job; auto uses god's own cgroup when it is delegated to god (systemd's Delegate=yes), else subreaper mode (see README)")
	fs.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics on http://`ADDR`/metrics (e.g. 127.0.0.1:9100; default off) by god-metrics, a child process found next to god or in PATH")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "debug: write a CPU profile of god to `FILE` at exit")
	fs.StringVar(&f.memProfile, "memprofile", "", "debug: write a heap profile of god to `FILE` when shutdown begins")
	fs.StringVar(&f.traceFile, "trace", "", "debug: write an execution trace of god to `FILE` at exit")
	fs.BoolVar(&f.forkServer, "fork-server", true, "debug: start children from a fork server once god holds many fds")
	fs.StringVar(&f.stopProfile, "stopprofile", "", "debug: write a CPU profile of god's shutdown, from the shutdown signal to exit, to `FILE`")
	if len(args) > 0 && args[0] == "run" {
		args = args[1:]
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, "usage: god [run] --dir DIR [flags]\n\nRuns the god daemon in the foreground, supervising the jobs that the loaders in DIR define.\n\nFlags:\n")
			printFlags(os.Stdout, fs)
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if f.logSize <= 0 {
		return nil, fmt.Errorf("--log-size %d: must be positive", f.logSize)
	}
	if f.logKeep < 0 {
		return nil, fmt.Errorf("--log-keep %d: must be 0 or more", f.logKeep)
	}
	return f, nil
}

// runDaemon is `god --dir DIR`: it supervises until SIGTERM, SIGINT or `god shutdown`.
func runDaemon(args []string) int {
	// Catch the shutdown signals before anything else: Go leaves SIGTERM's default (death) in place
	// until Notify is called.
	sigs := make(chan os.Signal, 4)
	// SIGPIPE is ignored, by god and (the disposition survives exec) by every process it starts,
	// as systemd's IgnoreSIGPIPE=yes does for services: a job writing to its output pipe after god
	// died gets EPIPE instead of dying, and god does not die of a closed log pipe.
	signal.Ignore(syscall.SIGPIPE)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR2)
	// The binary god was started from, resolved now: once it is replaced on disk, /proc/self/exe
	// names the old, deleted file.
	exe, exeErr := os.Executable()
	// This image itself, open, for `god upgrade` to hand to the next image: one that cannot take
	// over execs this one again (upgradestate.Inherited.FallBack).
	self, selfErr := os.Open("/proc/self/exe")
	if selfErr == nil {
		defer self.Close()
	}

	f, err := parseDaemonFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "god: %v (god run --help lists the daemon's flags)\n", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "god: --log-level %q: %v\n", f.logLevel, err)
		return 2
	}
	logger, err := joblog.NewLogger(os.Stdout, f.logMode, level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "god: --log:", err)
		return 2
	}
	sdLog = logger // sdnotify.go reports failed notifications here
	// Job lines may wait in the logger's buffer for their relay's flush; none is left behind.
	defer joblog.Flush(logger)
	tuneMemory(f.memProfile != "")
	prof, err := startProfiles(f.cpuProfile, f.memProfile, f.traceFile, f.stopProfile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "god:", err)
		return 2
	}
	defer func() {
		if err := prof.stop(); err != nil {
			logger.Error("cpu profile", "err", err)
		}
	}()
	dir, err := filepath.Abs(f.dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "god: --dir:", err)
		return 2
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		// Said before anything starts, not after a "god running" line.
		fmt.Fprintf(os.Stderr, "god: loader directory %s: not a directory (create it, or give --dir DIR or GOD_DIR)\n", dir)
		return 1
	}
	// Every path god hands to a job must be absolute: a job may run in another directory.
	socket, err := filepath.Abs(control.SocketPath(f.socket))
	if err != nil {
		fmt.Fprintln(os.Stderr, "god: --socket:", err)
		return 2
	}

	// After `god upgrade` this is god's new image: the old one left its state in a memfd. An
	// image that cannot take over goes back to the old one (fallBack) rather than orphan the jobs.
	inherited0, err := upgradestate.TakeInherited()
	if err == nil {
		err = testFailUpgrade(inherited0)
	}
	if err != nil {
		return fallBack(logger, inherited0, fmt.Errorf("cannot read the state of god's previous image: %w", err))
	}
	var upgraded *upgradestate.State
	if inherited0 != nil {
		upgraded = inherited0.State
	}
	// Sockets from god's own parent (systemd socket activation): take the named ones, then make
	// every other fd god inherited close-on-exec so no job gets it by accident.
	inherited := fdpass.Inherited()
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		logger.Warn("cannot mark inherited fds close-on-exec", "err", err)
	}
	for name, files := range inherited {
		logger.Info("socket from parent", "name", name, "count", len(files))
	}
	stateFile := crashstate.Path(socket)
	if upgraded == nil {
		// A god that was killed left its jobs running as orphans: take their sockets back and
		// end them before this god starts its own (internal/crashstate).
		inherited = recoverCrashed(logger, stateFile, socket, inherited)
	}

	if err := reaper.BecomeSubreaper(); err != nil {
		logger.Warn("cannot become child subreaper; orphaned grandchildren will escape god", "err", err)
	}
	var ln *net.UnixListener
	if upgraded != nil {
		ln, err = supervisor.ControlListenerFrom(upgraded)
	}
	if ln == nil && err == nil {
		ln, err = control.Listen(socket)
	}
	if err != nil {
		if upgraded != nil {
			return fallBack(logger, inherited0, fmt.Errorf("control socket: %w", err))
		}
		logger.Error("control socket", "err", err)
		return 1
	}
	if exeErr != nil {
		exe = ""
	}
	var helpers []supervisor.Helper
	if f.metrics != "" {
		h, err := metricsHelper(f, exe, socket, upgraded, logger)
		switch {
		case err == nil:
			helpers = append(helpers, h)
			logger.Info("serving metrics", "url", "http://"+f.metrics+"/metrics", "exporter", h.Path)
		case upgraded == nil:
			logger.Error("metrics", "err", err)
			ln.Close()
			return 1
		default:
			// god's new image must not exit over its metrics: its jobs would be orphaned.
			logger.Error("metrics: god runs on without them", "err", err)
		}
	}
	hub := joblog.NewHub(logger, f.logLines)
	if joblog.IsJournalMode(os.Stdout, f.logMode) {
		// Under systemd each job line is a journal entry of the job's own: journalctl -t JOB.
		if j := joblog.NewJournal(); j != nil {
			hub.SetJournal(j)
		} else {
			logger.Debug("journal socket not found: job lines go to god's own log stream")
		}
	}
	if f.logDir != "" {
		files, err := joblog.NewFiles(joblog.FilesConfig{Dir: f.logDir, Size: f.logSize, Keep: f.logKeep, Logger: logger})
		if err != nil && upgraded == nil {
			logger.Error("log files", "err", err)
			ln.Close()
			return 1
		}
		if err != nil {
			// god's new image must not exit over its log files: its jobs would be orphaned.
			logger.Error("log files: god runs on without them", "err", err)
		} else {
			hub.SetFiles(files)
			defer func() { // after Run: the relays have ended; their last lines are written
				if err := files.Close(); err != nil {
					logger.Error("log files", "err", err)
				}
			}()
			logger.Info("writing job output to files", "dir", f.logDir, "size", f.logSize, "keep", f.logKeep)
		}
	}
	cfg := supervisor.Config{
		Dir:    dir,
		Socket: socket,
		Backoff: supervisor.Backoff{
			First: f.restartDelay, Max: f.backoffMax, MinUptime: f.minUptime, Limit: f.restartLimit, CoolDown: f.coolDown,
		},
		LoaderTimeout:    f.loaderTO,
		HandshakeTimeout: f.handshakeTO,
		LoaderIdle:       f.loaderIdle,
		CheckTimeout:     f.checkTO,
		StartTimeout:     f.startTO,
		Logger:           logger,
		Hub:              hub,
		Version:          fullVersion(),
		Inherited:        inherited,
		Helpers:          helpers,
		Cgroup:           f.cgroup,
		StateFile:        stateFile,
	}
	if exe != "" {
		cfg.Upgrade = supervisor.UpgradeOptions{Exe: exe, Argv: os.Args, Control: ln,
			Begin: notifyReloading, AfterFail: notifyReady}
		if selfErr == nil {
			cfg.Upgrade.Fallback = self
		}
	}
	var sup *supervisor.Supervisor
	var rp *reaper.Reaper
	if upgraded != nil {
		sup, rp, err = supervisor.Restore(cfg, inherited0)
		if err != nil {
			return fallBack(logger, inherited0, fmt.Errorf("restore: %w", err))
		}
	} else {
		rp = reaper.New(logger)
		sup, err = supervisor.New(cfg)
	}
	if rp != nil {
		// Once god holds many jobs' pipes, a fork of its own costs time in proportion to them:
		// the reaper then starts children from a fork server, this binary (internal/forkserver).
		if f.forkServer {
			rp.UseForkServer("/proc/self/exe")
		}
		defer rp.Close()
	}
	if err != nil {
		logger.Error("start", "err", err)
		ln.Close()
		return 1
	}
	srv := &control.Server{Handler: notifyingHandler{sup}, Logger: logger} // sdnotify.go: rescan, shutdown
	go func() {
		if err := srv.Serve(ln); err != nil {
			logger.Error("control server", "err", err)
		}
	}()
	logger.Info("god running", "dir", dir, "socket", socket, "pid", os.Getpid(), "version", fullVersion())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go superviseNotify(ctx, sup, logger) // sdnotify.go: READY=1, STATUS=, WATCHDOG=1
	go trimAfterStart(ctx, sup)          // memory.go
	go func() {
		for {
			select {
			case sig := <-sigs:
				switch sig {
				case syscall.SIGHUP:
					logger.Info("SIGHUP: rescanning loaders")
					go rescanNotified(ctx, sup) // RELOADING=1, rescan, READY=1
				case syscall.SIGUSR2:
					logger.Info("SIGUSR2: upgrading god in place", "exe", exe)
					go func() {
						if err := sup.Upgrade(context.Background(), cfg.Upgrade); err != nil {
							logger.Error("upgrade", "err", err)
						}
					}()
				default:
					logger.Info("signal: shutting down", "signal", sig.String())
					if err := prof.writeHeap(); err != nil {
						logger.Error("heap profile", "err", err)
					}
					if err := prof.startStop(); err != nil {
						logger.Error("stop profile", "err", err)
					}
					notifyStopping()
					sup.Shutdown()
				}
			case <-sup.Done():
				return
			}
		}
	}()
	runErr := sup.Run(ctx, rp)
	notifyStopping() // once: a shutdown with no job to stop may not have said it yet
	srv.Close()
	ln.Close()
	if runErr != nil {
		logger.Error("god", "err", runErr)
		return 1
	}
	if code, ok := sup.CriticalExit(); ok {
		return code
	}
	return 0
}

// fallBack is the end of a new image that cannot take over after `god upgrade`: it execs the
// old image again with the same state (the jobs stay supervised); only when that is impossible
// does god exit.
func fallBack(logger *slog.Logger, in *upgradestate.Inherited, why error) int {
	logger.Error("upgrade: this image cannot take over; going back to the old one", "err", why)
	joblog.Flush(logger)
	err := in.FallBack(why) // returns only on failure
	logger.Error("upgrade: cannot go back to the old image; god exits and its jobs are left", "err", err)
	return 1
}

// testFailUpgrade lets the integration tests make a new image fail right after it read the
// state (GOD_TEST_FAIL_UPGRADE=1, set by a wrapper only for the real exec): the one way to show
// the fall-back with a binary that passed the pre-flight. It is unset at once.
func testFailUpgrade(in *upgradestate.Inherited) error {
	v := os.Getenv("GOD_TEST_FAIL_UPGRADE")
	os.Unsetenv("GOD_TEST_FAIL_UPGRADE")
	if in == nil || v == "" {
		return nil
	}
	return errors.New("GOD_TEST_FAIL_UPGRADE is set")
}

// recoverCrashed reads the state file of a god that died and ends its orphans, keeping their
// listening sockets for the jobs of this god (merged into the sockets inherited from its parent).
func recoverCrashed(logger *slog.Logger, path, socket string, inherited map[string][]*os.File) map[string][]*os.File {
	st, err := crashstate.Read(path)
	if err != nil {
		logger.Warn("recovery: the state file of a previous god is unreadable; ignored", "err", err)
		os.Remove(path)
		return inherited
	}
	if st == nil {
		return inherited
	}
	if st.God.Alive() {
		return inherited // another god runs on this socket: the control socket will say so
	}
	logger.Warn("recovery: the previous god died without stopping its jobs; taking over", "pid", st.God.Pid, "state", path)
	rec, err := crashstate.Recover(st, socket, loader.DefaultStop.Timeout, logger) // a job's default stop
	if err != nil {
		logger.Warn("recovery", "err", err)
		return inherited
	}
	if inherited == nil {
		inherited = map[string][]*os.File{}
	}
	n := 0
	for name, files := range rec.Sockets {
		inherited[name] = append(inherited[name], files...)
		n += len(files)
	}
	logger.Info("recovery: done", "orphans_ended", len(rec.Ended), "orphans_left", len(rec.Left), "sockets_kept", n)
	os.Remove(path)
	return inherited
}

// defaultDir is where god looks for loaders when --dir is not given: $GOD_DIR, else /etc/god for
// root, else the user's configuration directory ($XDG_CONFIG_HOME/god, ~/.config/god).
func defaultDir() string {
	if d := os.Getenv("GOD_DIR"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/etc/god"
	}
	if d, err := os.UserConfigDir(); err == nil {
		return filepath.Join(d, "god")
	}
	return "/etc/god"
}
