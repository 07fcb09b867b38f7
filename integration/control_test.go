package integration

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// TestControlRefusesOtherUser: a client with another uid is refused, and god logs it. The socket
// is made reachable on purpose (mode 0666 in a 0755 directory) so that the server's own check is
// what refuses, not the file's mode.
func TestControlRefusesOtherUser(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("skipped: running a client as uid 65534 needs root")
	}
	g := newGod(t)
	g.socket = reachableSocket(t)
	g.start()
	if err := os.Chmod(g.socket, 0o666); err != nil {
		t.Fatal(err)
	}
	r := runCLI(t, &syscall.Credential{Uid: 65534, Gid: 65534}, "status", "--socket", g.socket)
	if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("god status as uid 65534: exit %d, stderr %q; want 1 and permission denied", r.code, r.stderr)
	}
	g.waitLog(5*time.Second, "the refusal logged", func(r record) bool {
		return strings.Contains(r.Msg, "permission denied") && r.int("uid") == 65534
	})
	g.mustCLI("status") // still serving its own user
}

// TestControlErrors: a malformed request gets an error reply and god keeps serving; an unknown job
// fails naming it; no god at the socket is exit 3.
func TestControlErrors(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "one", bashLoader{Jobs: map[string]bashJob{"known": {Exec: sleeper, Auto: autoTrue}}})
	g.start()
	g.waitState("known", "run", 10*time.Second)

	for _, garbage := range []string{"garbage\n", "{\"v\":1,\"cmd\":\"status\"\n", "[1,2,3]\n", "{\"v\":99,\"cmd\":\"status\"}\n"} {
		conn, err := net.Dial("unix", g.socket)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(garbage)); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if err != nil {
			t.Fatalf("request %q: no reply line: %v", garbage, err)
		}
		var res control.Response
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			t.Fatalf("request %q: reply %q is not a response: %v", garbage, line, err)
		}
		if res.OK || res.Error == "" || res.Type != control.TypeResult {
			t.Errorf("request %q: reply %+v, want a failed result with an error", garbage, res)
		}
	}
	if j, _ := g.job("known"); j.State != "run" {
		t.Errorf("after bad requests: %+v", j)
	}

	for _, cmd := range []string{"stop", "start", "restart", "status", "logs"} {
		r := g.cli(cmd, "nosuchjob")
		if r.code != 1 || !strings.Contains(r.stderr, "nosuchjob") {
			t.Errorf("god %s nosuchjob: exit %d, stderr %q; want 1 naming the job", cmd, r.code, r.stderr)
		}
	}

	r := runCLI(t, nil, "status", "--socket", filepath.Join(t.TempDir(), "nobody-here.sock"))
	if r.code != 3 {
		t.Errorf("god status without a god: exit %d (stderr %q), want 3", r.code, r.stderr)
	}
}

// reachableSocket is a control socket path in a directory other users can enter, so that god's
// own credential check (SO_PEERCRED) is what refuses them, not the file system.
func reachableSocket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "god-integration-sock-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "god.sock")
}

// TestTwoGodsShareSocketDir: two gods whose control sockets share a directory both run; each
// has a notify socket named after its control socket.
func TestTwoGodsShareSocketDir(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"a", "b"} {
		g := newGod(t)
		g.socket = filepath.Join(dir, name+".sock")
		writeLoader(t, g.dir, "loader", bashLoader{Jobs: map[string]bashJob{"job": {Exec: sleeper, Auto: autoTrue}}})
		g.start()
		g.waitState("job", "run", 10*time.Second)
		if _, err := os.Stat(filepath.Join(dir, name+"-notify.sock")); err != nil {
			t.Errorf("god %s: notify socket: %v", name, err)
		}
	}
}

// TestAllJobs: `all` stands for every job in a job list (as in supervisorctl and pm2), and
// `god is-active` answers "is JOB running" by exit code (as systemctl is-active).
func TestAllJobs(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "two", bashLoader{Jobs: map[string]bashJob{
		"one": {Exec: sleeper, Auto: autoTrue},
		"two": {Exec: sleeper, Auto: autoTrue},
	}})
	g.start()
	g.waitState("one", "run", 10*time.Second)
	g.waitState("two", "run", 10*time.Second)
	if r := g.cli("is-active", "one", "two"); r.code != 0 || r.stdout != "run\nrun\n" {
		g.fatalf("god is-active one two: exit %d %q, want 0 and run twice", r.code, r.stdout)
	}
	g.mustCLI("stop", "all")
	for _, j := range g.status() {
		if j.State != "stopped" {
			g.fatalf("after god stop all: %s is %s", j.Name, j.State)
		}
	}
	if r := g.cli("is-active", "one"); r.code != 4 || r.stdout != "stopped\n" {
		g.fatalf("god is-active one (stopped): exit %d %q, want 4 and stopped", r.code, r.stdout)
	}
	if r := g.cli("is-active", "nosuch"); r.code != 1 {
		g.fatalf("god is-active nosuch: exit %d, want 1", r.code)
	}
	if r := g.cli("status", "onr"); r.code != 1 || !strings.Contains(r.stderr, `unknown job onr (did you mean "one"?)`) {
		g.fatalf("god status onr: exit %d %q, want 1 suggesting one", r.code, r.stderr)
	}
	g.mustCLI("start", "all")
	g.waitState("one", "run", 10*time.Second)
	g.waitState("two", "run", 10*time.Second)
}

// TestStatusShowsUsage: god status gives each process's CPU time and resident memory, read from
// /proc (the job burns some CPU first, so its time is not zero), and the table shows them.
func TestStatusShowsUsage(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "u", bashLoader{Jobs: map[string]bashJob{
		"burner": {Exec: shJob(`i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo burnt; exec sleep 1000`), Auto: autoTrue},
	}})
	g.start()
	g.waitLog(60*time.Second, "the job's CPU burnt", func(r record) bool { return strings.Contains(r.Raw, "burnt") })
	j := g.waitState("burner", "run", 10*time.Second)
	// The shell exec'd sleep: same process, its CPU time kept.
	if len(j.Processes) != 1 || j.Processes[0].RSSBytes <= 0 || j.Processes[0].CPUSeconds <= 0 {
		g.fatalf("status %+v: want one process with its CPU time and RSS", j.Processes)
	}
	r := g.mustCLI("status", "burner")
	if !strings.Contains(r.stdout, "CPU") || !strings.Contains(r.stdout, "MEM") {
		g.fatalf("god status shows no CPU and MEM columns:\n%s", r.stdout)
	}
}
