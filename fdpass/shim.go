package fdpass

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// ShimShell is the shell ShimArgv runs. It must be a POSIX sh whose $$ is
// its own pid (dash, bash, busybox sh).
const ShimShell = "/bin/sh"

// shimScript sets LISTEN_PID to the shell's own pid and replaces the shell
// by the job; exec keeps the pid, so LISTEN_PID is the job's pid and the
// process god started (and waits for) is the job.
const shimScript = `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`

// ShimArgv returns an argv that runs argv with LISTEN_PID set to the
// process's own pid. It exists because the systemd protocol wants
// LISTEN_PID = the reader's pid, and Go cannot run code between fork and
// exec to set it.
//
// The result is
//
//	/bin/sh -c 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"' argv...
//
// to be started with path ShimShell and the job's environment (LISTEN_FDS
// etc. from Env). The shell sets LISTEN_PID to its own pid and execs the job
// in place, so the pid god started is the job's pid: waiting, signals and
// process groups work as if the job were started directly. Fds 3 and up,
// the signal mask, the working directory and the rest of the environment
// pass through unchanged.
//
// Cost: one more execve and the shell's start-up, about 1 ms with dash (see
// BenchmarkShim). Edge cases: argv[0] is both the program and the job's
// argv[0] (the shell cannot set them apart); an argv[0] without '/' is
// looked up in the environment's PATH by the shell, not by Go; if the exec
// fails the shell prints a message on stderr and exits 127 (not found) or
// 126 (not executable). For an empty argv, ShimArgv returns nil.
func ShimArgv(argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	return append([]string{ShimShell, "-c", shimScript}, argv...)
}

// ShimEnv is the environment variable that turns a Go binary calling
// RunShimIfRequested into the LISTEN_PID shim. It is the fallback for
// systems without /bin/sh.
const ShimEnv = "WATCHGOD_LISTEN_PID_SHIM"

// GoShimArgv returns the argv that runs argv through the Go shim built into
// the binary self (a binary that calls RunShimIfRequested at the top of
// main, like god): [self, argv...]. Start it with path self and
// ShimEnv+"=1" added to the job's environment; the shim removes it again.
//
// Cost: the start-up of the Go binary self, including the init of every
// package it links (measured 8 to 15 ms, against about 1 ms for ShimArgv).
// For an empty argv, GoShimArgv returns nil.
func GoShimArgv(self string, argv []string) []string {
	if len(argv) == 0 {
		return nil
	}
	return append([]string{self}, argv...)
}

// RunShimIfRequested acts as the LISTEN_PID shim when ShimEnv is set to a
// non-empty value, and returns at once otherwise. A binary calls it at the
// top of main, before it does anything else.
//
// As the shim it sets LISTEN_PID to its own pid, unsets ShimEnv and
// replaces itself with os.Args[1:] (os.Args[1] looked up in PATH when it
// has no '/'), keeping the pid. It never returns then: on failure it prints
// the reason on stderr and exits 127.
func RunShimIfRequested() {
	if os.Getenv(ShimEnv) == "" {
		return
	}
	os.Unsetenv(ShimEnv)
	os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	argv := os.Args[1:]
	if len(argv) == 0 {
		fmt.Fprintf(os.Stderr, "%s: %s is set but no command was given\n", os.Args[0], ShimEnv)
		os.Exit(127)
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: listen-pid shim: %v\n", os.Args[0], err)
			os.Exit(127)
		}
		path = p
	}
	err := syscall.Exec(path, argv, os.Environ())
	fmt.Fprintf(os.Stderr, "%s: listen-pid shim: exec %s: %v\n", os.Args[0], path, err)
	os.Exit(127)
}
