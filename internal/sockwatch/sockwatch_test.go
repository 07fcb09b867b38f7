package sockwatch

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
)

// deadline is generous: the machine is busy.
const deadline = 20 * time.Second

func newWatcher(t testing.TB) *Watcher {
	t.Helper()
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// rawListener opens a blocking TCP listening socket on loopback as god does (no Go poller on it).
func rawListener(t testing.TB) (fd int, addr string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*unix.SockaddrInet4).Port}).String()
}

func fired(ch chan struct{}) func() { return func() { ch <- struct{}{} } }

// TestFiresOnConnectionWithoutAccepting: a connection fires the watch once; it is still in the
// queue afterwards (accept gets it), and the socket stays blocking.
func TestFiresOnConnectionWithoutAccepting(t *testing.T) {
	w := newWatcher(t)
	fd, addr := rawListener(t)
	ch := make(chan struct{}, 4)
	if _, err := w.Watch([]int{fd}, fired(ch)); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	testutil.Receive(t, ch, deadline, "connection")
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Fatalf("socket flags %#x (%v): the watch made it non-blocking", fl, err)
	}
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("the connection is not in the queue any more: %v", err)
	}
	unix.Close(nfd)
	// A second watch of the same socket sees the next connection: the first fired only once.
	ch2 := make(chan struct{}, 4)
	if _, err := w.Watch([]int{fd}, fired(ch2)); err != nil {
		t.Fatal(err)
	}
	c2, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	testutil.Receive(t, ch2, deadline, "second connection")
	if len(ch) != 0 {
		t.Fatalf("the first watch fired %d more times", len(ch))
	}
}

// TestPendingFiresAtOnce: a connection that waits before the watch begins fires it (the case of
// a client that came while the job's last process was exiting).
func TestPendingFiresAtOnce(t *testing.T) {
	w := newWatcher(t)
	fd, addr := rawListener(t)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch := make(chan struct{}, 1)
	if _, err := w.Watch([]int{fd}, fired(ch)); err != nil {
		t.Fatal(err)
	}
	testutil.Receive(t, ch, deadline, "pending connection")
}

// TestCancelAndCallerClose: a cancelled watch never fires; a watch whose caller closed its own
// fd still works (the Watcher polls its dup), and several fds fire their watch once.
func TestCancelAndCallerClose(t *testing.T) {
	w := newWatcher(t)
	fd, addr := rawListener(t)
	cancelled := make(chan struct{}, 4)
	cancel, err := w.Watch([]int{fd}, fired(cancelled))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	cancel()

	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := udp.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	udp.Close()
	ufd := int(f.Fd())
	uaddr := udp.LocalAddr().String()
	ch := make(chan struct{}, 4)
	if _, err := w.Watch([]int{fd, ufd}, fired(ch)); err != nil {
		t.Fatal(err)
	}
	f.Close() // the caller's copy goes; the watch keeps its own
	c, err := net.Dial("udp", uaddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.Receive(t, ch, deadline, "datagram")
	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	// A new watch on the TCP socket fires on that connection; by then neither the cancelled watch
	// nor the one that fired already may have fired (again): fires run in order on one goroutine.
	after := make(chan struct{}, 1)
	if _, err := w.Watch([]int{fd}, fired(after)); err != nil {
		t.Fatal(err)
	}
	testutil.Receive(t, after, deadline, "connection after the datagram")
	if len(cancelled) != 0 || len(ch) != 0 {
		t.Fatalf("cancelled watch fired %d times, fired watch %d more times", len(cancelled), len(ch))
	}
}

// TestClose: Watch after Close fails; Close ends the goroutine and twice is fine.
func TestClose(t *testing.T) {
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	fd, _ := rawListener(t)
	if _, err := w.Watch([]int{fd}, func() {}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	w.Close()
	if _, err := w.Watch([]int{fd}, func() {}); err != ErrClosed {
		t.Fatalf("Watch after Close: %v", err)
	}
}

// TestBadFd: a watch with an fd that is not open fails and leaves nothing registered.
func TestBadFd(t *testing.T) {
	w := newWatcher(t)
	fd, _ := rawListener(t)
	if _, err := w.Watch([]int{fd, -1}, func() {}); err == nil {
		t.Fatal("Watch of fd -1 succeeded")
	}
	if n := len(w.byKey); n != 0 {
		t.Fatalf("%d registrations left after a failed Watch", n)
	}
}

// TestWatchHangup: a hang-up watch fires when the last writer of a pipe closes it, not when the
// pipe is readable; a listening socket with a client waiting does not hang up; a regular file
// cannot be watched (EPERM).
func TestWatchHangup(t *testing.T) {
	w := newWatcher(t)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	hup := make(chan struct{}, 1)
	if _, err := w.WatchHangup(p[0], fired(hup)); err != nil {
		t.Fatal(err)
	}
	fd, addr := rawListener(t)
	lhup := make(chan struct{}, 1)
	cancel, err := w.WatchHangup(fd, fired(lhup))
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unix.Write(p[1], []byte("x")) // readable, not hung up
	unix.Close(p[1])              // the last writer gone: hung up
	testutil.Receive(t, hup, deadline, "pipe without writers")
	select {
	case <-lhup:
		t.Fatal("a listening socket with a client waiting fired a hang-up watch")
	default:
	}
	f, err := os.CreateTemp(t.TempDir(), "regular")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := w.WatchHangup(int(f.Fd()), func() {}); !errors.Is(err, unix.EPERM) {
		t.Errorf("watching a regular file: %v, want EPERM", err)
	}
}
