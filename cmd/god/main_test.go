package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/supervisor/control"
)

// godBin is the god binary built once for all CLI tests.
var godBin string

func TestMain(m *testing.M) {
	testutil.MainWithBinary(m, ".", "god", &godBin)
}

// fakeGod is a real control server in the test process whose handler
// returns canned answers and records the requests it got.
type fakeGod struct {
	path  string
	since time.Time // the jobs' Since

	mu   sync.Mutex
	reqs []control.Request
	list []control.JobStatus // when set, the jobs status answers instead of the two canned ones
}

func (f *fakeGod) lastRequest(t testing.TB) control.Request {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) == 0 {
		t.Fatal("god got no request")
	}
	return f.reqs[len(f.reqs)-1]
}

// setJobs makes status answer list from now on.
func (f *fakeGod) setJobs(list []control.JobStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = list
}

func (f *fakeGod) jobs() []control.JobStatus {
	f.mu.Lock()
	list := f.list
	f.mu.Unlock()
	if list != nil {
		return list
	}
	return []control.JobStatus{
		{
			Name: "web", Loader: "loaders/web", State: "run", Generation: 3, Since: f.since, Restarts: 1,
			Processes: []control.ProcessStatus{{Pid: 4242, Generation: 3, Instance: 0, Started: f.since, CPUSeconds: 70, RSSBytes: 6 << 20}, {Pid: 4243, Generation: 3, Instance: 1, Started: f.since, CPUSeconds: 2.5, RSSBytes: 6502 << 10}},
			LastExit:  "exit 1", Check: "ok", Sockets: []string{"http=tcp://127.0.0.1:8080"}, Status: "serving 12 req/s",
		},
		{Name: "db-backup", Loader: "loaders/db", State: "failed", Reason: "exec: no such file \x1b[31m", Since: f.since},
	}
}

func (f *fakeGod) Handle(ctx context.Context, peer control.Peer, req control.Request, emit func(control.Response) error) control.Response {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	switch req.Cmd {
	case control.CmdStatus:
		return control.Response{OK: true, Jobs: f.jobs()}
	case control.CmdVersion:
		return control.Response{OK: true, Version: "test-daemon"}
	case control.CmdLogs:
		emit(control.Response{Log: &control.LogLine{
			Time: time.Date(2024, 5, 6, 7, 8, 9, 10e6, time.Local), Job: "web", Generation: 3, Pid: 4242,
			Stream: "stderr", Level: "warn", Msg: "slow request", Attrs: map[string]string{"path": "/a b", "ms": "120"},
		}})
		if req.Follow {
			<-ctx.Done()
			return control.Response{Error: "client left"}
		}
		return control.Response{OK: true}
	}
	for _, j := range req.Jobs {
		if j == "bad" {
			return control.Response{Error: "job bad: no such job"}
		}
		emit(control.Response{Job: j, Message: req.Cmd + "ing"})
	}
	return control.Response{OK: true, Message: fmt.Sprintf("%s %d jobs", req.Cmd, len(req.Jobs))}
}

