package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emielm/watchgod/loader"
)

// maxMS is the longest duration a godv1 reply may carry (24 h).
const maxMS = 24 * time.Hour

// ref is a unit named by a dependency directive, kept with where it was written so that a
// dependency the loader cannot honour is reported at its line.
type ref struct {
	unit      string // e.g. db.service
	directive string // Requires, After, ...
	line      int
	from      *unitFile // where it was written, when not in the unit of the job that holds it (Before=)
}

// job is what one .service file becomes: the answers to god's static properties, and the check
// command of its [X-God] section.
type job struct {
	name  string
	unit  *unitFile
	props map[string][]string

	check         []string // argv of [X-God] Check=, run by the loader when god asks "check"
	checkEnv      []string // the unit's Environment= items, for the check command too
	checkLine     int
	checkDir      string
	checkInterval time.Duration
	checkTimeout  time.Duration

	installed bool // [Install] WantedBy=/RequiredBy=: systemd would start it by itself
	// socketInstalled: a .socket of it is installed, so systemd would start it on its first
	// connection: auto ["socket"] when the service itself is not installed.
	socketInstalled bool
	pulls           []ref // Requires=, Wants=, BindsTo=, Requisite=: units it brings up with it
	orders          []ref // After= and the pulls: units that must be ready first
	before          []ref // Before=: units that must wait for this one

	killSignal  string
	stopTimeout time.Duration
	hasStopTime bool
}

// units is the loader's view of its directory, built once per loader start.
type units struct {
	dir      string
	jobs     []*job
	byName   map[string]*job
	warnings []string // printed once, on stderr, when the loader starts
}

// warn records a warning for the loader's start.
func (us *units) warn(w string) { us.warnings = append(us.warnings, w) }

// load reads every unit file of dir and maps them to jobs. Nothing here is fatal: a file that
// cannot be read or parsed is a warning naming it, and the other units still load.
func load(dir string) *units {
	us := &units{dir: dir, byName: map[string]*job{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		us.warn(fmt.Sprintf("%s: cannot read the unit directory: %v", dir, err))
		return us
	}
	var sockets []*unitFile
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") || e.IsDir() {
			continue
		}
		ext := filepath.Ext(name)
		if ext != ".service" && ext != ".socket" {
			us.warn(fmt.Sprintf("%s: not a .service or .socket unit (ignored)", name))
			continue
		}
		u, err := readUnit(filepath.Join(dir, name))
		if err != nil {
			us.warn(fmt.Sprintf("%s: %v (unit ignored)", name, err))
			continue
		}
		if ext == ".socket" {
			sockets = append(sockets, u)
			continue
		}
		if !loader.ValidJobName(u.name) {
			us.warn(fmt.Sprintf("%s: %q is not a valid god job name (1 to 64 of A-Z a-z 0-9 _ . -); unit ignored", name, u.name))
			continue
		}
		j := us.mapService(u)
		us.jobs = append(us.jobs, j)
		us.byName[j.name] = j
	}
	socketNames := map[string]bool{}
	for _, s := range sockets {
		socketNames[s.file] = true
		us.mapSocket(s)
	}
	us.resolveDeps(socketNames)
	return us
}

// sectionKnown lists the sections each unit kind may have.
var sectionKnown = map[string][]string{
	"service": {"Unit", "Service", "Install", "X-God"},
	"socket":  {"Unit", "Socket", "Install"},
}

// warnSections reports every section of u that god-units does not read, once per header.
func (us *units) warnSections(u *unitFile) {
	for _, s := range u.sections {
		if !slices.Contains(sectionKnown[u.kind], s.section) {
			us.warn(u.warnf(s.line, "section [%s] is not supported in a .%s unit (ignored)", s.section, u.kind))
		}
	}
}

// silentUnit are [Unit] directives that have no effect on how a job runs, so ignoring them
// loses nothing.
var silentUnit = map[string]bool{"Description": true, "Documentation": true, "DefaultDependencies": true}

