package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/procfs"
	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/supervisor/control"
)

// controlJob is a job's status as `god status --json` prints it.
type controlJob = control.JobStatus

// record is one JSON line of god's log.
type record struct {
	Time  time.Time
	Level string
	Msg   string
	Attrs map[string]any // every key, time, level and msg included
	Raw   string
}

// str returns attribute key as a string ("" when absent); numbers are formatted.
func (r record) str(key string) string {
	switch v := r.Attrs[key].(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// int returns attribute key as an int (0 when absent or not a number).
func (r record) int(key string) int {
	if v, ok := r.Attrs[key].(float64); ok {
		return int(v)
	}
	return 0
}

// god is one daemon under test: its loader directory, its control socket, and everything it
// logged. Cleanup stops it with SIGTERM and checks that no process it ever ran is left.
type god struct {
	t       testing.TB
	dir     string // loader directory
	socket  string
	pidFile string   // loaders and jobs written by the tests append their pids here ($GOD_TEST_PIDS)
	env     []string // added to god's environment (god passes it on to loaders and jobs)
	bin     string   // god's binary when not the shared godBin (upgrade tests replace it)
	flags   []string // the flags start was given (a god that replaces this one gets them too)
	workDir string   // god's working directory, when not the test's
	// noJobLines: god's records of its jobs' output lines are not kept (the soak, which asserts
	// none of them: 30 minutes of its floods kept as records filled the test's memory).
	noJobLines bool
	cmd        *exec.Cmd
	stderr     bytes.Buffer

	mu      sync.Mutex
	recs    []record
	changed chan struct{} // closed (and replaced) when a record arrives
	pids    map[int]string
	starts  map[int]uint64 // pids' start times when recorded (0: unknown)
	exited  chan struct{}  // closed once god has exited and its log is read
	exitErr error
}

// newGod prepares a daemon with an empty loader directory; write loaders, then call start.
func newGod(t testing.TB) *god {
	t.Helper()
	base := t.TempDir()
	g := &god{
		t:       t,
		dir:     filepath.Join(base, "loaders"),
		socket:  filepath.Join(base, "run", "god.sock"),
		pidFile: filepath.Join(base, "pids"),
		changed: make(chan struct{}),
		pids:    map[int]string{},
		starts:  map[int]uint64{},
		exited:  make(chan struct{}),
	}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return g
}

// startGod is newGod and start in one, for tests whose loaders are written later.
func startGod(t testing.TB, flags ...string) *god {
	g := newGod(t)
	g.start(flags...)
	return g
}

// start runs `god --dir DIR --socket SOCK --log json FLAGS...` and waits until it serves.
func (g *god) start(flags ...string) {
	g.t.Helper()
	g.flags = flags
	args := append([]string{"--dir", g.dir, "--socket", g.socket, "--log", "json"}, flags...)
	bin := godBin
	if g.bin != "" {
		bin = g.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = g.workDir
	cmd.Env = append(append(os.Environ(), "GOD_TEST_PIDS="+g.pidFile, noRaceExitSleep), g.env...)
	g.launch(cmd)
	g.addPid(g.cmd.Process.Pid, "god")
	g.t.Cleanup(g.cleanup)
	if quiet(flags) {
		// "god running" is not logged at warn or error: the control socket answers instead.
		testutil.Eventually(g.t, 10*time.Second, "god serving", func() bool { return g.cli("version").code == 0 })
		return
	}
	g.waitLog(10*time.Second, "god serving", func(r record) bool { return r.Msg == "god running" })
}

// quiet reports whether god will not log "god running" as a JSON record: flags set its
// --log-level above info (a test that keeps a flood of job lines out of god's log), or a --log
// format other than json (the journal test).
func quiet(flags []string) bool {
	for i, f := range flags {
		if f == "--log" && i+1 < len(flags) && flags[i+1] != "json" {
			return true
		}
		v, ok := strings.CutPrefix(f, "--log-level=")
		if !ok && f == "--log-level" && i+1 < len(flags) {
			v, ok = flags[i+1], true
		}
		if ok && (v == "warn" || v == "error") {
			return true
		}
	}
	return false
}

// readLog collects god's log lines until its stdout closes, then waits for the process.
func (g *god) readLog(out interface{ Read([]byte) (int, error) }) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		r := record{Raw: line, Attrs: map[string]any{}}
		if err := json.Unmarshal([]byte(line), &r.Attrs); err != nil {
			r.Msg = line // not JSON: keep it for the failure dump
		} else {
			r.Msg = r.str("msg")
			r.Level = r.str("level")
			r.Time, _ = time.Parse(time.RFC3339Nano, r.str("time"))
		}
		g.mu.Lock()
		if !g.noJobLines || r.Attrs["stream"] == nil || r.str("job") == "" {
			g.recs = append(g.recs, r)
		}
		if pid := r.int("pid"); pid > 0 && (r.str("job") != "" || r.str("loader") != "") {
			g.pids[pid] = "log: " + r.Msg
		}
		close(g.changed)
		g.changed = make(chan struct{})
		g.mu.Unlock()
	}
	err := g.cmd.Wait()
	g.mu.Lock()
	g.exitErr = err
	g.mu.Unlock()
	close(g.exited)
}

// addPid records a process the test started (or god did) so that cleanup checks it is gone.
// Its start time is recorded with it: pids wrap (pid_max may be 32768), and cleanup must never
// kill a stranger that has the pid now.
func (g *god) addPid(pid int, what string) {
	g.mu.Lock()
	_, known := g.pids[pid]
	g.mu.Unlock()
	if known {
		return // a status poll of thousands of jobs reads no /proc file for what it saw before
	}
	start, _ := procfs.StartTime(pid)
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.pids[pid]; !ok {
		g.pids[pid] = what
		g.starts[pid] = start
	}
}

// ours says whether the process that has pid now is the one this test recorded, or one of this
// god's tree (its environment names this god's GOD_TEST_PIDS file); any other process with that
// pid is a stranger that the pid was reused for, which cleanup leaves alone.
func (g *god) ours(pid int) bool {
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil &&
		bytes.Contains(append([]byte{0}, env...), []byte("\x00GOD_TEST_PIDS="+g.pidFile+"\x00")) {
		return true
	}
	g.mu.Lock()
	want, ok := g.starts[pid]
	g.mu.Unlock()
	start, err := procfs.StartTime(pid)
	return ok && want != 0 && err == nil && start == want
}

// mark is the number of records so far: waitLogFrom(mark, ...) sees only what comes after.
func (g *god) mark() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.recs)
}

