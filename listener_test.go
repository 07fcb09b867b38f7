package watchgod_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/emielm/watchgod"
	"github.com/emielm/watchgod/fdpass"
)

// listenerChildEnv turns the test binary into listenerChild (see TestMain).
const listenerChildEnv = "WATCHGOD_TEST_LISTENER_CHILD"

// listenerChild is the test binary run as a job: it takes its sockets the way a job does and
// prints, as JSON, what each call of the package gave it.
func listenerChild() int {
	if os.Getenv(listenerChildEnv) == "own" {
		// No god, no LISTEN_FDS: the socket comes from the binary's own definition.
		job := watchgod.Job("selfserve")
		job.Listen = []string{"web=tcp://127.0.0.1:0"}
	}
	rep := map[string]string{}
	errText := func(err error) string {
		if err == nil {
			return "ok"
		}
		return err.Error()
	}
	lns, err := watchgod.Listeners()
	rep["listeners"] = errText(err)
	for name, ln := range lns {
		rep["stream:"+name] = ln.Addr().String()
	}
	if pc, err := watchgod.PacketConn("dns"); err == nil {
		rep["packet:dns"] = pc.LocalAddr().String()
	} else {
		rep["packet:dns"] = err.Error()
	}
	_, err = watchgod.Listener("dns")
	rep["listener:dns"] = errText(err)
	_, err = watchgod.PacketConn("web")
	rep["packet:web"] = errText(err)
	_, err = watchgod.Listener("nope")
	rep["listener:nope"] = errText(err)
	if again, err := watchgod.Listener("web"); err == nil {
		rep["same"] = strconv.FormatBool(again == lns["web"])
	}
	rep["env"] = os.Getenv("LISTEN_FDS") + os.Getenv("LISTEN_PID") + os.Getenv("LISTEN_FDNAMES")
	if err := json.NewEncoder(os.Stdout).Encode(rep); err != nil {
		return 1
	}
	return 0
}

// runListenerChild runs listenerChild with files as fds 3.. (through the LISTEN_PID shim, as god
// starts a job) and the given environment, and returns its report.
func runListenerChild(t testing.TB, mode string, files []*os.File, env ...string) map[string]string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := fdpass.ShimArgv([]string{self})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = files
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "LISTEN_") && k != "GOD_SOCKET" && k != "GOD_JOB" && k != "NOTIFY_SOCKET" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// A race-enabled child would wait a second at exit (GORACE atexit_sleep_ms).
	cmd.Env = append(cmd.Env, append(env, listenerChildEnv+"="+mode, "GORACE=atexit_sleep_ms=0")...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	rep := map[string]string{}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child report %q: %v", out, err)
	}
	return rep
}

// TestListenersInherited: a job given a TCP, a UDP and a unix socket with LISTEN_FDS gets each by
// its name: Listeners the two stream sockets, PacketConn the datagram one; asking for a socket of
// the wrong kind, or a name it was not given, is an error that says so; the variables are unset.
func TestListenersInherited(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	path := filepath.Join(t.TempDir(), "admin.sock")
	unix, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close()
	var files []*os.File
	for _, c := range []interface{ File() (*os.File, error) }{tcp.(*net.TCPListener), udp.(*net.UDPConn), unix.(*net.UnixListener)} {
		f, err := c.File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
	}
	rep := runListenerChild(t, "inherited", files, "LISTEN_FDS=3", "LISTEN_FDNAMES=web:dns:admin")

	want := map[string]string{
		"listeners":    "ok",
		"stream:web":   tcp.Addr().String(),
		"stream:admin": path,
		"packet:dns":   udp.LocalAddr().String(),
		"same":         "true",
		"env":          "",
	}
	for k, v := range want {
		if rep[k] != v {
			t.Errorf("%s = %q, want %q", k, rep[k], v)
		}
	}
	if _, ok := rep["stream:dns"]; ok {
		t.Errorf("Listeners returned the datagram socket dns: %v", rep)
	}
	for k, frag := range map[string]string{
		"listener:dns":  "datagram socket: use PacketConn",
		"packet:web":    "stream socket: use Listener",
		"listener:nope": `no socket "nope" among those from inherited`,
	} {
		if !strings.Contains(rep[k], frag) {
			t.Errorf("%s = %q, want an error containing %q", k, rep[k], frag)
		}
	}
}

// TestListenerOwnDefinition: with no inherited sockets and no god, a binary opens the socket its
// own definition declares, so it runs alone on a laptop; a name it does not declare is an error
// that says where it looked.
func TestListenerOwnDefinition(t *testing.T) {
	rep := runListenerChild(t, "own", nil)
	addr := rep["stream:web"]
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("stream:web = %q, want a socket the binary opened on 127.0.0.1 (report %v)", addr, rep)
	}
	if rep["same"] != "true" {
		t.Errorf("a second Listener(\"web\") returned another listener: %v", rep)
	}
	if want := `no socket "nope" (no LISTEN_FDS`; !strings.Contains(rep["listener:nope"], want) {
		t.Errorf("listener:nope = %q, want it to contain %q", rep["listener:nope"], want)
	}
}
