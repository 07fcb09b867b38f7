package watchgod

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// execFuncEnv marks a process started for a job's ExecFunc; its value is the
// job's name.
const execFuncEnv = "WATCHGOD_EXECFUNC"

// jobSet is the loader.Handler for the registered jobs.
type jobSet struct{}

// Jobs names the registered jobs for the handshake.
func (jobSet) Jobs() []string { return registered() }

// Answer replies for one registered job; unknown jobs and properties get [].
func (jobSet) Answer(job, prop string, args []string) []string {
	d := lookup(job)
	if d == nil {
		return nil
	}
	return d.answer(job, prop, args)
}

// field returns the value of the property prop, and false for a property
// JobDef does not have.
func (d *JobDef) field(prop string) (any, bool) {
	switch prop {
	case "exec":
		return d.Exec, true
	case "auto":
		return d.Auto, true
	case "check":
		return d.Check, true
	case "stop":
		return d.Stop, true
	case "env":
		return d.Env, true
	case "onStart":
		return d.OnStart, true
	case "onRun":
		return d.OnRun, true
	case "onStop":
		return d.OnStop, true
	case "onExit":
		return d.OnExit, true
	case "onWait":
		return d.OnWait, true
	case "onDegrade":
		return d.OnDegrade, true
	case "onStopped":
		return d.OnStopped, true
	case "onDone":
		return d.OnDone, true
	case "onBackoff":
		return d.OnBackoff, true
	case "onFailed":
		return d.OnFailed, true
	case "onListen":
		return d.OnListen, true
	case "listen":
		return d.Listen, true
	case "instances":
		return d.Instances, true
	case "ready":
		return d.Ready, true
	case "reload":
		return d.Reload, true
	case "restart":
		return d.Restart, true
	case "dir":
		return d.Dir, true
	case "log":
		return d.Log, true
	case "watchdog":
		return d.Watchdog, true
	case "idle-exit":
		return d.IdleExit, true
	case "restart-delay":
		return d.RestartDelay, true
	case "restart-delay-max":
		return d.RestartDelayMax, true
	case "restart-limit":
		return d.RestartLimit, true
	case "min-uptime":
		return d.MinUptime, true
	case "cool-down":
		return d.CoolDown, true
	case "success-exit-status":
		return d.SuccessExitStatus, true
	case "restart-prevent-exit-status":
		return d.RestartPreventExitStatus, true
	case "user":
		return d.User, true
	case "group":
		return d.Group, true
	case "groups":
		return d.Groups, true
	case "umask":
		return d.Umask, true
	case "limit":
		return d.Limit, true
	case "env-file":
		return d.EnvFile, true
	case "critical":
		return d.Critical, true
	case "cgroup":
		return d.Cgroup, true
	case "log-size":
		return d.LogSize, true
	case "log-keep":
		return d.LogKeep, true
	case "accept":
		return d.Accept, true
	case "max-connections":
		return d.MaxConnections, true
	case "stderr":
		return d.Stderr, true
	}
	return nil, false
}

// answer is the reply to [job, prop, args...]: the property's value adapted,
// with the ExecFunc defaults and the Ready/Reload shorthands applied.
func (d *JobDef) answer(job, prop string, args []string) []string {
	v, ok := d.field(prop)
	if !ok {
		return nil
	}
	switch prop {
	case "exec":
		if v == nil && d.ExecFunc != nil {
			return []string{self()}
		}
	case "ready":
		if dur, ok := v.(time.Duration); ok {
			return []string{"delay", loader.FormatMS(dur)}
		}
	case "reload":
		if sig, ok := v.(syscall.Signal); ok {
			return []string{"signal", loader.SignalName(sig)}
		}
	case "stderr":
		if m, ok := v.(loader.StderrMode); ok {
			return []string{m.String()}
		}
	case "umask":
		// A number is the mask itself, answered in octal as godv1 wants it.
		switch m := v.(type) {
		case os.FileMode:
			return []string{fmt.Sprintf("%04o", uint32(m.Perm()))}
		case int:
			return []string{fmt.Sprintf("%04o", m)}
		case uint32:
			return []string{fmt.Sprintf("%04o", m)}
		}
	}
	r := guarded(job, prop, v, args)
	if prop == "env" && d.ExecFunc != nil {
		r = append(r[:len(r):len(r)], execFuncEnv+"="+job)
	}
	return r
}

// guarded runs reply with a net under user funcs: a panic answers [] (["fail"]
// for a check) and is reported on stderr, like an unsupported value.
func guarded(job, prop string, v any, args []string) (r []string) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "watchgod: job %s: %s panicked: %v\n%s", job, prop, p, debug.Stack())
			r = nil
			if prop == "check" {
				r = []string{string(loader.CheckFail)}
			}
		}
	}()
	r, err := reply(v, args)
	if err != nil {
		warnOnce(job, prop, err)
		return nil
	}
	return r
}

// warned remembers reported (job, prop) errors: a bad Check value would
// otherwise be reported at every check.
var warned sync.Map

// warnOnce reports err on stderr the first time it occurs for job and prop.
func warnOnce(job, prop string, err error) {
	if _, seen := warned.LoadOrStore(job+"\x00"+prop, true); !seen {
		fmt.Fprintf(os.Stderr, "watchgod: job %s: %s: %v (answered [])\n", job, prop, err)
	}
}

// self is the path that re-executes this binary for an ExecFunc job: os.Args[0]
// made absolute when it is a path (so a symlink in god's directory stays the
// entry point), else the executable's path.
var self = sync.OnceValue(func() string {
	if strings.ContainsRune(os.Args[0], '/') {
		if abs, err := filepath.Abs(os.Args[0]); err == nil {
			return abs
		}
	}
	if exe, err := os.Executable(); err == nil {
		return exe
	}
	return os.Args[0]
})