// logs returns the records from index from on that match pred.
func (g *god) logs(from int, pred func(record) bool) []record {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []record
	for _, r := range g.recs[min(from, len(g.recs)):] {
		if pred(r) {
			out = append(out, r)
		}
	}
	return out
}

// waitLog waits for a record matching pred, logged at any time.
func (g *god) waitLog(timeout time.Duration, what string, pred func(record) bool) record {
	g.t.Helper()
	return g.waitLogFrom(0, timeout, what, pred)
}

// launch starts cmd, god or what runs god, as g's god: its stderr is kept, and its stdout is read
// as god's log.
func (g *god) launch(cmd *exec.Cmd) {
	g.t.Helper()
	g.cmd = cmd
	cmd.Stderr = &g.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		g.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	go g.readLog(out)
}

// waitLogFrom waits for a record matching pred among those from index from on, and fails the
// test (with the log) when none comes within timeout.
func (g *god) waitLogFrom(from int, timeout time.Duration, what string, pred func(record) bool) record {
	g.t.Helper()
	timeout = testutil.Slack(timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		g.mu.Lock()
		for _, r := range g.recs[min(from, len(g.recs)):] {
			if pred(r) {
				g.mu.Unlock()
				return r
			}
		}
		from = len(g.recs)
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-g.exited:
			// Look once more at what came before the exit.
			if rs := g.logs(from, pred); len(rs) > 0 {
				return rs[0]
			}
			g.fatalf("god exited while waiting for %s (%v)", what, g.exitErr)
		case <-deadline.C:
			g.fatalf("no log record for %s within %s", what, timeout)
		}
	}
}

// upgrade runs god upgrade and waits until the new image says it took over.
func (g *god) upgrade() {
	g.t.Helper()
	mark := g.mark()
	g.mustCLI("upgrade")
	g.waitLogFrom(mark, 15*time.Second, "the upgraded image", func(r record) bool { return strings.HasPrefix(r.Msg, "upgraded") })
}

