// Package procshim is the step between god's fork and a job's exec for what Go cannot do in
// the child itself: umask and resource limits (syscall.SysProcAttr has neither), then the
// switch to the job's user, then LISTEN_PID. god starts its own binary with Env set to a
// Spec; RunIfRequested, at the top of god's main, applies it and execs the job in place, so
// the pid god started is the job's.
//
// Limits must be set before the switch of user: only a privileged process may raise a hard
// limit. That is why the shim, not SysProcAttr.Credential, switches the user when it runs.
package procshim

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// Env carries the Spec, as JSON, from god to its own binary run as the shim.
const Env = "WATCHGOD_PROC_SHIM"

// Limit is one setrlimit(2).
type Limit struct {
	Resource int    `json:"r"`
	Soft     uint64 `json:"s"`
	Hard     uint64 `json:"h"`
}

// Cred is the identity to switch to, last.
type Cred struct {
	Uid    uint32   `json:"uid"`
	Gid    uint32   `json:"gid"`
	Groups []uint32 `json:"groups"`
}

// Spec is what the shim does before it execs Path with the rest of its argv.
type Spec struct {
	Path      string  `json:"path"`
	Umask     *uint32 `json:"umask,omitempty"`
	Limits    []Limit `json:"limits,omitempty"`
	Cred      *Cred   `json:"cred,omitempty"`
	ListenPid bool    `json:"listen_pid,omitempty"`
}

// Command returns the argv and the environment item that run argv (argv[0] resolved to
// spec.Path) through the shim built into self: [self, argv...] with Env=JSON added.
func Command(self string, spec Spec, argv []string) ([]string, string) {
	b, _ := json.Marshal(spec) // plain types: cannot fail
	return append([]string{self}, argv...), Env + "=" + string(b)
}

// RunIfRequested acts as the shim when Env is set and returns at once otherwise; a binary
// calls it first thing in main. As the shim it never returns: it execs the job, or prints
// why it could not on stderr (the job's log) and exits 127.
func RunIfRequested() {
	v, ok := os.LookupEnv(Env)
	if !ok {
		return
	}
	os.Unsetenv(Env)
	if err := run(v); err != nil {
		fmt.Fprintf(os.Stderr, "god shim: %v\n", err)
		os.Exit(127)
	}
}

func run(v string) error {
	var spec Spec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		return fmt.Errorf("%s: %w", Env, err)
	}
	argv := os.Args[1:]
	if len(argv) == 0 || spec.Path == "" {
		return fmt.Errorf("%s is set but no command was given", Env)
	}
	for _, l := range spec.Limits {
		// syscall.Setrlimit, not x/sys: for RLIMIT_NOFILE it also stops Go from restoring the
		// soft limit this process started with at the exec below.
		if err := syscall.Setrlimit(l.Resource, &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			return fmt.Errorf("setrlimit %d to %d:%d: %w", l.Resource, l.Soft, l.Hard, err)
		}
	}
	if spec.Umask != nil {
		syscall.Umask(int(*spec.Umask))
	}
	if c := spec.Cred; c != nil {
		groups := make([]int, len(c.Groups))
		for i, g := range c.Groups {
			groups[i] = int(g)
		}
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(int(c.Gid)); err != nil {
			return fmt.Errorf("setgid %d: %w", c.Gid, err)
		}
		if err := syscall.Setuid(int(c.Uid)); err != nil {
			return fmt.Errorf("setuid %d: %w", c.Uid, err)
		}
	}
	if spec.ListenPid {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	err := syscall.Exec(spec.Path, argv, os.Environ())
	return fmt.Errorf("exec %s: %w", spec.Path, err)
}
