package loader

import (
	"context"
	"fmt"
	"time"
)

// Definition is a job's static properties, parsed, with godv1 defaults filled
// in for the properties the loader left undefined.
type Definition struct {
	Name      string
	Exec      []string // empty: the job cannot start
	Env       []string // KEY=VALUE, validated
	Auto      Auto
	Listen    []string // raw "NAME=ADDR" items, names validated and unique
	Instances int      // 1 to 1024
	Ready     Ready
	Reload    Reload
	Restart   RestartPolicy
	Dir       string
	Log       LogFormat
	Watchdog  time.Duration // 0: none
	// IdleExit is the idle time after which a job of auto ["socket"] is asked (GOD_IDLE_EXIT) to
	// exit 0 and sleep until the next connection; 0: never.
	IdleExit time.Duration
	// Restart timing and exit-status rules; unset fields take god's defaults (see RestartRules).
	Rules RestartRules
	// The process environment (loader/settings.go); zero values keep god's own.
	User     string   // name or uid; "": god's user
	Group    string   // name or gid; "": the user's primary group (god's when no User)
	Groups   []string // supplementary groups; nil: the user's, from /etc/group
	Umask    *uint32  // nil: god's umask
	Limits   []Limit
	EnvFiles []EnvFile
	Critical bool // god exits with the job's status when it ends for good
	// Limits of each process's cgroup (loader/cgrouplimits.go); they need god's cgroup mode.
	Cgroup []CgroupLimit
	// The job's log files (god --log-dir): rotation size and rotated files kept; nil: god's
	// --log-size and --log-keep.
	LogSize *int64
	LogKeep *int
	// Accept makes god accept on the job's one stream socket and run one process per
	// connection (systemd's Accept=yes); MaxConnections bounds those processes (default 64).
	Accept         bool
	MaxConnections int
	// PidFile is where the job's program writes its main pid (systemd's PIDFile=): god follows a
	// new pid written there as it follows MAINPID=. "": none.
	PidFile string
	// Stderr is where the job's stderr goes: its own pipe (the default), stdout's pipe, or
	// /dev/null.
	Stderr StderrMode
}

