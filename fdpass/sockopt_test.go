package fdpass

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// sockopt reads an int socket option of f.
func sockopt(t testing.TB, f *os.File, level, name int) int {
	t.Helper()
	fd := rawFd(t, f)
	defer keepAlive(f)
	v, err := unix.GetsockoptInt(fd, level, name)
	if err != nil {
		t.Fatalf("getsockopt %d/%d on %s: %v", level, name, f.Name(), err)
	}
	return v
}

// wantOpt is an int socket option a test reads back, and the value it wants.
type wantOpt struct {
	what        string
	level, name int
	want        int
}

// checkOpts reads every option back from f.
func checkOpts(t testing.TB, f *os.File, opts []wantOpt) {
	t.Helper()
	for _, o := range opts {
		if got := sockopt(t, f, o.level, o.name); got != o.want {
			t.Errorf("%s: %s = %d, want %d", f.Name(), o.what, got, o.want)
		}
	}
}

// needRoot skips a test of options that need CAP_NET_ADMIN (transparent, mark).
func needRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("transparent and mark need CAP_NET_ADMIN: run as root")
	}
}

// ssBacklog reads a listening tcp socket's backlog as ss shows it (Send-Q of a listening
// socket is its sk_max_ack_backlog, from the kernel's inet_diag), or skips without ss.
func ssBacklog(t testing.TB, port int) int {
	t.Helper()
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("no ss (iproute2) to read the backlog with")
	}
	out, err := exec.Command(ss, "-ltnH", fmt.Sprintf("sport = :%d", port)).Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var state string
	var recvQ, sendQ int
	if _, err := fmt.Sscan(string(out), &state, &recvQ, &sendQ); err != nil || state != "LISTEN" {
		t.Fatalf("ss output %q: %v", out, err)
	}
	return sendQ
}

func TestOpenTCPOptions(t *testing.T) {
	needRoot(t)
	s, f := mustOpen(t, "web=tcp4://127.0.0.1:0?backlog=7&reuseport=true&freebind=true&transparent=true&keepalive=true"+
		"&nodelay=true&defer-accept=3&rcvbuf=16384&sndbuf=32768&mark=42&bind-to-device=lo")
	checkKept(t, s, f)
	checkOpts(t, f, []wantOpt{
		{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{"IP_FREEBIND", unix.IPPROTO_IP, unix.IP_FREEBIND, 1},
		{"IP_TRANSPARENT", unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"TCP_DEFER_ACCEPT", unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 3}, // 3 s is one retransmission: read back as set
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * 16384},        // the kernel doubles it (socket(7))
		{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * 32768},
		{"SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, 42},
	})
	fd, _ := RawFd(f)
	if dev, err := unix.GetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE); err != nil || dev != "lo" {
		t.Errorf("SO_BINDTODEVICE = %q, %v; want lo", dev, err)
	}
	keepAlive(f)
	port := sockPort(t, f)
	if got := ssBacklog(t, port); got != 7 {
		t.Errorf("backlog (ss Send-Q) = %d, want 7", got)
	}
	// A connection accepted on the socket inherits keepalive and nodelay.
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+itoa(port), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x")) // defer-accept: the connection is ready to accept once data arrived
	lfd, _ := RawFd(f)
	pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 10_000); err != nil || n != 1 {
		t.Fatalf("poll: n=%d err=%v", n, err)
	}
	afd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	keepAlive(f)
	if err != nil {
		t.Fatal(err)
	}
	af := os.NewFile(uintptr(afd), "accepted")
	defer af.Close()
	checkOpts(t, af, []wantOpt{
		{"accepted SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"accepted TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{"accepted SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, 42},
	})
}

func TestOpenTCPDefaultsUntouched(t *testing.T) {
	_, f := mustOpen(t, "web=tcp4://127.0.0.1:0")
	checkOpts(t, f, []wantOpt{
		{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 0},
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 0},
		{"TCP_DEFER_ACCEPT", unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 0},
		{"SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, 0},
	})
	somax, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Skip(err)
	}
	if got, want := ssBacklog(t, sockPort(t, f)), strings.TrimSpace(string(somax)); itoa(got) != want {
		t.Errorf("default backlog %d, want somaxconn %s", got, want)
	}
}