// mapService turns a .service file into a job, warning about every directive it cannot honour.
func (us *units) mapService(u *unitFile) *job {
	j := &job{name: u.name, unit: u, props: map[string][]string{}, checkDir: filepath.Dir(u.path),
		checkInterval: time.Second, checkTimeout: 5 * time.Second}
	us.warnSections(u)
	var (
		exec        []string
		execLine    int
		env         []string
		envFiles    []string
		limits      []string
		cgroup      []string // the cgroup property, from MemoryMax=, TasksMax=, CPUQuota=, ...
		typ         = "simple"
		typLine     int
		restart     string
		restartLine int
		reloadSig   string
		xReload     []string
	)
	for _, o := range u.options {
		switch o.section {
		case "Unit":
			switch o.name {
			case "Requires", "Wants", "BindsTo", "Requisite":
				for _, w := range strings.Fields(o.value) {
					r := ref{unit: w, directive: o.name, line: o.line}
					j.pulls = append(j.pulls, r)
					j.orders = append(j.orders, r)
				}
			case "After":
				for _, w := range strings.Fields(o.value) {
					j.orders = append(j.orders, ref{unit: w, directive: o.name, line: o.line})
				}
			case "Before":
				for _, w := range strings.Fields(o.value) {
					j.before = append(j.before, ref{unit: w, directive: o.name, line: o.line})
				}
			default:
				if !silentUnit[o.name] {
					us.warn(u.warnf(o.line, "%s= is not supported by god-units (ignored)", o.name))
				}
			}
		case "Install":
			switch o.name {
			case "WantedBy", "RequiredBy", "UpheldBy":
				j.installed = true
			default:
				us.warn(u.warnf(o.line, "%s= is not supported by god-units (ignored)", o.name))
			}
		case "Service":
			switch o.name {
			case "ExecStart":
				if o.value == "" {
					exec = nil // systemd: an empty assignment resets the list
					continue
				}
				if exec != nil {
					us.warn(u.warnf(o.line, "ExecStart=: god runs one command per job; only the first ExecStart= is used (ignored)"))
					continue
				}
				argv, ws := execArgv(u, o)
				for _, w := range ws {
					us.warn(w)
				}
				exec, execLine = argv, o.line
			case "Environment":
				if o.value == "" {
					env = nil
					continue
				}
				words, err := splitWords(o.value)
				if err != nil {
					us.warn(u.warnf(o.line, "Environment=: %v (ignored)", err))
					continue
				}
				for _, w := range words {
					if k, _, ok := strings.Cut(w, "="); !ok || k == "" {
						us.warn(u.warnf(o.line, "Environment=: %q is not VAR=VALUE (ignored)", w))
						continue
					}
					env = append(env, w)
				}
			case "EnvironmentFile":
				if o.value == "" {
					envFiles = nil
					continue
				}
				opt := strings.HasPrefix(o.value, "-")
				p := relPath(u, strings.TrimPrefix(o.value, "-"))
				if opt {
					p = "-" + p
				}
				envFiles = append(envFiles, p)
			case "WorkingDirectory":
				p := strings.TrimPrefix(o.value, "-")
				if strings.HasPrefix(p, "~") {
					us.warn(u.warnf(o.line, "WorkingDirectory=~ is not supported by god-units (ignored)"))
					continue
				}
				j.props["dir"] = []string{relPath(u, p)}
				j.checkDir = relPath(u, p)
			case "User":
				j.props["user"] = []string{o.value}
			case "Group":
				j.props["group"] = []string{o.value}
			case "SupplementaryGroups":
				if o.value == "" {
					delete(j.props, "groups")
					continue
				}
				j.props["groups"] = append(j.props["groups"], strings.Fields(o.value)...)
			case "UMask":
				if _, err := strconv.ParseUint(o.value, 8, 32); err != nil {
					us.warn(u.warnf(o.line, "UMask=%s: not an octal mask (ignored)", o.value))
					continue
				}
				j.props["umask"] = []string{o.value}
			case "Type":
				typ, typLine = o.value, o.line
			case "Restart":
				restart, restartLine = o.value, o.line
			case "RestartSec":
				if ms, ok := us.millis(u, o); ok {
					j.props["restart-delay"] = []string{ms}
				}
			case "WatchdogSec":
				if ms, ok := us.millis(u, o); ok {
					j.props["watchdog"] = []string{ms}
				}
			case "SuccessExitStatus", "RestartPreventExitStatus":
				prop := "success-exit-status"
				if o.name == "RestartPreventExitStatus" {
					prop = "restart-prevent-exit-status"
				}
				if o.value == "" {
					delete(j.props, prop)
					continue
				}
				for _, w := range strings.Fields(o.value) {
					s, err := exitStatus(w)
					if err != nil {
						us.warn(u.warnf(o.line, "%s=: %v (ignored)", o.name, err))
						continue
					}
					j.props[prop] = append(j.props[prop], s)
				}
			case "KillSignal":
				sig, err := loader.ParseSignal(o.value)
				if err != nil {
					us.warn(u.warnf(o.line, "KillSignal=%s: unknown signal (ignored)", o.value))
					continue
				}
				j.killSignal = loader.SignalName(sig)
			case "TimeoutStopSec", "TimeoutSec":
				if o.name == "TimeoutSec" {
					us.warn(u.warnf(o.line, "TimeoutSec=: only its stop part is used; god's start timeout is its --start-timeout flag"))
				}
				if d, err := parseTimespan(o.value); err == nil && d == 0 {
					// systemd: 0 disables the timeout; god's stop MS of 0 would SIGKILL at once.
					us.warn(u.warnf(o.line, "%s=0: no timeout; god's longest, 24h, is used", o.name))
					j.stopTimeout, j.hasStopTime = maxMS, true
					continue
				}
				if ms, ok := us.millis(u, o); ok {
					d, _ := strconv.Atoi(ms)
					j.stopTimeout, j.hasStopTime = time.Duration(d)*time.Millisecond, true
				}
			case "TimeoutStartSec":
				us.warn(u.warnf(o.line, "TimeoutStartSec=: god has no per-job start timeout; its --start-timeout flag applies (ignored)"))
			case "ExecReload":
				if sig, ok := killMainPID(o.value); ok {
					reloadSig = sig
				} else {
					us.warn(u.warnf(o.line, "ExecReload=: god reloads by signal, overlap or restart; only \"kill -SIG $MAINPID\" maps to a signal reload (ignored)"))
				}
			case "PIDFile":
				us.warn(u.warnf(o.line, "PIDFile= is not needed by god (ignored)"))
			case "RemainAfterExit":
				if !isTrue(o.value) {
					us.warn(u.warnf(o.line, "RemainAfterExit=%s: a finished one-shot job stays done in god (ignored)", o.value))
				}
			case "NotifyAccess":
				if o.value != "main" && o.value != "all" && o.value != "exec" {
					us.warn(u.warnf(o.line, "NotifyAccess=%s: god accepts notify messages from the job's processes (ignored)", o.value))
				}
			case "StartLimitBurst":
				us.warn(u.warnf(o.line, "StartLimitBurst= is mapped to restart-limit (quick failures in a row), which counts differently"))
				if _, err := strconv.Atoi(o.value); err == nil {
					j.props["restart-limit"] = []string{o.value}
				}
			case "StandardOutput":
				if o.value != "journal" && o.value != "inherit" && o.value != "journal+console" {
					us.warn(u.warnf(o.line, "%s=%s: god logs the job's output (ignored)", o.name, o.value))
				}
			case "StandardError":
				// god's stderr property: inherit is stdout's pipe (one stream, in the order
				// written, as systemd's one journal stream); null is /dev/null; journal keeps
				// god's own stderr pipe (its lines tagged stderr), as does no StandardError=.
				switch o.value {
				case "inherit":
					j.props["stderr"] = []string{"stdout"}
				case "null":
					j.props["stderr"] = []string{"null"}
				case "journal", "journal+console", "":
					delete(j.props, "stderr")
				default:
					us.warn(u.warnf(o.line, "%s=%s: god logs the job's output (ignored)", o.name, o.value))
				}
			case "StandardInput":
				if o.value != "null" {
					us.warn(u.warnf(o.line, "StandardInput=%s: a job's stdin is /dev/null in god (ignored)", o.value))
				}
			case "MemoryMax", "MemoryHigh", "MemoryLow", "MemoryMin", "MemorySwapMax", "TasksMax", "CPUQuota", "CPUWeight":
				item, err := cgroupItem(o.name, o.value)
				if err != nil {
					us.warn(u.warnf(o.line, "%s=%s: %v (ignored)", o.name, o.value, err))
					continue
				}
				cgroup = append(cgroup, item)
			default:
				if lim, ok := strings.CutPrefix(o.name, "Limit"); ok && limitNames[lim] {
					if !validLimit(o.value) {
						us.warn(u.warnf(o.line, "%s=%s: not a limit (NUMBER, infinity or SOFT:HARD) (ignored)", o.name, o.value))
						continue
					}
					limits = append(limits, strings.ToLower(lim)+"="+o.value)
					continue
				}
				us.warn(u.warnf(o.line, "%s= is not supported by god-units (ignored)", o.name))
			}
		case "X-God":
			switch o.name {
			case "Reload":
				w := strings.Fields(o.value)
				if len(w) == 0 || !slices.Contains([]string{"overlap", "restart", "signal"}, w[0]) || len(w) > 2 || len(w) == 2 && w[0] != "signal" {
					us.warn(u.warnf(o.line, "Reload=%s: want overlap, restart or signal [SIGNAL] (ignored)", o.value))
					continue
				}
				xReload = w
			case "Instances":
				if n, err := strconv.Atoi(o.value); err != nil || n < 1 || n > 1024 {
					us.warn(u.warnf(o.line, "Instances=%s: want 1 to 1024 (ignored)", o.value))
					continue
				}
				j.props["instances"] = []string{o.value}
			case "Ready":
				w := strings.Fields(o.value)
				switch {
				case len(w) == 1 && (w[0] == "check" || w[0] == "notify"):
					j.props["ready"] = w
				case len(w) == 2 && w[0] == "delay":
					d, err := parseTimespan(w[1])
					if err != nil || d > maxMS {
						us.warn(u.warnf(o.line, "Ready=%s: bad delay (ignored)", o.value))
						continue
					}
					j.props["ready"] = []string{"delay", strconv.FormatInt(d.Milliseconds(), 10)}
				default:
					us.warn(u.warnf(o.line, "Ready=%s: want check, notify or delay TIME (ignored)", o.value))
				}
			case "Check":
				argv, err := splitWords(o.value)
				if err != nil || len(argv) == 0 {
					us.warn(u.warnf(o.line, "Check=: %v (ignored)", errOr(err, "empty command")))
					continue
				}
				argv[0] = relPath(u, argv[0])
				j.check, j.checkLine = argv, o.line
			case "CheckInterval", "CheckTimeout":
				d, err := parseTimespan(o.value)
				if err != nil || d < 10*time.Millisecond || d > maxMS {
					us.warn(u.warnf(o.line, "%s=%s: want a time span from 10ms to 24h (ignored)", o.name, o.value))
					continue
				}
				if o.name == "CheckInterval" {
					j.checkInterval = d
				} else {
					j.checkTimeout = d
				}
			case "Log":
				if o.value != "text" && o.value != "json" && o.value != "logfmt" {
					us.warn(u.warnf(o.line, "Log=%s: want text, json or logfmt (ignored)", o.value))
					continue
				}
				j.props["log"] = []string{o.value}
			case "Cgroup":
				us.warn(u.warnf(o.line, "Cgroup=: god chooses each job's cgroup itself; limits are MemoryMax=, TasksMax=, CPUQuota=, ... in [Service] (ignored)"))
			default:
				us.warn(u.warnf(o.line, "%s= is not a god-units [X-God] setting (ignored)", o.name))
			}
		}
	}
	if exec == nil {
		us.warn(u.warnf(0, "no ExecStart=: god cannot start job %s", j.name))
	} else {
		vars := map[string]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		argv, missing := expandVars(exec, vars)
		for _, name := range missing {
			us.warn(u.warnf(execLine, "ExecStart=: $%s is not set by an Environment= line of this unit; god-units substitutes it with nothing", name))
		}
		if len(argv) == 0 {
			us.warn(u.warnf(execLine, "ExecStart=: no command left after substitution: god cannot start job %s", j.name))
		} else {
			j.props["exec"] = argv
		}
	}
	if len(env) > 0 {
		j.props["env"] = env
		j.checkEnv = env
	}
	if j.check != nil {
		// Variables are substituted when the check runs ($MAINPID is the pid god asks about);
		// the ones no Environment= line sets are reported now, once.
		_, missing := expandVars(j.check, j.checkVars(""))
		for _, name := range missing {
			us.warn(u.warnf(j.checkLine, "Check=: $%s is not set by an Environment= line of this unit; god-units substitutes it with nothing", name))
		}
	}
	if len(envFiles) > 0 {
		j.props["env-file"] = envFiles
	}
	if len(limits) > 0 {
		j.props["limit"] = limits
	}
	if len(cgroup) > 0 {
		j.props["cgroup"] = dedupCgroup(cgroup)
	}
	switch typ {
	case "simple", "exec":
	case "notify", "notify-reload":
		if _, set := j.props["ready"]; !set { // [X-God] Ready= wins
			j.props["ready"] = []string{"notify"}
		}
		if typ == "notify-reload" && reloadSig == "" {
			reloadSig = "SIGHUP"
		}
	case "oneshot":
		// ready: exit keeps a one-shot starting (and its dependents waiting) until it exits 0,
		// as systemd's start order does, with no start timeout (TimeoutStartSec=infinity).
		if _, set := j.props["ready"]; !set {
			j.props["ready"] = []string{"exit"}
		}
	default:
		us.warn(u.warnf(typLine, "Type=%s is not supported by god (run as Type=simple)", typ))
	}
	if typ == "oneshot" && restart != "" && restart != "no" && restart != "on-failure" {
		us.warn(u.warnf(restartLine, "Restart=%s is not allowed for Type=oneshot (not restarted)", restart))
		restart = "no"
	}
	j.props["restart"] = []string{us.restartPolicy(u, restart, restartLine)}
	if j.killSignal != "" || j.hasStopTime {
		sig := j.killSignal
		if sig == "" {
			sig = "SIGTERM"
		}
		j.props["stop"] = []string{sig}
		if j.hasStopTime {
			j.props["stop"] = append(j.props["stop"], strconv.FormatInt(j.stopTimeout.Milliseconds(), 10))
		}
	}
	switch {
	case xReload != nil:
		j.props["reload"] = xReload
	case reloadSig != "":
		j.props["reload"] = []string{"signal", reloadSig}
	}
	return j
}

