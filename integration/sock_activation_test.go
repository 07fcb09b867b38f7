package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// activationSockets are three sockets of every kind, declared in this order: they must reach the
// job as fds 3, 4 and 5 with these names.
func activationSockets(t testing.TB) (tcp, unixPath, udp string, listen []string) {
	tcp, unixPath, udp = freePort(t), filepath.Join(t.TempDir(), "admin.sock"), freeUDP(t)
	return tcp, unixPath, udp, []string{"web=tcp://" + tcp, "admin=unix://" + unixPath, "dns=udp://" + udp}
}

// TestGoSystemdActivation: a Go job using go-systemd's activation package (not watchgod's) gets
// god's sockets with their names, as fds 3.. in declared order, with LISTEN_PID its own pid.
func TestGoSystemdActivation(t *testing.T) {
	t.Parallel()
	tcp, unixPath, _, listen := activationSockets(t)
	g := newGod(t)
	writeLoader(t, g.dir, "gosd", bashLoader{Jobs: map[string]bashJob{
		"gosd": sockJob([]string{sockjobBin, "systemd"}, listen, nil, nil),
	}})
	g.start()
	line := g.jobLine(0, "gosd", "activation ", 10*time.Second)
	var rep struct {
		Pid       int                 `json:"pid"`
		ListenPid string              `json:"listen_pid"`
		Fds       map[string][]int    `json:"fds"`
		Listeners map[string][]string `json:"listeners"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "activation ")), &rep); err != nil {
		t.Fatalf("%q: %v", line, err)
	}
	pid := pidOf(t, g.waitState("gosd", "run", 5*time.Second))
	if rep.Pid != pid || rep.ListenPid != strconv.Itoa(pid) {
		t.Errorf("job pid %d saw pid %d and LISTEN_PID %q; want the pid god started (the shim execs in place)", pid, rep.Pid, rep.ListenPid)
	}
	want := map[string][]int{"web": {3}, "admin": {4}, "dns": {5}}
	if fmt.Sprint(rep.Fds) != fmt.Sprint(want) {
		t.Errorf("activation.Files: %v, want %v", rep.Fds, want)
	}
	// ListenersWithNames has a listener for each stream socket; go-systemd leaves datagram sockets out.
	wantLn := map[string][]string{"web": {tcp}, "admin": {unixPath}}
	if fmt.Sprint(rep.Listeners) != fmt.Sprint(wantLn) {
		t.Errorf("activation.ListenersWithNames: %v, want %v", rep.Listeners, wantLn)
	}
}

// TestLibsystemdActivation: a C job using libsystemd's sd_listen_fds_with_names gets the same.
// It needs gcc and libsystemd-dev (.ci/run installs them).
func TestLibsystemdActivation(t *testing.T) {
	t.Parallel()
	cbin := buildSdListen(t)
	_, _, _, listen := activationSockets(t)
	g := newGod(t)
	writeLoader(t, g.dir, "csd", bashLoader{Jobs: map[string]bashJob{
		"csd": sockJob([]string{cbin}, listen, nil, nil),
	}})
	g.start()
	head := g.jobLine(0, "csd", "sd_listen_fds ", 10*time.Second)
	pid := pidOf(t, g.waitState("csd", "run", 5*time.Second))
	if want := fmt.Sprintf("sd_listen_fds n=3 pid=%d listen_pid=%d", pid, pid); head != want {
		t.Errorf("C job printed %q, want %q (n > 0 proves LISTEN_PID matched)", head, want)
	}
	for _, want := range []string{
		"fd=3 name=web socket=1 listening=1 family=inet",
		"fd=4 name=admin socket=1 listening=1 family=unix",
		"fd=5 name=dns socket=1 listening=0 family=inet",
	} {
		if got := g.jobLine(0, "csd", strings.Fields(want)[0]+" ", 5*time.Second); got != want {
			t.Errorf("C job printed %q, want %q", got, want)
		}
	}
}

// buildSdListen compiles testdata/sdlisten.c against libsystemd, or skips the test.
func buildSdListen(t testing.TB) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: cannot build the libsystemd test program")
	}
	if _, err := os.Stat("/usr/include/systemd/sd-daemon.h"); err != nil {
		t.Skip("libsystemd-dev not installed (no /usr/include/systemd/sd-daemon.h): apt-get install libsystemd-dev")
	}
	out := filepath.Join(t.TempDir(), "sdlisten")
	cmd := exec.Command(gcc, "-Wall", "-Werror", "-o", out, filepath.Join("testdata", "sdlisten.c"), "-lsystemd")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc sdlisten.c: %v\n%s", err, b)
	}
	return out
}

// TestGodUnderSocketActivation runs god itself under systemd-socket-activate, which opens the
// socket, waits for the first connection and then starts god with it as fd 3 named "http". The
// job that declares http=tcp://ADDR serves on that very socket, and the connection that started
// god, made before any job ran, is answered by the job.
func TestGodUnderSocketActivation(t *testing.T) {
	t.Parallel()
	activate, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate not installed: apt-get install systemd")
	}
	addr := freePort(t)
	g := newGod(t)
	writeLoader(t, g.dir, "web", bashLoader{Jobs: map[string]bashJob{
		"web": sockJob([]string{sockjobBin, "serve", "-names", "http"}, []string{"http=tcp://" + addr}, []string{"notify"}, nil),
	}})
	g.startWrapped([]string{activate, "-l", addr, "--fdname=http"})

	// The socket listens before god runs: wait for it, then connect. This first connection makes
	// systemd-socket-activate exec god in its place (same pid), and waits in the socket's queue
	// until the job serves.
	var before map[uint64]bool
	eventually(t, 10*time.Second, "systemd-socket-activate listening", func() bool {
		before = socketInodes(t, g.cmd.Process.Pid)
		return len(before) > 0
	})
	answer := make(chan string, 1)
	go func() {
		r, err := ask("tcp", addr, 20*time.Second)
		if err != nil {
			r = "error: " + err.Error()
		}
		answer <- r
	}()
	g.waitLog(10*time.Second, "god serving", func(r record) bool { return r.Msg == "god running" })

	g.waitLog(10*time.Second, "the inherited socket taken", func(r record) bool {
		return r.str("job") == "web" && r.Msg == "using socket from god's parent" && r.str("socket") == "http=tcp://"+addr
	})
	pid := pidOf(t, g.waitState("web", "run", 10*time.Second))
	if got := <-answer; answeredBy(got) != pid {
		g.fatalf("the connection made before god started: answer %q, want one from job pid %d", got, pid)
	}
	// The job's listener is the socket systemd-socket-activate opened, not a new one.
	ino, _ := strconv.ParseUint(field(g.jobLine(0, "web", "socket http ", time.Second), "ino"), 10, 64)
	if !before[ino] {
		t.Errorf("job's socket inode %d is not the one systemd-socket-activate opened (%v)", ino, before)
	}
}

// startWrapped is start for a god run by wrapper (wrapper... god --dir ...); it does not wait for
// god to serve, since a wrapper may start god late.
func (g *god) startWrapped(wrapper []string, flags ...string) {
	g.t.Helper()
	args := append(append(wrapper[1:len(wrapper):len(wrapper)], godBin, "--dir", g.dir, "--socket", g.socket, "--log", "json"), flags...)
	cmd := exec.Command(wrapper[0], args...)
	cmd.Env = append(append(plainEnv(), "GOD_TEST_PIDS="+g.pidFile, noRaceExitSleep), g.env...)
	g.launch(cmd)
	g.addPid(g.cmd.Process.Pid, "god's wrapper "+wrapper[0])
	g.t.Cleanup(g.cleanup)
}
