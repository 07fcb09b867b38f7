// Command god is the watchgod process supervisor: run without a command (or
// with "run", or with flags only) it is the daemon; with a command such as
// "status" or "restart web" it is the client that controls a running daemon
// over its control socket.
package main

import (
	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/forkserver"
	"github.com/emielm/watchgod/internal/procshim"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/supervisor"

	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// version is god's release version, set at build time with
// -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes of the client commands.
const (
	exitOK          = 0 // done
	exitFailed      = 1 // god answered that the request failed
	exitUsage       = 2 // unknown command or flag, missing or bad argument
	exitUnreachable = 3 // no god answers at the socket
)

func main() {
	// god doubles as the LISTEN_PID shim for jobs on systems without /bin/sh: in that role it
	// must exec the job before doing anything else.
	fdpass.RunShimIfRequested()
	// Likewise for jobs with a umask or limits: god sets them up in its own binary, then execs.
	procshim.RunIfRequested()
	// god's fork server (internal/forkserver) is this binary too.
	forkserver.RunIfRequested()
	// A running god asks this binary whether it can take over before re-executing it.
	if os.Getenv(upgradestate.EnvPreflight) != "" {
		os.Exit(upgradePreflight())
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches one invocation of god and returns its exit code.
func run(args []string, stdout, stderr io.Writer) int {
	daemon, name, rest := route(args)
	switch {
	case daemon:
		return runDaemon(rest)
	case name == "-h" || name == "-help" || name == "--help":
		printUsage(stdout)
		return exitOK
	}
	return runCommand(name, rest, stdout, stderr)
}

// route decides whether args run the daemon or a client command, since god is
// both: no args, "run", or flags only mean the daemon; otherwise the first
// word that is not a --socket flag is the command. It returns the daemon's
// flags, or the command name and the remaining args (--socket included, which
// every command parses).
func route(args []string) (daemon bool, name string, rest []string) {
	if len(args) == 0 {
		return true, "", nil
	}
	if args[0] == "run" {
		return true, "", args[1:]
	}
	switch args[0] {
	case "-h", "-help", "--help":
		return false, args[0], args[1:]
	}
	if !strings.HasPrefix(args[0], "-") {
		return false, args[0], args[1:]
	}
	// Leading flags: a client command only if they are all --socket and a
	// word follows (god --socket PATH status).
	i := 0
	for i < len(args) {
		a := strings.TrimPrefix(args[i], "-")
		switch {
		case a == "-socket" || a == "socket":
			i += 2
			continue
		case strings.HasPrefix(a, "-socket=") || strings.HasPrefix(a, "socket="):
			i++
			continue
		}
		break
	}
	if i > 0 && i < len(args) && !strings.HasPrefix(args[i], "-") {
		rest = append(append([]string{}, args[:i]...), args[i+1:]...)
		return false, args[i], rest
	}
	return true, "", args
}

// fullVersion is the version god reports: the release version plus the VCS
// revision the binary was built from, when the build recorded it.
func fullVersion() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return v + " " + rev + dirty
}

// printUsage writes the global help: the commands and the daemon's flags.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `god: the watchgod process supervisor.

Usage:
  god [DAEMON FLAGS]                run the daemon (also: god run [DAEMON FLAGS])
  god [--socket PATH] COMMAND ...   control a running god

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-30s %s\n", c.name+" "+c.args, c.summary)
	}
	fmt.Fprint(w, `
Every command takes --socket PATH (before or after the command name) and
--help. The socket defaults to $GOD_SOCKET, else /run/god/god.sock as root,
else $XDG_RUNTIME_DIR/god.sock, else /tmp/god-UID/god.sock.

Daemon flags:
  --dir DIR            directory of loaders (executables run as "FILE godv1")
  --socket PATH        control socket to listen on
  --log MODE           god's own log format: auto, text, color or json
  --log-level LEVEL    debug, info, warn or error
  --metrics ADDR       serve Prometheus metrics on ADDR by the god-metrics program (off by default)
  --cgroup MODE        auto (god's own cgroup when delegated to it, else subreaper mode),
                       off (subreaper mode), or DIR: each job process in a cgroup under DIR
  --restart-limit N    quick failures in a row before a job is failed (10)
  --backoff-max D      longest delay between restarts (10s)
  --min-uptime D       a ready process that ran this long restarts at once (1s)
  --cool-down D        a job failed by flapping tries again after this (60s)
  --start-timeout D    a process not ready by then has failed; a reload rolls back (30s)
  --loader-timeout D   how long a loader may take to answer (5s; checks: --check-timeout, 10s)
  --log-lines N        recent output lines kept per job for god logs (1000)
  --log-dir DIR        also write each job's output to DIR/JOB/current (off by default)
  --log-size BYTES     rotate current to DIR/JOB/@TIME.log before it exceeds BYTES (10 MiB)
  --log-keep N         rotated files kept per job (10)
  (god run --help lists every flag with its default)

Exit codes: 0 done, 1 failed, 2 usage error, 3 god not reachable.
`)
}

// upgradePreflight reads the state a running god would hand over on stdin and says whether this
// binary accepts it: exit 0 and god re-executes into it, anything else and the upgrade is refused.
// It also checks what god's flags need of this binary's surroundings (the metrics exporter next
// to it), which the new image could not do without once it has replaced the old one.
func upgradePreflight() int {
	st, err := upgradestate.Read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "god", fullVersion()+":", err)
		return 1
	}
	exe, err := os.Executable()
	if err != nil {
		exe = ""
	}
	if err := checkMetricsFlags(os.Args[1:], exe); err != nil {
		fmt.Fprintln(os.Stderr, "god", fullVersion()+":", err)
		return 1
	}
	if err := supervisor.AnswerPreflight(st, fullVersion()); err != nil {
		fmt.Fprintln(os.Stderr, "god", fullVersion()+":", err)
		return 1
	}
	fmt.Printf("god %s accepts the state of god %s (%d jobs)\n", fullVersion(), st.From, len(st.Jobs))
	return 0
}