// staticProps are the properties Define asks, in the order it asks them, each with its parser.
var staticProps = []struct {
	name  string
	parse func(d *Definition, m Message) error
}{
	{"exec", func(d *Definition, m Message) (err error) { d.Exec, err = parseExec(m); return }},
	{"env", func(d *Definition, m Message) (err error) { d.Env, err = parseEnv(m); return }},
	{"auto", func(d *Definition, m Message) (err error) { d.Auto, err = parseAuto(m); return }},
	{"listen", func(d *Definition, m Message) (err error) { d.Listen, err = parseListen(m); return }},
	{"instances", func(d *Definition, m Message) (err error) { d.Instances, err = parseInstances(m); return }},
	{"ready", func(d *Definition, m Message) (err error) { d.Ready, err = parseReady(m); return }},
	{"reload", func(d *Definition, m Message) (err error) { d.Reload, err = parseReload(m); return }},
	{"restart", func(d *Definition, m Message) (err error) { d.Restart, err = parseRestart(m); return }},
	{"dir", func(d *Definition, m Message) (err error) { d.Dir, err = parseDir(m); return }},
	{"log", func(d *Definition, m Message) (err error) { d.Log, err = parseLog(m); return }},
	{"watchdog", func(d *Definition, m Message) (err error) { d.Watchdog, err = parseWatchdog(m); return }},
	{"idle-exit", func(d *Definition, m Message) (err error) { d.IdleExit, err = parseWatchdog(m); return }},
	{"restart-delay", func(d *Definition, m Message) (err error) { d.Rules.Delay, err = parseOptionalMS(m); return }},
	{"restart-delay-max", func(d *Definition, m Message) (err error) { d.Rules.DelayMax, err = parseOptionalMS(m); return }},
	{"restart-limit", func(d *Definition, m Message) (err error) { d.Rules.Limit, err = parseRestartLimit(m); return }},
	{"min-uptime", func(d *Definition, m Message) (err error) { d.Rules.MinUptime, err = parseOptionalMS(m); return }},
	{"cool-down", func(d *Definition, m Message) (err error) { d.Rules.CoolDown, err = parseOptionalMS(m); return }},
	{"success-exit-status", func(d *Definition, m Message) (err error) { d.Rules.SuccessExit, err = parseExitStatuses(m); return }},
	{"restart-prevent-exit-status", func(d *Definition, m Message) (err error) { d.Rules.PreventExit, err = parseExitStatuses(m); return }},
	{"user", func(d *Definition, m Message) (err error) { d.User, err = parseIdentity(m); return }},
	{"group", func(d *Definition, m Message) (err error) { d.Group, err = parseIdentity(m); return }},
	{"groups", func(d *Definition, m Message) (err error) { d.Groups, err = parseGroups(m); return }},
	{"umask", func(d *Definition, m Message) (err error) { d.Umask, err = parseUmask(m); return }},
	{"limit", func(d *Definition, m Message) (err error) { d.Limits, err = parseLimits(m); return }},
	{"env-file", func(d *Definition, m Message) (err error) { d.EnvFiles, err = parseEnvFiles(m); return }},
	{"critical", func(d *Definition, m Message) (err error) { d.Critical, err = parseCritical(m); return }},
	{"cgroup", func(d *Definition, m Message) (err error) { d.Cgroup, err = parseCgroupLimits(m); return }},
	{"log-size", func(d *Definition, m Message) (err error) { d.LogSize, err = parseLogSize(m); return }},
	{"log-keep", func(d *Definition, m Message) (err error) { d.LogKeep, err = parseLogKeep(m); return }},
	{"accept", func(d *Definition, m Message) (err error) { d.Accept, err = parseAccept(m); return }},
	{"max-connections", func(d *Definition, m Message) (err error) { d.MaxConnections, err = parseMaxConnections(m); return }},
	{"pid-file", func(d *Definition, m Message) (err error) { d.PidFile, err = parsePidFile(m); return }},
	{"stderr", func(d *Definition, m Message) (err error) { d.Stderr, err = parseStderr(m); return }},
}

// Define asks the loader for every static property of job (exec, env, auto,
// listen, instances, ready, reload, restart, dir, log, watchdog, idle-exit, and the restart
// rules: restart-delay, restart-delay-max, restart-limit, min-uptime, cool-down,
// success-exit-status, restart-prevent-exit-status; and the process environment:
// user, group, groups, umask, limit, env-file, critical; cgroup; and the log files:
// log-size, log-keep; per-connection processes: accept, max-connections; pid-file; stderr) and parses
// the replies. An unparsable reply is an error naming the job and property;
// it does not break the Client. ctx bounds the whole set of requests, which
// are pipelined (see [Client.AskAll]).
func (c *Client) Define(ctx context.Context, job string) (Definition, error) {
	defs, err := c.DefineAll(ctx, 0, []string{job})
	if err != nil {
		return Definition{}, err
	}
	return defs[0], nil
}

// DefineAll is Define for several jobs at once: it pipelines the requests of
// every job (see [Client.AskAll]), so that a loader of many jobs is read in
// a few round trips, and returns the definitions in the order of jobs. The
// first unparsable reply fails the whole set with an error naming its job and
// property (the Client stays usable: every reply was read). ctx bounds the
// whole set and each, when positive, every single reply.
func (c *Client) DefineAll(ctx context.Context, each time.Duration, jobs []string) ([]Definition, error) {
	reqs := make([]Message, 0, len(jobs)*len(staticProps))
	for _, job := range jobs {
		for _, p := range staticProps {
			reqs = append(reqs, Message{job, p.name})
		}
	}
	replies, err := c.AskAll(ctx, each, reqs)
	if err != nil {
		return nil, err // names the job and property
	}
	defs := make([]Definition, len(jobs))
	for i, job := range jobs {
		d := &defs[i]
		d.Name = job
		for k, p := range staticProps {
			if err := p.parse(d, replies[i*len(staticProps)+k]); err != nil {
				return nil, fmt.Errorf("loader: job %s: %s: %w", job, p.name, err)
			}
		}
	}
	return defs, nil
}