// checkVars are the variables Check= may use: the unit's Environment= and MAINPID.
func (j *job) checkVars(pid string) map[string]string {
	vars := map[string]string{"MAINPID": pid}
	for _, kv := range j.checkEnv {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return vars
}

// errOr is err's text, or alt when err is nil, for warnings that cover both cases.
func errOr(err error, alt string) string {
	if err != nil {
		return err.Error()
	}
	return alt
}

// restartPolicy maps Restart= to god's restart policy. systemd's default is "no", so a unit
// without Restart= is not restarted by god either.
func (us *units) restartPolicy(u *unitFile, v string, line int) string {
	switch v {
	case "", "no":
		return "never"
	case "always":
		return "always"
	case "on-failure":
		return "on-failure"
	case "on-abnormal", "on-abort", "on-watchdog":
		us.warn(u.warnf(line, "Restart=%s is run as on-failure: god also restarts after an unclean exit code", v))
		return "on-failure"
	case "on-success":
		us.warn(u.warnf(line, "Restart=on-success is run as always: god has no restart on clean exit only"))
		return "always"
	}
	us.warn(u.warnf(line, "Restart=%s: unknown policy (not restarted)", v))
	return "never"
}

// millis reads a *Sec= directive as god's milliseconds, warning about what does not fit.
func (us *units) millis(u *unitFile, o option) (string, bool) {
	d, err := parseTimespan(o.value)
	switch {
	case errors.Is(err, errInfinity):
		us.warn(u.warnf(o.line, "%s=infinity: god's longest duration is 24h (used instead)", o.name))
		d = maxMS
	case err != nil:
		us.warn(u.warnf(o.line, "%s=: %v (ignored)", o.name, err))
		return "", false
	case d > maxMS:
		us.warn(u.warnf(o.line, "%s=%s: god's longest duration is 24h (used instead)", o.name, o.value))
		d = maxMS
	}
	return strconv.FormatInt(d.Milliseconds(), 10), true
}

// limitNames are the Limit*= suffixes of systemd.exec(5); god's limit property takes them in
// lower case.
var limitNames = map[string]bool{
	"CPU": true, "FSIZE": true, "DATA": true, "STACK": true, "CORE": true, "RSS": true,
	"NOFILE": true, "AS": true, "NPROC": true, "MEMLOCK": true, "LOCKS": true,
	"SIGPENDING": true, "MSGQUEUE": true, "NICE": true, "RTPRIO": true, "RTTIME": true,
}

// validLimit accepts what god's limit property can pass on: a number (with systemd's size or time
// suffix), infinity, or SOFT:HARD of those.
func validLimit(v string) bool {
	parts := strings.Split(v, ":")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if p == "infinity" {
			continue
		}
		digits := strings.TrimLeft(p, "+-") // LimitNICE= takes -20..19 and +N
		if len(p)-len(digits) > 1 || digits == "" || digits[0] < '0' || digits[0] > '9' {
			return false
		}
	}
	return true
}

