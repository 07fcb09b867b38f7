package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// command is one client command of the god CLI.
type command struct {
	name    string
	args    string // synopsis after the name, for help
	summary string
	// setup registers the command's own flags on fs and returns the function
	// that runs it with the positional arguments once fs is parsed.
	setup func(fs *flag.FlagSet) func(c *cli, args []string) int
}

// commands lists the client commands, in the order help shows them.
var commands []*command

func init() {
	commands = []*command{
		{name: "status", args: "[--json] [--state STATE] [JOB...]", summary: "show jobs: state, pids, uptime, checks", setup: setupStatus},
		{name: "is-active", args: "JOB...", summary: "exit 0 when every JOB runs (run or degrade), 4 when one does not", setup: setupIsActive},
		{name: "start", args: "JOB...", summary: "start jobs", setup: setupJobCommand(control.CmdStart)},
		{name: "stop", args: "JOB...", summary: "stop jobs", setup: setupJobCommand(control.CmdStop)},
		{name: "restart", args: "JOB...", summary: "stop, then start jobs", setup: setupJobCommand(control.CmdRestart)},
		{name: "reload", args: "JOB...", summary: "reload jobs (zero downtime where the loader allows)", setup: setupJobCommand(control.CmdReload)},
		{name: "logs", args: "[-f] [-n N] [--since TIME] [--stream S] [--json] [JOB...]", summary: "show recent output of jobs; -f follows", setup: setupLogs},
		{name: "rescan", args: "", summary: "rescan the loader directory now", setup: setupPlain(control.CmdRescan)},
		{name: "shutdown", args: "", summary: "stop every job and exit the daemon", setup: setupPlain(control.CmdShutdown)},
		{name: "version", args: "", summary: "show the client's and the daemon's version", setup: setupVersion},
		{name: "upgrade", args: "", summary: "re-exec the daemon's binary in place, keeping jobs", setup: setupPlain(control.CmdUpgrade)},
		{name: "completion", args: "bash|zsh", summary: "print a shell completion script", setup: setupCompletion},
		{name: "help", args: "[COMMAND]", summary: "show help", setup: setupHelp},
	}
}

// lookup finds a command by name.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// cli is one run of a client command: where it writes and which god it
// talks to.
type cli struct {
	name           string // command name, for messages
	socket         string // resolved control socket path
	stdout, stderr io.Writer
}

// runCommand parses the command's flags (anywhere among its arguments) and
// runs it.
func runCommand(name string, args []string, stdout, stderr io.Writer) int {
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "god: unknown command %q%s\nRun 'god help' for the list of commands.\n", name, suggestCommand(name))
		return exitUsage
	}
	fs := flag.NewFlagSet("god "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	socket := fs.String("socket", "", socketUsage(cmd))
	runFn := cmd.setup(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, cmd, fs)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "god %s: %v\n%s (see god %s --help)\n", name, err, synopsis(cmd), name)
		return exitUsage
	}
	c := &cli{name: name, socket: control.SocketPath(*socket), stdout: stdout, stderr: stderr}
	return runFn(c, pos)
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (god logs web -f), which flag.Parse alone does not
// allow. After "--", everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for range len(args) + 1 { // each round consumes at least one arg
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// printCommandHelp writes one command's help with its flags.
func printCommandHelp(w io.Writer, cmd *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s\n\n%s.\n\nFlags:\n", synopsis(cmd), capitalize(cmd.summary))
	printFlags(w, fs)
}

// socketUsage is the help of a command's --socket: "(ignored)" for the commands that talk to no
// god (help, completion), which accept it only so that a shared command line still parses.
func socketUsage(cmd *command) string {
	if cmd.name == "help" || cmd.name == "completion" {
		return ignoredFlag
	}
	return "control socket `PATH` (default: $GOD_SOCKET, else /run/god/god.sock as root, $XDG_RUNTIME_DIR/god.sock, /tmp/god-UID/god.sock)"
}