// startFakeGod serves a fakeGod on a fresh socket until the test ends.
func startFakeGod(t testing.TB) *fakeGod {
	t.Helper()
	dir, err := os.MkdirTemp("", "godcli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeGod{path: filepath.Join(dir, "god.sock"), since: time.Now().Add(-(2*time.Hour + 3*time.Minute + 20*time.Second))}
	ln, err := control.Listen(f.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &control.Server{Handler: f, Logger: slog.New(slog.DiscardHandler)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return f
}

// god runs the god binary with args and returns its output and exit code.
func god(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, godBin, args...)
	cmd.Env = append(os.Environ(), "GOD_SOCKET=")
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		code = exitErr.ExitCode()
	default:
		t.Fatalf("god %q: %v\nstderr: %s", args, err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

func TestStatusTable(t *testing.T) {
	f := startFakeGod(t)
	out, errOut, code := god(t, nil, "status", "--socket", f.path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 rows, got:\n%s", out)
	}
	wantRows := [][]string{
		{"JOB", "STATE", "PIDS", "GEN", "UPTIME", "CPU", "MEM", "RESTARTS", "LAST-EXIT", "CHECK", "SOCKETS", "STATUS"},
		{"web", "run", "4242,4243", "3", "2h3m", "1m12s", "12.3M", "1", "exit", "1", "ok", "http=tcp://127.0.0.1:8080", "serving", "12", "req/s"},
		{"db-backup", "failed", "-", "0", "-", "-", "-", "0", "-", "-", "-", "exec:", "no", "such", "file", `\x1b[31m`},
	}
	for i, want := range wantRows {
		if got := strings.Fields(lines[i]); !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: %q\nwant fields %q", i, lines[i], want)
		}
	}
	for i, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("line %d ends in spaces: %q", i, l)
		}
	}
	// Columns are aligned: STATE starts at the same offset on every line.
	col := strings.Index(lines[0], "STATE")
	for _, l := range lines[1:] {
		if l[col-2:col] != "  " || l[col] == ' ' {
			t.Errorf("STATE column not aligned at %d in %q", col, l)
		}
	}
	if req := f.lastRequest(t); req.Cmd != "status" || len(req.Jobs) != 0 {
		t.Errorf("request %+v", req)
	}
}

func TestStatusJSON(t *testing.T) {
	f := startFakeGod(t)
	// --socket before the command, and via GOD_SOCKET.
	for _, run := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--socket", f.path, "status", "--json", "web"}},
		{[]string{"GOD_SOCKET=" + f.path}, []string{"status", "web", "--json"}},
	} {
		out, errOut, code := god(t, run.env, run.args...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", run.args, code, errOut)
		}
		var got []control.JobStatus
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("output is not a JSON array of jobs: %v\n%s", err, out)
		}
		if !strings.Contains(out, "\n  {\n    \"name\": \"web\",") {
			t.Errorf("output not indented:\n%s", out)
		}
		want := f.jobs()
		if len(got) != len(want) || got[0].Name != "web" || !got[0].Since.Equal(want[0].Since) || got[0].Processes[1].Pid != 4243 {
			t.Errorf("got %+v", got)
		}
		if req := f.lastRequest(t); !reflect.DeepEqual(req.Jobs, []string{"web"}) {
			t.Errorf("request jobs %q, want [web]", req.Jobs)
		}
	}
}