// fatalf fails the test with god's recent log, which is what explains most failures.
func (g *god) fatalf(format string, args ...any) {
	g.t.Helper()
	g.t.Fatalf(format+"\n%s", append(args, g.dump())...)
}

// dump is the last records and god's stderr, for a failure message.
func (g *god) dump() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	b.WriteString("--- god log (last 80 lines):\n")
	for _, r := range g.recs[max(0, len(g.recs)-80):] {
		b.WriteString(r.Raw + "\n")
	}
	if s := g.stderrString(); s != "" {
		b.WriteString("--- god stderr:\n" + s)
	}
	return b.String()
}

// stderrString reads god's stderr; the buffer is only safe to read once god has exited.
func (g *god) stderrString() string {
	select {
	case <-g.exited:
		return g.stderr.String()
	default:
		return ""
	}
}

// noRaceExitSleep stops a race-enabled god from sleeping 1 s before it exits (the race
// detector's default), which would make every client command take a second.
const noRaceExitSleep = "GORACE=atexit_sleep_ms=0"

// cliResult is the outcome of one god client command.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs `god ARGS... --socket SOCK` (bounded at 30 s).
func (g *god) cli(args ...string) cliResult {
	g.t.Helper()
	return runCLI(g.t, nil, append(args, "--socket", g.socket)...)
}