// synopsis is a command's usage line, "usage: god logs [-f] [-n N] [JOB...]", with no trailing
// space for a command without arguments.
func synopsis(cmd *command) string {
	return strings.TrimRight("usage: god "+cmd.name+" "+cmd.args, " ")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// usageError reports a bad argument and returns the usage exit code.
func (c *cli) usageError(format string, args ...any) int {
	cmd := lookup(c.name)
	fmt.Fprintf(c.stderr, "god %s: %s\n%s\n", c.name, fmt.Sprintf(format, args...), synopsis(cmd))
	return exitUsage
}

// checkJobs validates job arguments before they go to god, so that a typo
// is a usage error (exit 2) rather than a failed request.
func (c *cli) checkJobs(jobs []string, required bool) int {
	if required && len(jobs) == 0 {
		return c.usageError("missing JOB")
	}
	for _, j := range jobs {
		if !control.ValidJobName(j) {
			return c.usageError("invalid job name %q: a job name is 1 to %d of A-Z a-z 0-9 _ . -", j, control.MaxJobNameLen)
		}
	}
	return exitOK
}

// do sends req to god, printing progress (and log) lines as they arrive, and
// returns the result with exit code 0, or the exit code of the failure after
// printing why: 1 for a failed request, 3 when god cannot be reached.
func (c *cli) do(ctx context.Context, req control.Request, onLine func(control.Response)) (control.Response, int) {
	res, _, code := c.request(ctx, req, onLine, false)
	return res, code
}

// doRaw is do for status --json: the result's jobs come as the JSON god sent (see
// control.Client.DoRaw).
func (c *cli) doRaw(ctx context.Context, req control.Request) (control.Response, json.RawMessage, int) {
	return c.request(ctx, req, nil, true)
}

// request is do, and doRaw when raw is set.
func (c *cli) request(ctx context.Context, req control.Request, onLine func(control.Response), raw bool) (control.Response, json.RawMessage, int) {
	if onLine == nil {
		onLine = c.printLine
	}
	client, err := control.Dial(c.socket)
	if err != nil {
		fmt.Fprintf(c.stderr, "god: %v\n%s\n", err, unreachableHint)
		return control.Response{}, nil, exitUnreachable
	}
	defer client.Close()
	var res control.Response
	var jobs json.RawMessage
	if raw {
		res, jobs, err = client.DoRaw(ctx, req, onLine)
	} else {
		res, err = client.Do(ctx, req, onLine)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return control.Response{}, nil, exitOK // interrupted on purpose (logs -f, Ctrl-C)
	case errors.Is(err, control.ErrUnreachable):
		fmt.Fprintf(c.stderr, "god: %v\n%s\n", err, unreachableHint)
		return control.Response{}, nil, exitUnreachable
	case err != nil:
		fmt.Fprintf(c.stderr, "god: %v\n", err)
		return control.Response{}, nil, exitFailed
	case !res.OK:
		fmt.Fprintf(c.stderr, "god: %s\n", cleanLines(res.Error))
		return res, nil, exitFailed
	}
	return res, jobs, exitOK
}

// printLine prints a progress line as "HH:MM:SS.mmm JOB message" (and a log
// line in the logs format); other line types are for newer clients.
func (c *cli) printLine(r control.Response) {
	switch r.Type {
	case control.TypeProgress:
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		if r.Job != "" {
			fmt.Fprintf(c.stdout, "%s %s %s\n", t.Local().Format("15:04:05.000"), clean(r.Job), cleanLines(r.Message))
		} else {
			fmt.Fprintf(c.stdout, "%s %s\n", t.Local().Format("15:04:05.000"), cleanLines(r.Message))
		}
	case control.TypeLog:
		if r.Log != nil {
			printLogLine(c.stdout, r.Log)
		}
	}
}

// setupJobCommand makes start, stop, restart and reload: one or more jobs,
// progress as it happens, then god's summary.
func setupJobCommand(cmd string) func(fs *flag.FlagSet) func(c *cli, args []string) int {
	return func(fs *flag.FlagSet) func(c *cli, args []string) int {
		return func(c *cli, jobs []string) int {
			if code := c.checkJobs(jobs, true); code != exitOK {
				return code
			}
			return c.simple(control.Request{Cmd: cmd, Jobs: jobs})
		}
	}
}

// setupPlain makes rescan, shutdown and upgrade: no arguments.
func setupPlain(cmd string) func(fs *flag.FlagSet) func(c *cli, args []string) int {
	return func(fs *flag.FlagSet) func(c *cli, args []string) int {
		return func(c *cli, args []string) int {
			if len(args) > 0 {
				return c.usageError("unexpected argument %q", args[0])
			}
			return c.simple(control.Request{Cmd: cmd})
		}
	}
}

// simple runs a request whose only output is progress and a summary.
func (c *cli) simple(req control.Request) int {
	res, code := c.do(context.Background(), req, nil)
	if code == exitOK && res.Message != "" {
		fmt.Fprintln(c.stdout, cleanLines(res.Message))
	}
	return code
}

// setupVersion prints the client's version, then asks the daemon for its.
func setupVersion(fs *flag.FlagSet) func(c *cli, args []string) int {
	return func(c *cli, args []string) int {
		if len(args) > 0 {
			return c.usageError("unexpected argument %q", args[0])
		}
		// Both lines in one format, "WHO: god VERSION", so a script can cut them alike.
		fmt.Fprintf(c.stdout, "client: god %s\n", fullVersion())
		res, code := c.do(context.Background(), control.Request{Cmd: control.CmdVersion}, nil)
		if code == exitOK {
			fmt.Fprintf(c.stdout, "daemon: god %s\n", clean(res.Version))
		}
		return code
	}
}

// setupHelp prints the global help or one command's.
func setupHelp(fs *flag.FlagSet) func(c *cli, args []string) int {
	return func(c *cli, args []string) int {
		switch len(args) {
		case 0:
			printUsage(c.stdout)
			return exitOK
		case 1:
			cmd := lookup(args[0])
			if cmd == nil {
				return c.usageError("unknown command %q", args[0])
			}
			cfs := flag.NewFlagSet("god "+cmd.name, flag.ContinueOnError)
			cfs.String("socket", "", socketUsage(cmd))
			cmd.setup(cfs)
			printCommandHelp(c.stdout, cmd, cfs)
			return exitOK
		}
		return c.usageError("too many arguments")
	}
}

// cleanLines is clean for a message god wrote on several lines (a failed reload and the new
// generation's last output): each line is cleaned, and the lines after the first are indented,
// so that they read as lines and still cannot pass for output of their own.
func cleanLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = clean(l)
	}
	return strings.Join(lines, "\n  ")
}

// clean makes text from god or a job safe to print on a terminal (joblog.Clean, shared with
// the log files god writes).
func clean(s string) string { return joblog.Clean(s) }

// unreachableHint follows "cannot reach god": how to point at another one.
const unreachableHint = "(is god running? --socket PATH or GOD_SOCKET point at another god)"

// suggestCommand is ` (did you mean "status"?)` for a command name one or two edits away from a
// real one (`god stats`), else "".
func suggestCommand(name string) string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return control.Suggest(name, names)
}