func TestJobCommands(t *testing.T) {
	f := startFakeGod(t)
	progress := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} (web|db) (start|stop|restart|reload)ing$`)
	for _, cmd := range []string{"start", "stop", "restart", "reload"} {
		out, errOut, code := god(t, nil, cmd, "web", "--socket="+f.path, "db")
		if code != 0 {
			t.Fatalf("%s: exit %d, stderr %q", cmd, code, errOut)
		}
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if len(lines) != 3 || !progress.MatchString(lines[0]) || !progress.MatchString(lines[1]) ||
			!strings.HasSuffix(lines[0], "web "+cmd+"ing") || lines[2] != cmd+" 2 jobs" {
			t.Errorf("%s output:\n%s", cmd, out)
		}
		if req := f.lastRequest(t); req.Cmd != cmd || !reflect.DeepEqual(req.Jobs, []string{"web", "db"}) {
			t.Errorf("%s sent %+v", cmd, req)
		}
	}
	for _, cmd := range []string{"rescan", "shutdown", "upgrade"} {
		out, errOut, code := god(t, nil, "--socket", f.path, cmd)
		if code != 0 || out != cmd+" 0 jobs\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", cmd, code, out, errOut)
		}
	}
}

func TestExitCodes(t *testing.T) {
	f := startFakeGod(t)
	missing := filepath.Join(t.TempDir(), "none.sock")
	tests := []struct {
		name       string
		args       []string
		code       int
		stderrWant string
	}{
		{"failed request", []string{"stop", "web", "bad", "--socket", f.path}, 1, "god: job bad: no such job\n"},
		{"unknown command", []string{"frobnicate", "--socket", f.path}, 2, `god: unknown command "frobnicate"`},
		{"unknown flag", []string{"status", "--bogus", "--socket", f.path}, 2, "flag provided but not defined: -bogus"},
		{"missing job", []string{"start", "--socket", f.path}, 2, "god start: missing JOB"},
		{"bad job name", []string{"stop", "a/b", "--socket", f.path}, 2, `invalid job name "a/b"`},
		{"extra argument", []string{"rescan", "web", "--socket", f.path}, 2, `unexpected argument "web"`},
		{"bad -n", []string{"logs", "-n", "-1", "--socket", f.path}, 2, "-n -1 out of range"},
		{"unreachable", []string{"status", "--socket", missing}, 3, "god: cannot reach god at " + missing + ": connect: no such file or directory\n(is god running? --socket PATH or GOD_SOCKET point at another god)\n"},
		{"a typo", []string{"stats", "--socket", f.path}, 2, `god: unknown command "stats" (did you mean "status"?)`},
		{"unreachable start", []string{"start", "web", "--socket", missing}, 3, "god: cannot reach god at " + missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, code := god(t, nil, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.stderrWant) {
				t.Errorf("god %q: exit %d, stderr %q; want exit %d, stderr containing %q", tt.args, code, errOut, tt.code, tt.stderrWant)
			}
		})
	}
}

func TestLogs(t *testing.T) {
	f := startFakeGod(t)
	out, errOut, code := god(t, nil, "logs", "web", "-n", "5", "--socket", f.path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := `2024-05-06 07:08:09.010 web[4242] stderr: slow request level=warn ms=120 path="/a b"` + "\n"
	if out != want {
		t.Errorf("got  %q\nwant %q", out, want)
	}
	if req := f.lastRequest(t); req.Cmd != "logs" || req.Lines != 5 || req.Follow || !reflect.DeepEqual(req.Jobs, []string{"web"}) {
		t.Errorf("request %+v", req)
	}
}

// TestLogsNoHistory checks -n 0: tail's meaning (no past lines; with -f only new ones), sent as
// control.NoLines since a request's 0 means the default.
func TestLogsNoHistory(t *testing.T) {
	f := startFakeGod(t)
	out, errOut, code := god(t, nil, "logs", "-n", "0", "--socket", f.path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	if req := f.lastRequest(t); req.Lines != control.NoLines {
		t.Errorf("request %+v, want lines %d", req, control.NoLines)
	}
	_ = out
	if _, errOut, code := god(t, nil, "logs", "-n", "-2", "--socket", f.path); code != 2 || !strings.Contains(errOut, "out of range 0..") {
		t.Errorf("-n -2: exit %d, stderr %q", code, errOut)
	}
}

// TestFlagMessages checks the help and error texts a newcomer reads: flags spelt --name on
// every page, a bad daemon flag said once in one line, no trailing space, --socket not offered by
// the commands that talk to no god.
func TestFlagMessages(t *testing.T) {
	out, errOut, code := god(t, nil, "--bogus")
	if code != 2 || strings.Count(errOut, "bogus") != 1 || strings.Count(errOut, "\n") != 1 || out != "" {
		t.Errorf("god --bogus: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{{"run", "--help"}, {"status", "--help"}, {"logs", "--help"}} {
		out, _, code := god(t, nil, args...)
		if code != 0 || !strings.Contains(out, "\n  --") || regexp.MustCompile(`(?m)^\s+-[a-z][a-z]`).MatchString(out) {
			t.Errorf("god %q: exit %d, flags not as --name:\n%s", args, code, out)
		}
		if regexp.MustCompile(`(?m) +$`).MatchString(out) {
			t.Errorf("god %q: a line ends in spaces:\n%q", args, out)
		}
	}
	if out, _, _ := god(t, nil, "run", "--help"); strings.Contains(out, "stay-up") || !strings.Contains(out, "--dir") {
		t.Errorf("god run --help lists a hidden flag or misses --dir:\n%s", out)
	}
	for _, args := range [][]string{{"rescan", "--help"}, {"shutdown", "--help"}} {
		out, _, _ := god(t, nil, args...)
		if first, _, _ := strings.Cut(out, "\n"); strings.HasSuffix(first, " ") {
			t.Errorf("god %q: usage line %q ends in a space", args, first)
		}
	}
	for _, args := range [][]string{{"completion", "--help"}, {"help", "--help"}} {
		if out, _, code := god(t, nil, args...); code != 0 || strings.Contains(out, "socket") {
			t.Errorf("god %q: exit %d, lists --socket:\n%s", args, code, out)
		}
	}
	// Still accepted where a shared command line carries it.
	if _, _, code := god(t, nil, "completion", "bash", "--socket", "/nowhere"); code != 0 {
		t.Errorf("completion with --socket: exit %d", code)
	}
}

func TestLogsFollowInterrupt(t *testing.T) {
	f := startFakeGod(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, godBin, "logs", "-f", "--socket", f.path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The first line shows the stream is up; then Ctrl-C.
	buf := make([]byte, 4096)
	n, err := stdout.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "slow request") {
		t.Fatalf("first output %q, %v", buf[:n], err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("logs -f after SIGINT: %v (stderr %q), want exit 0", err, errOut.String())
	}
	if req := f.lastRequest(t); !req.Follow || req.Lines != control.DefaultLines {
		t.Errorf("request %+v", req)
	}
}

func TestVersion(t *testing.T) {
	f := startFakeGod(t)
	out, _, code := god(t, nil, "version", "--socket", f.path)
	if code != 0 || !regexp.MustCompile(`^client: god dev( [0-9a-f]+(-dirty)?)?\ndaemon: god test-daemon\n$`).MatchString(out) {
		t.Errorf("exit %d, output %q", code, out)
	}
	missing := filepath.Join(t.TempDir(), "none.sock")
	out, errOut, code := god(t, nil, "version", "--socket", missing)
	if code != 3 || !strings.HasPrefix(out, "client: god dev") || !strings.Contains(errOut, "cannot reach god at "+missing) {
		t.Errorf("unreachable: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}} {
		out, _, code := god(t, nil, args...)
		if code != 0 || !strings.Contains(out, "Commands:") || !strings.Contains(out, "--log-level") || !strings.Contains(out, "--log-dir DIR") || !strings.Contains(out, "  reload JOB...") {
			t.Errorf("god %q: exit %d, output:\n%s", args, code, out)
		}
	}
	for _, args := range [][]string{{"status", "--help"}, {"help", "status"}, {"status", "-h", "--socket", "/x"}} {
		out, _, code := god(t, nil, args...)
		if code != 0 || !strings.HasPrefix(out, "usage: god status [--json] [--state STATE] [JOB...]") || !strings.Contains(out, "--json") {
			t.Errorf("god %q: exit %d, output:\n%s", args, code, out)
		}
	}
	if _, _, code := god(t, nil, "help", "nope"); code != 2 {
		t.Errorf("help for an unknown command: exit %d, want 2", code)
	}
}

func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	f := startFakeGod(t)
	script, _, code := god(t, nil, "completion", "bash")
	if code != 0 || !strings.Contains(script, "complete -F _god god") {
		t.Fatalf("exit %d, script:\n%s", code, script)
	}
	if _, _, code := god(t, nil, "completion", "fish"); code != 2 {
		t.Errorf("completion fish: exit %d, want 2", code)
	}
	if zsh, _, code := god(t, nil, "completion", "zsh"); code != 0 || !strings.HasPrefix(zsh, "#compdef god") {
		t.Errorf("completion zsh: exit %d", code)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "god.bash")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	// Complete "god stop <TAB>", "god --socket S restart w<TAB>" and "god re<TAB>".
	probe := `source "$1"