// exitStatus reads one word of SuccessExitStatus=/RestartPreventExitStatus=: an exit code
// 0..255 or a signal name, in the form god's properties take.
func exitStatus(w string) (string, error) {
	if w[0] >= '0' && w[0] <= '9' {
		n, err := strconv.Atoi(w)
		if err != nil || n > 255 {
			return "", fmt.Errorf("%q is not an exit code from 0 to 255", w)
		}
		return w, nil
	}
	sig, err := loader.ParseSignal(w)
	if err != nil {
		return "", fmt.Errorf("%q is neither an exit code nor a signal", w)
	}
	return loader.SignalName(sig), nil
}

// isTrue reads a systemd boolean.
func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "yes", "true", "on", "y", "t":
		return true
	}
	return false
}

// relPath resolves a ./ or ../ path against the unit file's directory, so that a unit directory
// can ship its programs next to it; other paths are kept as written.
func relPath(u *unitFile, p string) string {
	if strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") || p == "." || p == ".." {
		return filepath.Join(filepath.Dir(u.path), p)
	}
	return p
}

// execArgv reads ExecStart=: the prefixes systemd allows before the program, the command's
// words, and ./ or ../ programs relative to the unit file.
func execArgv(u *unitFile, o option) ([]string, []string) {
	var warns []string
	v := o.value
	argv0 := false
	for len(v) > 0 && strings.ContainsRune("-@+!:|", rune(v[0])) {
		switch v[0] {
		case '-':
			// A failure exit is not a failure: god's restart policy decides instead.
		case '@':
			argv0 = true
		default:
			warns = append(warns, u.warnf(o.line, "ExecStart=: prefix %q is not supported by god (ignored)", v[:1]))
		}
		v = v[1:]
	}
	words, err := splitWords(v)
	if err != nil {
		return nil, append(warns, u.warnf(o.line, "ExecStart=: %v (ignored)", err))
	}
	if len(words) == 0 {
		return nil, append(warns, u.warnf(o.line, "ExecStart=: no command (ignored)"))
	}
	if argv0 {
		warns = append(warns, u.warnf(o.line, "ExecStart=@: god cannot set argv[0]; %q is dropped", wordAt(words, 1)))
		if len(words) > 1 {
			words = append(words[:1], words[2:]...)
		}
	}
	for i, w := range words {
		if strings.Contains(w, "%") {
			if strings.Contains(strings.ReplaceAll(w, "%%", ""), "%") {
				warns = append(warns, u.warnf(o.line, "ExecStart=: specifier in %q is not supported (kept as written)", w))
			}
			words[i] = strings.ReplaceAll(w, "%%", "%")
		}
	}
	words[0] = relPath(u, words[0])
	return words, warns
}