func TestOpenIPv6Only(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6: %v", err)
	}
	ln.Close()
	tests := []struct {
		spec string
		want int
	}{
		{"w=tcp://[::]:0", 0}, // dual-stack by default
		{"w=tcp://:0", 0},
		{"w=tcp://[::]:0?ipv6only=true", 1},
		{"w=tcp6://[::]:0", 1}, // tcp6 is IPv6 only by default, as in Go
		{"w=tcp6://[::]:0?ipv6only=false", 0},
		{"d=udp://[::]:0?ipv6only=true", 1},
		{"d=udp6://[::]:0?ipv6only=false&reuseport=true&freebind=true", 0}, // (bound to one IPv6 address, the kernel makes any socket v6 only)
	}
	for _, tt := range tests {
		_, f := mustOpen(t, tt.spec)
		checkOpts(t, f, []wantOpt{{tt.spec + " IPV6_V6ONLY", unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, tt.want}})
		if strings.Contains(tt.spec, "freebind") {
			checkOpts(t, f, []wantOpt{{"IPV6_FREEBIND", unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, 1}})
		}
		if tt.want == 0 && strings.HasPrefix(tt.spec, "w=") {
			// dual-stack: an IPv4 client reaches it
			c, err := net.DialTimeout("tcp4", "127.0.0.1:"+itoa(sockPort(t, f)), 10*time.Second)
			if err != nil {
				t.Errorf("%s: IPv4 client: %v", tt.spec, err)
				continue
			}
			c.Close()
			acceptOne(t, f)
		}
	}
}

func TestOpenUDPOptions(t *testing.T) {
	needRoot(t)
	s, f := mustOpen(t, "dns=udp4://127.0.0.1:0?reuseport=true&rcvbuf=8192&sndbuf=8192&mark=7&bind-to-device=lo&freebind=true&transparent=true")
	checkKept(t, s, f)
	checkOpts(t, f, []wantOpt{
		{"SO_REUSEPORT", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * 8192},
		{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * 8192},
		{"SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, 7},
		{"IP_FREEBIND", unix.IPPROTO_IP, unix.IP_FREEBIND, 1},
		{"IP_TRANSPARENT", unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1},
	})
}

func TestOpenOptionErrorNamesOption(t *testing.T) {
	s, err := ParseSpec("web=tcp://127.0.0.1:0?bind-to-device=nosuchdev9")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(s)
	if err == nil || !strings.Contains(err.Error(), "socket web=tcp://127.0.0.1:0?bind-to-device=nosuchdev9") ||
		!strings.Contains(err.Error(), "option bind-to-device=nosuchdev9: setsockopt: no such device") {
		t.Errorf("Open: %v, want an error naming the socket and the option", err)
	}
}

// procUnix finds the line of /proc/net/unix for the socket f and returns its Flags, Type and
// Path fields.
func procUnix(t testing.TB, f *os.File) (flags, typ, path string) {
	t.Helper()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	pf, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Skip(err)
	}
	defer pf.Close()
	sc := bufio.NewScanner(pf)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		// Num RefCount Protocol Flags Type St Inode Path
		if len(fl) >= 8 && fl[6] == itoa(int(ino)) {
			return fl[3], fl[4], fl[7]
		}
	}
	t.Fatalf("socket inode %d of %s not in /proc/net/unix", ino, f.Name())
	return
}

// abstractName is a name in the abstract namespace no other test run uses.
func abstractName(what string) string {
	return fmt.Sprintf("@watchgod-fdpass-test-%d-%s", os.Getpid(), what)
}