COMP_WORDS=(god stop ""); COMP_CWORD=2; _god; echo "stop: ${COMPREPLY[*]}"
COMP_WORDS=(god --socket "$GOD_SOCK" restart w); COMP_CWORD=4; _god; echo "restart: ${COMPREPLY[*]}"
COMP_WORDS=(god re); COMP_CWORD=1; _god; echo "cmds: ${COMPREPLY[*]}"
`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--norc", "-c", probe, "probe", file)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(godBin)+":"+os.Getenv("PATH"), "GOD_SOCKET="+f.path, "GOD_SOCK="+f.path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	want := "stop: --socket web db-backup\nrestart: web\ncmds: restart reload rescan\n"
	if string(out) != want {
		t.Errorf("completions:\n%s\nwant:\n%s", out, want)
	}
}

func TestRoute(t *testing.T) {
	tests := []struct {
		args   []string
		daemon bool
		name   string
		rest   []string
	}{
		{nil, true, "", nil},
		{[]string{"run", "--dir", "d"}, true, "", []string{"--dir", "d"}},
		{[]string{"--dir", "d"}, true, "", []string{"--dir", "d"}},
		{[]string{"--socket", "s"}, true, "", []string{"--socket", "s"}},
		{[]string{"--socket", "s", "--dir", "d"}, true, "", []string{"--socket", "s", "--dir", "d"}},
		{[]string{"--socket", "s", "status", "--json"}, false, "status", []string{"--socket", "s", "--json"}},
		{[]string{"-socket=s", "stop", "web"}, false, "stop", []string{"-socket=s", "web"}},
		{[]string{"status"}, false, "status", []string{}},
		{[]string{"--help"}, false, "--help", []string{}},
	}
	for _, tt := range tests {
		daemon, name, rest := route(tt.args)
		if daemon != tt.daemon || name != tt.name || len(rest) != len(tt.rest) || (len(rest) > 0 && !reflect.DeepEqual(rest, tt.rest)) {
			t.Errorf("route(%q) = %v, %q, %q; want %v, %q, %q", tt.args, daemon, name, rest, tt.daemon, tt.name, tt.rest)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-time.Minute: "0s", 0: "0s", 3 * time.Second: "3s", 5*time.Minute + 2*time.Second: "5m2s",
		2*time.Hour + 3*time.Minute + 59*time.Second: "2h3m", 4*24*time.Hour + time.Hour + 5*time.Minute: "4d1h",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestClean(t *testing.T) {
	for in, want := range map[string]string{
		"plain text": "plain text", "a\nb": `a\nb`, "\x1b[2J": `\x1b[2J`, "tab\there": `tab\there`, "héllo": "héllo",
	} {
		if got := clean(in); got != want {
			t.Errorf("clean(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatusTableNextTry: a job backing off or cooling down says when god tries it again.
func TestStatusTableNextTry(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	printStatusTable(&b, []control.JobStatus{
		{Name: "flappy", State: "failed", Reason: "flapping", Next: now.Add(45 * time.Second)},
		{Name: "crashy", State: "backoff", Next: now.Add(400 * time.Millisecond)},
		{Name: "fine", State: "run"},
	}, now)
	out := b.String()
	for _, want := range []string{"flapping; next try in 45s", "next try in 400ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "next try") != 2 {
		t.Errorf("a running job says when it is tried next:\n%s", out)
	}
}

// TestCleanLines: a message of several lines prints as lines (a failed reload's last output), each
// cleaned of what a terminal must not receive.
func TestCleanLines(t *testing.T) {
	got := cleanLines("reload of web failed: exit 1\nlast output of the new generation:\n[42 stdout] \x1b[31mboom")
	want := "reload of web failed: exit 1\n  last output of the new generation:\n  [42 stdout] \\x1b[31mboom"
	if got != want {
		t.Fatalf("cleanLines = %q\nwant         %q", got, want)
	}
}

// TestMissingLoaderDir: a loader directory that does not exist is said at once, naming it and
// how to give another, before god claims to run.
func TestMissingLoaderDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nowhere")
	stdout, stderr, code := god(t, nil, "--dir", dir, "--socket", filepath.Join(t.TempDir(), "g.sock"), "--log", "json")
	if code != 1 || !strings.Contains(stderr, dir) || !strings.Contains(stderr, "--dir") || strings.Contains(stdout, "god running") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s\nwant 1, naming the directory and --dir, before god running", code, stdout, stderr)
	}
}

// TestLogDirFlags: the log file flags parse, default as documented, and refuse what makes no sense.
func TestLogDirFlags(t *testing.T) {
	f, err := parseDaemonFlags([]string{"run", "--log-dir", "/var/log/god"})
	if err != nil {
		t.Fatal(err)
	}
	if f.logDir != "/var/log/god" || f.logSize != 10<<20 || f.logKeep != 10 {
		t.Errorf("flags: dir %q size %d keep %d, want /var/log/god, 10 MiB, 10", f.logDir, f.logSize, f.logKeep)
	}
	if f, err := parseDaemonFlags([]string{"--log-size", "4096", "--log-keep", "0"}); err != nil || f.logSize != 4096 || f.logKeep != 0 || f.logDir != "" {
		t.Errorf("--log-size 4096 --log-keep 0: %+v, %v", f, err)
	}
	for _, bad := range [][]string{{"--log-size", "0"}, {"--log-keep", "-1"}} {
		if _, err := parseDaemonFlags(bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}

// TestStatusUserColumn: USER shows whom a job runs as, only when some job runs as another user
// than god's ("-" for the others).
func TestStatusUserColumn(t *testing.T) {
	now := time.Now()
	var b strings.Builder
	printStatusTable(&b, []control.JobStatus{{Name: "web", State: "run", User: "nobody"}, {Name: "db", State: "stopped"}}, now)
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 3 || strings.Fields(lines[0])[1] != "USER" || strings.Fields(lines[1])[1] != "nobody" || strings.Fields(lines[2])[1] != "-" {
		t.Errorf("table with a user:\n%s", b.String())
	}
	b.Reset()
	printStatusTable(&b, []control.JobStatus{{Name: "db", State: "stopped"}}, now)
	if strings.Contains(b.String(), "USER") {
		t.Errorf("USER shown though every job runs as god's user:\n%s", b.String())
	}
}

// TestPrintLogLineLevelOnce: a line at INFO, the level of every text line, is printed without a
// trailing level=INFO (which repeated on every line); another level is shown once.
func TestPrintLogLineLevelOnce(t *testing.T) {
	at := time.Date(2024, 5, 6, 7, 8, 9, 10e6, time.Local)
	var b strings.Builder
	printLogLine(&b, &control.LogLine{Time: at, Job: "web", Pid: 1, Stream: "stdout", Level: "INFO", Msg: "n=1"})
	printLogLine(&b, &control.LogLine{Time: at, Job: "web", Pid: 1, Stream: "stderr", Level: "ERROR", Msg: "boom"})
	want := "2024-05-06 07:08:09.010 web[1] stdout: n=1\n2024-05-06 07:08:09.010 web[1] stderr: boom level=ERROR\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// manyJobs is a fleet of n running jobs j00, j01, ... (in god's order, by name) with the states
// given for some of them.
func manyJobs(n int, states map[int]string) []control.JobStatus {
	jobs := make([]control.JobStatus, n)
	for i := range jobs {
		st := states[i]
		if st == "" {
			st = "run"
		}
		jobs[i] = control.JobStatus{Name: fmt.Sprintf("j%02d", i), State: st}
	}
	return jobs
}

// tableNames is the first field of each table row after the header line (and the summary line,
// when summary says there is one).
func tableNames(t testing.TB, out string, summary bool) (first string, names []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if summary {
		first, lines = lines[0], lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "JOB ") {
		t.Fatalf("no table header where expected:\n%s", out)
	}
	for _, l := range lines[1:] {
		names = append(names, strings.Fields(l)[0])
	}
	return first, names
}

// TestStatusManyJobs: more jobs than a screen (40 rows when stdout is not a terminal) get a
// summary line of counts by state first, and the jobs that are not running before the running
// ones; up to 40 the table is as it always was.
// TestStatusJSONAsBefore: status --json prints god's JSON indented instead of decoding and
// encoding it again; the output is the same, byte for byte, as that decode-and-encode gave,
// with odd strings (HTML characters, escapes, control and non-ASCII characters, U+2028),
// fractional CPU seconds, zero and non-zero times, no jobs, and with --state. The one difference
// is in bytes, not values: invalid UTF-8 in a job's text (a STATUS= message), which god's
// encoder writes as \ufffd, stays that escape rather than becoming the character U+FFFD.
func TestStatusJSONAsBefore(t *testing.T) {
	f := startFakeGod(t)
	odd := "a<b>&c \"q\" \\ \x1b[31m\t\n\u2028 é 😀 \ufffd"
	since := time.Date(2026, 12, 7, 23, 10, 21, 728141664, time.FixedZone("x", 3600))
	jobs := []control.JobStatus{
		{
			Name: "web", Loader: "/l/" + odd, State: "run", Reason: odd, Generation: 3, Since: since, Restarts: 2,
			Processes: []control.ProcessStatus{
				{Pid: 4242, Generation: 3, Started: since, State: "ready", Escaped: []int{7, 8}, CPUSeconds: 0.07, RSSBytes: 6 << 20},
				{Pid: 4243, Generation: 2, Instance: 1, Started: since.UTC(), CPUSeconds: 123456.78},
			},
			LastExit: "signal 9 (SIGKILL)", Check: "fail: " + odd, Sockets: []string{"http=tcp://127.0.0.1:8080", odd},
			Status: odd, Reload: "failed: " + odd, User: "nobody", Next: since.Add(time.Second), Connections: 4,
		},
		{Name: "db", Loader: "l", State: "failed"},
		{Name: "x", State: "backoff", Processes: []control.ProcessStatus{}, Sockets: []string{}},
	}
	f.setJobs(jobs)
	for _, tt := range []struct {
		args []string
		keep func(control.JobStatus) bool
	}{
		{nil, func(control.JobStatus) bool { return true }},
		{[]string{"--state", "failed,run"}, func(j control.JobStatus) bool { return j.State != "backoff" }},
		{[]string{"--state", "stopped"}, func(control.JobStatus) bool { return false }},
	} {
		out, errOut, code := god(t, nil, append([]string{"status", "--json", "--socket", f.path}, tt.args...)...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", tt.args, code, errOut)
		}
		// The former way: the wire's JSON decoded into JobStatus values, filtered, encoded indented.
		wire, _ := json.Marshal(jobs)
		var decoded, kept []control.JobStatus
		if err := json.Unmarshal(wire, &decoded); err != nil {
			t.Fatal(err)
		}
		for _, j := range decoded {
			if tt.keep(j) {
				kept = append(kept, j)
			}
		}
		if kept == nil {
			kept = []control.JobStatus{}
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		enc.Encode(kept)
		if out != want.String() {
			t.Errorf("%q: output\n%s\nwant\n%s", tt.args, out, want.String())
		}
	}
	f.setJobs([]control.JobStatus{{Name: "bad", State: "run", Status: "\xffbad\xc3"}})
	out, _, _ := god(t, nil, "status", "--json", "--socket", f.path)
	if want := `"status": "\ufffdbad\ufffd"`; !strings.Contains(out, want) {
		t.Errorf("invalid UTF-8: output\n%s\nwant it to hold %s", out, want)
	}
	f.setJobs([]control.JobStatus{})
	if out, _, code := god(t, nil, "status", "--json", "--socket", f.path); code != 0 || out != "[]\n" {
		t.Errorf("no jobs: exit %d, output %q, want []", code, out)
	}
}

func TestStatusManyJobs(t *testing.T) {
	f := startFakeGod(t)
	f.setJobs(manyJobs(45, map[int]string{5: "failed", 12: "backoff", 30: "backoff", 40: "stopped"}))
	out, errOut, code := god(t, nil, "status", "--socket", f.path)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	summary, names := tableNames(t, out, true)
	if want := "45 jobs: 41 run, 2 backoff, 1 stopped, 1 failed"; summary != want {
		t.Errorf("summary line %q, want %q", summary, want)
	}
	if len(names) != 45 {
		t.Fatalf("%d rows, want 45:\n%s", len(names), out)
	}
	if want := []string{"j05", "j12", "j30", "j40", "j00", "j01"}; !reflect.DeepEqual(names[:6], want) {
		t.Errorf("rows start %q, want %q (not running first, then by name)", names[:6], want)
	}
	if names[44] != "j44" {
		t.Errorf("last row %q, want j44", names[44])
	}

	// 40 jobs fit: no summary, god's order.
	f.setJobs(manyJobs(40, map[int]string{5: "failed"}))
	out, _, _ = god(t, nil, "status", "--socket", f.path)
	if _, names := tableNames(t, out, false); len(names) != 40 || names[0] != "j00" || names[5] != "j05" {
		t.Errorf("40 jobs: rows %q\n%s", names, out)
	}
}

// TestStatusManyJobsTerminal: on a terminal, "a screen" is its rows: 12 jobs on 10 rows get the
// summary, 45 jobs on 60 rows do not.
func TestStatusManyJobsTerminal(t *testing.T) {
	f := startFakeGod(t)
	for _, tt := range []struct {
		jobs, rows int
		summary    bool
	}{{12, 10, true}, {45, 60, false}} {
		f.setJobs(manyJobs(tt.jobs, map[int]string{7: "failed"}))
		out := godOnTerminal(t, tt.rows, "status", "--socket", f.path)
		first, names := tableNames(t, out, tt.summary)
		if tt.summary && first != fmt.Sprintf("%d jobs: %d run, 1 failed", tt.jobs, tt.jobs-1) {
			t.Errorf("%d jobs on %d rows: summary %q", tt.jobs, tt.rows, first)
		}
		wantFirst := "j00"
		if tt.summary {
			wantFirst = "j07"
		}
		if len(names) != tt.jobs || names[0] != wantFirst {
			t.Errorf("%d jobs on %d rows: rows %q, want %d starting with %s", tt.jobs, tt.rows, names, tt.jobs, wantFirst)
		}
	}
}

// godOnTerminal runs the god binary with its stdout on a pseudo-terminal of the given rows and
// returns what it printed there (line ends as \n).
func godOnTerminal(t testing.TB, rows int, args ...string) string {
	t.Helper()
	ptmx, pts := testutil.OpenPTY(t, rows)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, godBin, args...)
	cmd.Env = append(os.Environ(), "GOD_SOCKET=")
	var errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = pts, &errOut
	err := cmd.Start()
	pts.Close() // the child holds the only copy now: the reader sees EIO once it exits
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		out.ReadFrom(ptmx) // ends with EIO when the terminal has no more writers
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("god %q: %v\nstderr: %s", args, err, errOut.String())
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("the terminal's output did not end")
	}
	return strings.ReplaceAll(out.String(), "\r\n", "\n")
}

// TestStatusStateFilter: --state lists only the jobs in the given states, repeated or
// comma-separated, in the table and in --json; an unknown state is a usage error that names it
// and the valid states, before god is asked.
func TestStatusStateFilter(t *testing.T) {
	f := startFakeGod(t)
	f.setJobs(manyJobs(45, map[int]string{5: "failed", 12: "backoff", 30: "backoff", 40: "stopped"}))
	for _, args := range [][]string{
		{"status", "--state", "backoff,failed"},
		{"status", "--state", "failed", "--state=backoff"},
	} {
		out, errOut, code := god(t, nil, append(args, "--socket", f.path)...)
		if code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut)
		}
		if _, names := tableNames(t, out, false); !reflect.DeepEqual(names, []string{"j05", "j12", "j30"}) {
			t.Errorf("%q: rows %q, want j05 j12 j30:\n%s", args, names, out)
		}
	}
	out, _, code := god(t, nil, "status", "--json", "--state", "run", "--socket", f.path)
	var got []control.JobStatus
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("--json --state run: exit %d, %v\n%s", code, err, out)
	}
	if len(got) != 41 || slices.ContainsFunc(got, func(j control.JobStatus) bool { return j.State != "run" }) {
		t.Errorf("--json --state run: %d jobs, want the 41 running ones", len(got))
	}

	f.mu.Lock()
	before := len(f.reqs)
	f.mu.Unlock()
	_, errOut, code := god(t, nil, "status", "--state", "run,runing", "--socket", f.path)
	want := `god status: unknown state "runing" for --state (valid states: wait, listen, start, run, degrade, exit, backoff, stop, stopped, done, failed)`
	if code != exitUsage || !strings.Contains(errOut, want) {
		t.Errorf("bad state: exit %d, stderr %q\nwant exit 2 and %q", code, errOut, want)
	}
	f.mu.Lock()
	asked := len(f.reqs) != before
	f.mu.Unlock()
	if asked {
		t.Error("god was asked for a status with a bad --state")
	}
}

// TestDropStartupText: dropping the binary's read-only pages after start-up lowers the resident
// set, and the code that runs next faults back in (this test keeps running, and its next
// allocation, collection and formatting work).
func TestDropStartupText(t *testing.T) {
	before := residentFileKiB(t)
	dropStartupText()
	after := residentFileKiB(t)
	runtime.GC()
	if got := fmt.Sprintf("%d-%s", 42, strings.Repeat("x", 3)); got != "42-xxx" {
		t.Fatalf("after the drop: %q", got)
	}
	if after >= before {
		t.Fatalf("file-backed resident memory %d KiB before the drop, %d after", before, after)
	}
	t.Logf("file-backed resident memory: %d KiB before, %d after", before, after)
}

// residentFileKiB is this process's resident file-backed memory (Rss minus Anonymous).
func residentFileKiB(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		t.Skipf("no smaps_rollup: %v", err)
	}
	var rss, anon int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "Rss:" {
			rss, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "Anonymous:" {
			anon, _ = strconv.Atoi(f[1])
		}
	}
	return rss - anon
}

// TestWaitStartsSettled: the trim after start-up waits while processes are being started, and
// goes once their count stopped moving (or the bound passed, or never when god stops).
func TestWaitStartsSettled(t *testing.T) {
	var n atomic.Uint64
	stop := make(chan struct{})
	moving := make(chan struct{})
	go func() {
		defer close(moving)
		for i := 0; i < 60; i++ {
			n.Add(1)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	if !waitStartsSettled(context.Background(), n.Load, 100*time.Millisecond, time.Minute) {
		t.Fatal("not settled")
	}
	select {
	case <-moving:
	default:
		t.Fatalf("settled while the count still moved (at %d)", n.Load())
	}

	// Never settling: the bound lets the trim go anyway.
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				n.Add(1)
			}
		}
	}()
	defer close(stop)
	if !waitStartsSettled(context.Background(), n.Load, time.Hour, 200*time.Millisecond) {
		t.Fatal("the bound did not end the wait")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if waitStartsSettled(ctx, n.Load, time.Hour, time.Hour) {
		t.Fatal("settled after god stopped")
	}
}