// varName matches a whole-word $VAR.
var varName = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)$`)

// expandVars substitutes variables in ExecStart= words as systemd does with the unit's
// Environment=: "${VAR}" anywhere in a word, "$VAR" as a word of its own (split at whitespace
// into several words), "$$" for a literal "$". It returns the names it could not find, which
// systemd might have taken from EnvironmentFile= (god-units does not read those files).
func expandVars(words []string, vars map[string]string) ([]string, []string) {
	var out, missing []string
	for i, w := range words {
		if m := varName.FindStringSubmatch(w); m != nil && i > 0 {
			v, ok := vars[m[1]]
			if !ok {
				missing = append(missing, m[1])
			}
			out = append(out, strings.Fields(v)...)
			continue
		}
		var b strings.Builder
		for k := 0; k < len(w); k++ {
			switch {
			case strings.HasPrefix(w[k:], "$$"):
				b.WriteByte('$')
				k++
			case strings.HasPrefix(w[k:], "${"):
				end := strings.IndexByte(w[k:], '}')
				if end < 0 {
					b.WriteString(w[k:])
					k = len(w)
					continue
				}
				name := w[k+2 : k+end]
				v, ok := vars[name]
				if !ok {
					missing = append(missing, name)
				}
				b.WriteString(v)
				k += end
			default:
				b.WriteByte(w[k])
			}
		}
		out = append(out, b.String())
	}
	return out, missing
}

// wordAt is words[i], or "" past the end.
func wordAt(words []string, i int) string {
	if i < len(words) {
		return words[i]
	}
	return ""
}

// killMainPID recognises ExecReload= lines that only signal the main process
// ("kill -HUP $MAINPID", "/bin/kill -s USR1 ${MAINPID}", "kill --signal=HUP $MAINPID") and gives
// the signal; god sends it itself for reload "signal".
func killMainPID(v string) (string, bool) {
	v = strings.TrimLeft(v, "-@+!:|")
	w, err := splitWords(v)
	if err != nil || len(w) < 2 || filepath.Base(w[0]) != "kill" || !strings.HasPrefix(w[0], "/") && w[0] != "kill" {
		return "", false
	}
	if last := w[len(w)-1]; last != "$MAINPID" && last != "${MAINPID}" {
		return "", false
	}
	var sig string
	switch args := w[1 : len(w)-1]; {
	case len(args) == 1 && strings.HasPrefix(args[0], "--signal="):
		sig = strings.TrimPrefix(args[0], "--signal=")
	case len(args) == 1 && strings.HasPrefix(args[0], "-") && len(args[0]) > 1:
		sig = args[0][1:]
	case len(args) == 2 && (args[0] == "-s" || args[0] == "--signal"):
		sig = args[1]
	case len(args) == 0:
		sig = "TERM" // kill's default: a strange reload, but what systemd would do
	default:
		return "", false
	}
	s, err := loader.ParseSignal(sig)
	if err != nil {
		return "", false
	}
	return loader.SignalName(s), true
}

// cgroupFiles maps systemd's resource-control directives to the files of god's cgroup property.
var cgroupFiles = map[string]string{
	"MemoryMax": "memory.max", "MemoryHigh": "memory.high", "MemoryLow": "memory.low", "MemoryMin": "memory.min",
	"MemorySwapMax": "memory.swap.max", "TasksMax": "pids.max", "CPUQuota": "cpu.max", "CPUWeight": "cpu.weight",
}

// cgroupItem turns one of systemd's resource-control directives into an item of god's cgroup
// property ("MemoryMax=512M" is "memory.max=512M"; infinity is max), checked by god's own
// parser: what god would refuse (a percentage of RAM, CPUWeight=idle) is the caller's warning.
func cgroupItem(name, value string) (string, error) {
	if value == "infinity" {
		value = "max"
	}
	item := cgroupFiles[name] + "=" + value
	if _, err := loader.ParseCgroupLimit(item); err != nil {
		return "", fmt.Errorf("god's cgroup property cannot take it: %w", err)
	}
	return item, nil
}

// dedupCgroup keeps the last item of each file: in a unit a later line wins.
func dedupCgroup(items []string) []string {
	var out []string
	for i, item := range items {
		file, _, _ := strings.Cut(item, "=")
		later := slices.ContainsFunc(items[i+1:], func(o string) bool { return strings.HasPrefix(o, file+"=") })
		if !later {
			out = append(out, item)
		}
	}
	return out
}