func TestOpenUnixKinds(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		spec, typ, flags string // /proc/net/unix: Type 0001 stream, 0002 dgram, 0005 seqpacket; Flags 00010000: listening
		path             string
	}{
		{"a=unix://" + abstractName("s") + "?backlog=2&rcvbuf=4096&sndbuf=8192", "0001", "00010000", abstractName("s")},
		{"g=unixgram://" + abstractName("g") + "?rcvbuf=4096", "0002", "00000000", abstractName("g")},
		{"p=unixpacket://" + abstractName("p") + "?backlog=2", "0005", "00010000", abstractName("p")},
		{"p=unixpacket://" + dir + "/p.sock?mode=0600&backlog=2&sndbuf=8192", "0005", "00010000", dir + "/p.sock"},
	}
	for _, tt := range tests {
		s, f := mustOpen(t, tt.spec)
		checkKept(t, s, f)
		flags, typ, path := procUnix(t, f)
		if typ != tt.typ || flags != tt.flags || path != tt.path {
			t.Errorf("%s: /proc/net/unix type %s flags %s path %q, want %s %s %q", tt.spec, typ, flags, path, tt.typ, tt.flags, tt.path)
		}
		if s.RcvBuf != 0 {
			checkOpts(t, f, []wantOpt{{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * s.RcvBuf}})
		}
		if s.SndBuf != 0 {
			checkOpts(t, f, []wantOpt{{"SO_SNDBUF", unix.SOL_SOCKET, unix.SO_SNDBUF, 2 * s.SndBuf}})
		}
		if s.IsAbstract() {
			if _, err := os.Lstat(strings.TrimPrefix(s.Address, "@")); err == nil {
				t.Errorf("%s: a file for an abstract socket", s)
			}
		} else if fi, err := os.Lstat(s.Address); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: file %v, %v; want mode 0600", s, fi, err)
		}
		if s.Backlog != 0 {
			checkUnixBacklog(t, s, f)
		}
	}
}

// checkUnixBacklog connects without blocking until the kernel says EAGAIN: a unix listener
// queues backlog+1 connections (unix_recvq_full: queue length > backlog), then refuses more
// to a non-blocking client.
func checkUnixBacklog(t testing.TB, s Spec, f *os.File) {
	t.Helper()
	typ := unix.SOCK_STREAM
	if s.Network == "unixpacket" {
		typ = unix.SOCK_SEQPACKET
	}
	connected := 0
	for range s.Backlog + 5 {
		fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: s.Address})
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatalf("%s: connect: %v", s, err)
		}
		connected++
	}
	if connected != s.Backlog+1 {
		t.Errorf("%s: %d connections queued before EAGAIN, want backlog+1 = %d", s, connected, s.Backlog+1)
	}
}

func TestOpenAbstractInUse(t *testing.T) {
	spec := "a=unix://" + abstractName("busy")
	mustOpen(t, spec)
	s, _ := ParseSpec(spec)
	if f, err := Open(s); err == nil || !strings.Contains(err.Error(), "address already in use") {
		if f != nil {
			f.Close()
		}
		t.Errorf("second Open of %s: %v, want address already in use", spec, err)
	}
}

func TestOpenFIFO(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.fifo")
	s, f := mustOpen(t, "in=fifo://"+path+"?mode=0620")
	if f.Name() != s.String() || !Matches(f, s) {
		t.Errorf("fifo %s: name %q, Matches %v", s, f.Name(), Matches(f, s))
	}
	cloexec, nonblock := fdState(t, f)
	if !cloexec || nonblock {
		t.Errorf("fifo: cloexec %v nonblock %v, want true false", cloexec, nonblock)
	}
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode().Type() != os.ModeNamedPipe || fi.Mode().Perm() != 0o620 {
		t.Fatalf("fifo file %v, %v; want a named pipe with mode 0620", fi, err)
	}
	// A writer opening the path reaches god's copy: the open does not block, god holds a reader.
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("line\n"))
	w.Close()
	buf := make([]byte, 16)
	n, err := f.Read(buf)
	if err != nil || string(buf[:n]) != "line\n" {
		t.Errorf("read %q, %v", buf[:n], err)
	}
	// An existing fifo is reused; another socket spec's fifo does not match.
	s2, f2 := mustOpen(t, "in=fifo://"+path)
	if !Matches(f2, s2) || !Matches(f, s2) {
		t.Errorf("reused fifo does not match")
	}
	other, _ := ParseSpec("in=fifo://" + filepath.Join(dir, "other"))
	if Matches(f, other) {
		t.Errorf("fifo matches another path")
	}
	// A regular file at the path is refused and left alone.
	reg := filepath.Join(dir, "reg")
	os.WriteFile(reg, []byte("x"), 0o600)
	rs, _ := ParseSpec("r=fifo://" + reg)
	if _, err := Open(rs); err == nil || !strings.Contains(err.Error(), "is not a fifo") {
		t.Errorf("Open over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(reg); string(b) != "x" {
		t.Errorf("regular file changed")
	}
}

