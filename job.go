package watchgod

import (
	"slices"
	"sync"
)

// JobDef is the definition of one job, answered to god from [Init]. Each
// property is nil (god's default) or a value as described in the package
// documentation. The godv1 property each field answers is named after it.
type JobDef struct {
	// Name is the job's name: 1 to 64 of A-Z a-z 0-9 _ . -.
	Name string

	Exec  any // exec: the job's argv (a string is a program without arguments)
	Auto  any // auto: true to start when loaded, the jobs to wait for ([]string), or "socket" (on demand)
	Check any // check: "ok", "degrade", "fail", ... ; args [pid]
	Stop  any // stop: [MS] or [SIGNAL, MS]; args [pid]
	Env   any // env: KEY=VALUE items added to god's environment

	// State hooks, called on entering each state; their replies are ignored.
	OnStart, OnRun, OnStop, OnExit, OnWait, OnDegrade, OnStopped, OnDone any
	// Hooks of the states god adds to godv1's: waiting out a restart delay, given up, and waiting
	// for a connection (an on-demand job).
	OnBackoff, OnFailed, OnListen any

	Listen    any // listen: "NAME=ADDR" sockets god opens and passes to the job
	Instances any // instances: how many processes share the sockets
	Ready     any // ready: "check", "notify" or a time.Duration delay
	Reload    any // reload: "overlap", "restart" or a syscall.Signal
	Restart   any // restart: "always", "on-failure" or "never"
	Dir       any // dir: working directory
	Log       any // log: "text", "json" or "logfmt"
	Watchdog  any // watchdog: a time.Duration (or MS)
	IdleExit  any // idle-exit: a time.Duration (or MS); with Auto "socket", ServeHTTP exits 0 after it idle

	// Restart rules (docs/protocol.md, "Restarts"); nil takes god's defaults.
	RestartDelay             any // restart-delay: a time.Duration, the back-off's first delay
	RestartDelayMax          any // restart-delay-max: a time.Duration, its longest
	RestartLimit             any // restart-limit: quick failures in a row before failed (int; 0 never)
	MinUptime                any // min-uptime: a time.Duration; a ready process that ran it restarts at once
	CoolDown                 any // cool-down: a time.Duration; a failed job tries again after it (0 never)
	SuccessExitStatus        any // success-exit-status: []int or []string ("75", "SIGTERM")
	RestartPreventExitStatus any // restart-prevent-exit-status: likewise

	// The environment of the job's processes (docs/protocol.md, "Extension properties": user, ...).
	User     any // user: a user name or uid ("nobody", "65534", or an int uid)
	Group    any // group: a group name or gid
	Groups   any // groups: []string or []int, the supplementary groups (default: the user's)
	Umask    any // umask: an os.FileMode or int (0o027), or an octal string ("0027")
	Limit    any // limit: []string with systemd's names, "nofile=65536", "core=infinity", "nproc=100:200"
	EnvFile  any // env-file: paths of files in systemd's EnvironmentFile= syntax ("-PATH": may be missing)
	Critical any // critical: true makes god exit with the job's status when it is failed or done
	// Cgroup: limits of each process's cgroup, []string "memory.max=512M", "pids.max=100",
	// "cpu.max=50%", "cpu.weight=100" (god's cgroup mode; docs/protocol.md, "cgroup").
	Cgroup any

	// The job's log files under god --log-dir (docs/protocol.md); nil takes god's flags.
	LogSize any // log-size: bytes (int, int64) before current is rotated (--log-size)
	LogKeep any // log-keep: rotated files kept, an int (0 keeps none; --log-keep)

	// Per-connection processes (systemd's Accept=yes): god accepts on the job's one stream
	// socket and runs one process per connection, the connection as stdin, stdout and fd 3.
	Accept         any // accept: true
	MaxConnections any // max-connections: running connection processes before god stops accepting (int; default 64)

	// Stderr is where the job's stderr goes: "pipe" (the default: a pipe of its own, lines
	// tagged stderr), "stdout" (the same pipe as its stdout: lines tagged stdout, in the order
	// written, and one open file less in god per process) or "null"; a loader.StderrMode too.
	Stderr any

	// ExecFunc, when set, is the job's body: Exec defaults to this binary
	// (argv [os.Args[0]] made absolute) and the job's environment gets a
	// variable that makes Init run ExecFunc and exit in that process.
	ExecFunc func()
}

// registry holds the jobs defined with Job, in the order of definition.
var registry struct {
	mu     sync.Mutex
	byName map[string]*JobDef
	order  []string // names, as registered
}

// Job returns the definition of the job called name, creating and
// registering it on first use, so that init functions can fill in its
// properties. The name is checked when god asks: an invalid or empty name
// makes the loader fail with an error naming it.
func Job(name string) *JobDef {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if d := registry.byName[name]; d != nil {
		return d
	}
	if registry.byName == nil {
		registry.byName = make(map[string]*JobDef)
	}
	d := &JobDef{Name: name}
	registry.byName[name] = d
	registry.order = append(registry.order, name)
	return d
}

// lookup returns the registered job called name, or nil.
func lookup(name string) *JobDef {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return registry.byName[name]
}

// registered lists the job names in order of definition.
func registered() []string {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return slices.Clone(registry.order)
}