// runCLI runs god's client with args; cred, when set, runs it as another user.
func runCLI(t testing.TB, cred *syscall.Credential, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(godBin, args...)
	cmd.Env = append(os.Environ(), noRaceExitSleep)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("god %s: %v", strings.Join(args, " "), err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("god %s: no answer within 30 s", strings.Join(args, " "))
	}
	if os.Getenv("IT_DEBUG") != "" {
		t.Logf("%s god %s", time.Now().Format("15:04:05.000"), strings.Join(args, " "))
	}
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("god %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// mustCLI runs a client command that must exit 0.
func (g *god) mustCLI(args ...string) cliResult {
	g.t.Helper()
	r := g.cli(args...)
	if r.code != 0 {
		g.fatalf("god %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// status returns `god status --json`, and remembers every pid it shows for the orphan check.
func (g *god) status() []control.JobStatus {
	g.t.Helper()
	r := g.mustCLI("status", "--json")
	var jobs []control.JobStatus
	if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil {
		g.fatalf("god status --json: %v\n%s", err, r.stdout)
	}
	for _, j := range jobs {
		for _, p := range j.Processes {
			g.addPid(p.Pid, "status: job "+j.Name)
		}
	}
	return jobs
}

// job returns one job's status; ok is false when god does not know it.
func (g *god) job(name string) (control.JobStatus, bool) {
	g.t.Helper()
	for _, j := range g.status() {
		if j.Name == name {
			return j, true
		}
	}
	return control.JobStatus{}, false
}

// waitJob polls the status until cond holds for job name, and returns that status.
func (g *god) waitJob(name string, timeout time.Duration, what string, cond func(control.JobStatus) bool) control.JobStatus {
	g.t.Helper()
	var last control.JobStatus
	var known bool
	timeout = testutil.Slack(timeout)
	deadline := time.Now().Add(timeout)
	for tick := 0; ; tick++ {
		last, known = g.job(name)
		if known && cond(last) {
			return last
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(15 * time.Millisecond) // polling from the outside, bounded by the deadline
	}
	g.fatalf("job %s: not %s within %s (known %v, last status %+v)", name, what, timeout, known, last)
	return last
}

// waitState waits until job name is in state.
func (g *god) waitState(name, state string, timeout time.Duration) control.JobStatus {
	g.t.Helper()
	return g.waitJob(name, timeout, state, func(j control.JobStatus) bool { return j.State == state })
}

// waitGone waits until god no longer knows job name.
func (g *god) waitGone(name string, timeout time.Duration) {
	g.t.Helper()
	eventually(g.t, timeout, "job "+name+" forgotten", func() bool {
		_, ok := g.job(name)
		return !ok
	})
}

// pidOf is the single pid of a running job.
func pidOf(t testing.TB, j control.JobStatus) int {
	t.Helper()
	if len(j.Processes) != 1 {
		t.Fatalf("job %s: want one process, have %+v", j.Name, j.Processes)
	}
	return j.Processes[0].Pid
}

// eventually polls cond until it holds, failing the test after timeout.
var eventually = testutil.Eventually

// signal sends sig to god.
func (g *god) signal(sig syscall.Signal) {
	g.t.Helper()
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatalf("signal god: %v", err)
	}
}

// wait waits for god to exit and returns its exit code.
func (g *god) wait(timeout time.Duration) int {
	g.t.Helper()
	timeout = testutil.Slack(timeout)
	select {
	case <-g.exited:
	case <-time.After(timeout):
		g.fatalf("god did not exit within %s", timeout)
	}
	var ee *exec.ExitError
	if errors.As(g.exitErr, &ee) {
		return ee.ExitCode()
	}
	if g.exitErr != nil {
		g.t.Fatalf("god: %v", g.exitErr)
	}
	return 0
}

// cleanup stops god (SIGTERM, then SIGKILL after 20 s) and checks that every process it ran,
// and every process the test's loaders and jobs recorded, is gone.
func (g *god) cleanup() {
	t := g.t
	select {
	case <-g.exited:
	default:
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.exited:
		case <-time.After(20 * time.Second):
			// SIGQUIT makes Go print every goroutine's stack to stderr: what god was stuck on.
			_ = g.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-g.exited:
			case <-time.After(5 * time.Second):
				_ = g.cmd.Process.Kill()
				<-g.exited
			}
			t.Errorf("god did not exit within 20 s of SIGTERM; sent SIGQUIT\n%s", g.dump())
		}
	}
	if strings.Contains(g.stderr.String(), "DATA RACE") {
		t.Errorf("god reported a data race:\n%s", g.stderr.String())
	}
	// A pid noted in the file may have been reused since (pid_max may be 32768): its start time
	// now says nothing, so only its environment can make it this god's (ours).
	g.mu.Lock()
	for pid, what := range g.filePids() {
		if _, ok := g.pids[pid]; !ok {
			g.pids[pid] = what
			g.starts[pid] = 0
		}
	}
	g.mu.Unlock()
	g.mu.Lock()
	pids := maps.Clone(g.pids)
	g.mu.Unlock()
	for pid, what := range pids {
		if alive(pid) && g.ours(pid) {
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("pid %d (%s: %q, parent %d) still runs after god exited; killing it", pid, what,
				strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " "), parentPid(pid))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// filePids reads $GOD_TEST_PIDS, where the test's loaders and job commands note their pids.
func (g *god) filePids() map[int]string {
	b, err := os.ReadFile(g.pidFile)
	if err != nil {
		return nil
	}
	out := map[int]string{}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			out[pid] = "noted in " + filepath.Base(g.pidFile)
		}
	}
	return out
}

// alive reports whether pid runs: it exists and is not a zombie (a zombie has ended; in this
// sandbox PID 1 may never reap what it inherits).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	return procfs.State(pid) != 'Z' && procfs.State(pid) != 0
}

// procPgid is the process group of pid from /proc/PID/stat, or 0 when pid is gone.
func procPgid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	var state byte
	var ppid, pgid int
	if _, err := fmt.Sscanf(string(b[i+1:]), " %c %d %d", &state, &ppid, &pgid); err != nil {
		return 0
	}
	return pgid
}

// envOf reads a process's environment from /proc.
func envOf(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// TestRelativeSocketReachesJobsAbsolute: god started with a relative --socket hands its jobs
// absolute paths (GOD_SOCKET, NOTIFY_SOCKET): a job with another working directory could not
// reach a relative one, and a notify-ready job never became ready.
func TestRelativeSocketReachesJobsAbsolute(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	g.workDir = filepath.Dir(filepath.Dir(g.socket))
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"elsewhere": sockJob([]string{sockjobBin, "serve"}, nil, []string{"notify"}, map[string][]string{"dir": {"/"}}),
	}})
	rel, err := filepath.Rel(g.workDir, g.socket)
	if err != nil {
		t.Fatal(err)
	}
	g.start("--socket", rel)
	pid := pidOf(t, g.waitState("elsewhere", "run", 15*time.Second))
	for _, kv := range envOf(pid) {
		for _, k := range []string{"GOD_SOCKET=", "NOTIFY_SOCKET="} {
			if v, ok := strings.CutPrefix(kv, k); ok && !filepath.IsAbs(v) {
				t.Errorf("job got %s%s: not absolute", k, v)
			}
		}
	}
}
