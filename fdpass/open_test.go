package fdpass

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
)

// checkKept checks the properties of a socket god keeps: close-on-exec,
// blocking, and matching its spec.
func checkKept(t testing.TB, s Spec, f *os.File) {
	t.Helper()
	cloexec, nonblock := fdState(t, f)
	if !cloexec {
		t.Errorf("%s: not close-on-exec", s)
	}
	if nonblock {
		t.Errorf("%s: non-blocking, want blocking", s)
	}
	if !Matches(f, s) {
		t.Errorf("%s: Matches(own spec) = false", s)
	}
	if f.Name() != s.String() {
		t.Errorf("file name %q, want %q", f.Name(), s.String())
	}
	// Fd must not change the mode: the trap that hangs jobs' accept loops.
	setNonblock(t, f, true)
	f.Fd()
	if _, nb := fdState(t, f); !nb {
		t.Errorf("%s: Fd() put the description in blocking mode", s)
	}
	setNonblock(t, f, false)
}

// setNonblock sets O_NONBLOCK on f's description, as a job's Go runtime does.
func setNonblock(t testing.TB, f *os.File, on bool) {
	t.Helper()
	fd := rawFd(t, f)
	if err := unix.SetNonblock(fd, on); err != nil {
		t.Fatal(err)
	}
	keepAlive(f)
}

// acceptOne accepts one connection on the blocking fd of f, waiting for it
// with poll so that the test cannot hang.
func acceptOne(t testing.TB, f *os.File) {
	t.Helper()
	fd := rawFd(t, f)
	defer keepAlive(f)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 10_000)
	if err != nil || n != 1 {
		t.Fatalf("poll %s: n=%d err=%v", f.Name(), n, err)
	}
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("accept on %s: %v", f.Name(), err)
	}
	unix.Close(nfd)
}

func TestOpenTCP(t *testing.T) {
	s, f := mustOpen(t, "web=tcp://127.0.0.1:0")
	checkKept(t, s, f)
	port := sockPort(t, f)
	if v, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v != 1 {
		t.Errorf("SO_REUSEADDR = %d, %v; want 1", v, err)
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acceptOne(t, f)
}

func TestOpenTCP6(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	s, f := mustOpen(t, "web6=tcp6://[::1]:0")
	checkKept(t, s, f)
	c, err := net.DialTimeout("tcp6", "[::1]:"+itoa(sockPort(t, f)), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acceptOne(t, f)
}

func TestOpenUDP(t *testing.T) {
	s, f := mustOpen(t, "dns=udp://127.0.0.1:0")
	checkKept(t, s, f)
	c, err := net.Dial("udp", "127.0.0.1:"+itoa(sockPort(t, f)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := recvOne(t, f); got != "ping" {
		t.Errorf("got %q, want ping", got)
	}
}

// recvOne reads one datagram from the blocking fd of f, with a deadline.
func recvOne(t testing.TB, f *os.File) string {
	t.Helper()
	fd := rawFd(t, f)
	defer keepAlive(f)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 10_000); err != nil || n != 1 {
		t.Fatalf("poll %s: n=%d err=%v", f.Name(), n, err)
	}
	b := make([]byte, 64)
	n, _, err := unix.Recvfrom(fd, b, 0)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[:n])
}

func TestOpenPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := ParseSpec("web=tcp://" + ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(s)
	if err == nil {
		f.Close()
		t.Fatal("Open of a port in use: no error")
	}
	if !strings.Contains(err.Error(), "socket "+s.String()) || !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %q: want the spec named and EADDRINUSE", err)
	}
}

func TestOpenUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	s, f := mustOpen(t, "api=unix://"+path+"?mode=0640")
	checkKept(t, s, f)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o640 {
		t.Errorf("socket file mode %v, want socket 0640", fi.Mode())
	}
	c, err := net.DialTimeout("unix", path, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	acceptOne(t, f)

	// A second Open finds the live socket.
	if f2, err := Open(s); err == nil {
		f2.Close()
		t.Error("Open over a live socket: no error")
	} else if !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), s.String()) {
		t.Errorf("Open over a live socket: %q, want \"in use\" and the spec", err)
	}
	// Closing god's copy does not unlink the path.
	f.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("socket file gone after close: %v", err)
	}
}

func TestOpenUnixStale(t *testing.T) {
	for _, network := range []string{"unix", "unixgram"} {
		t.Run(network, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "s")
			makeStale(t, network, path)
			s, f := mustOpen(t, "s="+network+"://"+path)
			checkKept(t, s, f)
		})
	}
}

// makeStale leaves a socket file at path that nobody serves.
func makeStale(t testing.TB, network, path string) {
	t.Helper()
	typ := unix.SOCK_STREAM
	if network == "unixgram" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenUnixgramLive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	s, f := mustOpen(t, "log=unixgram://"+path)
	checkKept(t, s, f)
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hi"))
	c.Close()
	if got := recvOne(t, f); got != "hi" {
		t.Errorf("got %q", got)
	}
	// Live, and of the other type: both refused.
	for _, network := range []string{"unixgram", "unix"} {
		s2, _ := ParseSpec("x=" + network + "://" + path)
		if f2, err := Open(s2); err == nil {
			f2.Close()
			t.Errorf("%s over a live unixgram socket: no error", network)
		} else if !strings.Contains(err.Error(), "in use") {
			t.Errorf("%s over a live unixgram socket: %q", network, err)
		}
	}
}

func TestOpenUnixNotSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, _ := ParseSpec("x=unix://" + path)
	if f, err := Open(s); err == nil {
		f.Close()
		t.Fatal("Open over a regular file: no error")
	} else if !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("error %q, want \"not a socket\"", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("the regular file was touched")
	}
	// Missing parent directory: an error, nothing created.
	s, _ = ParseSpec("x=unix://" + filepath.Join(path+".d", "s"))
	if f, err := Open(s); err == nil {
		f.Close()
		t.Error("Open in a missing directory: no error")
	}
}

func TestOpenUnixOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owner and group are applied only as root")
	}
	path := filepath.Join(t.TempDir(), "o.sock")
	mustOpen(t, "o=unix://"+path+"?owner=65534&group=65533&mode=0600")
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 65534 || st.Gid != 65533 || st.Mode&0o777 != 0o600 {
		t.Errorf("uid %d gid %d mode %o; want 65534 65533 600", st.Uid, st.Gid, st.Mode&0o777)
	}
	s, _ := ParseSpec("o=unix://" + path + "2?owner=no-such-user-xyz")
	if f, err := Open(s); err == nil {
		f.Close()
		t.Error("unknown owner: no error")
	} else if _, serr := os.Lstat(path + "2"); serr == nil {
		t.Errorf("unknown owner (%v): socket file left behind", err)
	}
}

// TestOpenUnixOwnerByName resolves owner and group names as a static god does (CGO_ENABLED=0:
// Go's own reader of /etc/passwd and /etc/group, no NSS): the names of the first user and group
// there with a non-zero id must give those ids.
func TestOpenUnixOwnerByName(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owner and group are applied only as root")
	}
	first := func(file string) (string, uint32) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Skipf("%s: %v", file, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 3 || strings.HasPrefix(line, "#") {
				continue
			}
			if id, err := strconv.ParseUint(f[2], 10, 32); err == nil && id > 0 && ValidName(f[0]) {
				return f[0], uint32(id)
			}
		}
		t.Skipf("%s: no entry with a non-zero id", file)
		return "", 0
	}
	user, uid := first("/etc/passwd")
	group, gid := first("/etc/group")
	path := filepath.Join(t.TempDir(), "n.sock")
	mustOpen(t, "n=unix://"+path+"?owner="+user+"&group="+group)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != uid || st.Gid != gid {
		t.Errorf("owner %s group %s: uid %d gid %d, want %d %d", user, group, st.Uid, st.Gid, uid, gid)
	}
}

func TestMatches(t *testing.T) {
	tcp, tf := mustOpen(t, "web=tcp://127.0.0.1:0")
	udp, uf := mustOpen(t, "dns=udp4://127.0.0.1:0")
	path := filepath.Join(t.TempDir(), "a.sock")
	unx, xf := mustOpen(t, "a=unix://"+path)
	tport, uport := itoa(sockPort(t, tf)), itoa(sockPort(t, uf))
	parse := func(s string) Spec {
		sp, err := ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	tests := []struct {
		f    *os.File
		spec Spec
		want bool
	}{
		{tf, tcp, true},
		{tf, parse("w=tcp://127.0.0.1:" + tport), true},
		{tf, parse("w=tcp4://:" + tport), true},
		{tf, parse("w=tcp://localhost:" + tport), true},
		{tf, parse("w=tcp6://:" + tport), false},
		{tf, parse("w=tcp://127.0.0.2:" + tport), false},
		{tf, parse("w=tcp://127.0.0.1:1"), false},
		{tf, parse("w=udp://127.0.0.1:" + tport), false},
		{tf, unx, false},
		{uf, udp, true},
		{uf, parse("d=udp://:" + uport), true},
		{uf, parse("d=tcp://:" + uport), false},
		{xf, unx, true},
		{xf, parse("a=unix://" + path + "x"), false},
		{xf, parse("a=unixgram://" + path), false},
	}
	for i, tt := range tests {
		if got := Matches(tt.f, tt.spec); got != tt.want {
			t.Errorf("%d: Matches(%s, %s) = %v, want %v", i, tt.f.Name(), tt.spec, got, tt.want)
		}
	}
	// Not a socket, and a socket that is not listening.
	nf, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer nf.Close()
	if Matches(nf, tcp) {
		t.Error("Matches(/dev/null) = true")
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sf := os.NewFile(uintptr(fd), "unbound")
	defer sf.Close()
	if Matches(sf, parse("w=tcp://:0")) {
		t.Error("Matches(not listening) = true")
	}
}

func TestOpenNoLeak(t *testing.T) {
	dir := t.TempDir()
	specs := []string{"t=tcp://127.0.0.1:0", "u=udp://127.0.0.1:0", "x=unix://" + dir + "/x", "g=unixgram://" + dir + "/g"}
	open := func() {
		for _, spec := range specs {
			s, err := ParseSpec(spec)
			if err != nil {
				t.Fatal(err)
			}
			f, err := Open(s)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			// The socket files are stale now; the next Open replaces them.
		}
		// Failing Opens must not leak either.
		s, _ := ParseSpec("n=unix://" + dir + "/missing/x")
		if f, err := Open(s); err == nil {
			f.Close()
		}
	}
	open() // warm up: the runtime's netpoller opens its own fds once
	before := testutil.OpenFds(t)
	for range 50 {
		open()
	}
	if after := testutil.OpenFds(t); after != before {
		t.Errorf("open fds: %d before, %d after 50 rounds of Open/Close", before, after)
	}
}