func TestReconfigure(t *testing.T) {
	from, f := mustOpen(t, "web=tcp4://127.0.0.1:0?backlog=64&nodelay=true&rcvbuf=8192")
	port := sockPort(t, f)
	to, err := ParseSpec("web=tcp4://127.0.0.1:" + itoa(port) + "?backlog=32&keepalive=true&rcvbuf=16384")
	if err != nil {
		t.Fatal(err)
	}
	from.Address = to.Address // the port the kernel picked
	if ok, err := Reconfigure(f, from, to); !ok || err != nil {
		t.Fatalf("Reconfigure(%s -> %s) = %v, %v; want done", from, to, ok, err)
	}
	checkOpts(t, f, []wantOpt{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 0},
		{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, 2 * 16384},
	})
	if got := ssBacklog(t, port); got != 32 {
		t.Errorf("backlog after Reconfigure = %d, want 32", got)
	}
	// Bind-time options, another address, or a buffer back to its default: not in place.
	for _, spec := range []string{
		"web=tcp4://127.0.0.1:" + itoa(port) + "?backlog=32&keepalive=true&rcvbuf=16384&reuseport=true",
		"web=tcp4://127.0.0.1:" + itoa(port+1) + "?backlog=32&keepalive=true&rcvbuf=16384",
		"web=tcp4://127.0.0.1:" + itoa(port) + "?backlog=32&keepalive=true",
		"web=tcp://127.0.0.1:" + itoa(port) + "?backlog=32&keepalive=true&rcvbuf=16384",
	} {
		s, _ := ParseSpec(spec)
		if ok, err := Reconfigure(f, to, s); ok || err != nil {
			t.Errorf("Reconfigure(%s -> %s) = %v, %v; want not in place", to, s, ok, err)
		}
	}
	// A unix socket's mode changes in place.
	path := filepath.Join(t.TempDir(), "r.sock")
	us, uf := mustOpen(t, "u=unix://"+path+"?mode=0600")
	us2, _ := ParseSpec("u=unix://" + path + "?mode=0660&backlog=3")
	if ok, err := Reconfigure(uf, us, us2); !ok || err != nil {
		t.Fatalf("Reconfigure(%s -> %s) = %v, %v", us, us2, ok, err)
	}
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("mode after Reconfigure: %v, %v", fi, err)
	}
	checkUnixBacklog(t, us2, uf)
}

// TestMatchesIgnoresOptions: a socket god's parent (systemd) opened matches a spec of the same
// name, kind and address whatever options the spec asks for, so god uses it as it is.
func TestMatchesIgnoresOptions(t *testing.T) {
	_, f := mustOpen(t, "web=tcp4://127.0.0.1:0")
	port := itoa(sockPort(t, f))
	s, err := ParseSpec("web=tcp4://127.0.0.1:" + port + "?backlog=5&reuseport=true&nodelay=true")
	if err != nil {
		t.Fatal(err)
	}
	if !Matches(f, s) {
		t.Errorf("Matches(plain socket, %s) = false", s)
	}
	_, a := mustOpen(t, "ctl=unix://"+abstractName("m"))
	for spec, want := range map[string]bool{
		"ctl=unix://" + abstractName("m") + "?rcvbuf=4096": true,
		"ctl=unixpacket://" + abstractName("m"):            false,
		"ctl=unix://" + abstractName("other"):              false,
	} {
		s, _ := ParseSpec(spec)
		if got := Matches(a, s); got != want {
			t.Errorf("Matches(abstract unix socket, %s) = %v, want %v", spec, got, want)
		}
	}
}
