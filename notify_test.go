package watchgod_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod"
	"github.com/emielm/watchgod/internal/testutil"
)

// notifySocket is a plain unixgram socket standing in for god's, set as
// NOTIFY_SOCKET for the test.
type notifySocket struct {
	c *net.UnixConn
}

// listenNotify points NOTIFY_SOCKET at a socket of the test's (see testutil.ListenNotify).
func listenNotify(t testing.TB, abstract bool) *notifySocket {
	return &notifySocket{c: testutil.ListenNotify(t, abstract)}
}

// read returns the next datagram's payload and the fds that came with it as
// files, which the test closes when it ends.
func (n *notifySocket) read(t testing.TB) (string, []*os.File) {
	t.Helper()
	n.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(253*4))
	nb, noob, flags, _, err := n.c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatalf("reading NOTIFY_SOCKET: %v", err)
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		t.Fatalf("truncated datagram (flags %#x)", flags)
	}
	cmsgs, err := unix.ParseSocketControlMessage(oob[:noob])
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	for _, c := range cmsgs {
		fds, err := unix.ParseUnixRights(&c)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			f := os.NewFile(uintptr(fd), "received")
			t.Cleanup(func() { f.Close() })
			files = append(files, f)
		}
	}
	return string(buf[:nb]), files
}

func TestNotifyMessages(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		t.Run(fmt.Sprintf("abstract=%v", abstract), func(t *testing.T) {
			s := listenNotify(t, abstract)
			tests := []struct {
				name string
				call func() error
				want string
			}{
				{"Ready", watchgod.Ready, "READY=1"},
				{"Status", func() error { return watchgod.Status("serving 3 clients") }, "STATUS=serving 3 clients"},
				{"Stopping", watchgod.Stopping, "STOPPING=1"},
				{"Watchdog", watchgod.Watchdog, "WATCHDOG=1"},
			}
			for _, tt := range tests {
				if err := tt.call(); err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				if got, files := s.read(t); got != tt.want || len(files) != 0 {
					t.Errorf("%s sent %q with %d fds, want %q", tt.name, got, len(files), tt.want)
				}
			}
		})
	}
}

func TestReloading(t *testing.T) {
	s := listenNotify(t, false)
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	before := uint64(ts.Nano() / 1000)
	if err := watchgod.Reloading(); err != nil {
		t.Fatal(err)
	}
	got, _ := s.read(t)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("sent %q, want RELOADING=1 and MONOTONIC_USEC", got)
	}
	usec, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before {
		t.Errorf("MONOTONIC_USEC %q: %v; want a time at or after %d", lines[1], err, before)
	}
}

func TestStatusSanitised(t *testing.T) {
	s := listenNotify(t, false)
	tests := []struct{ in, want string }{
		{"two\nlines\r\x00", "two lines  "},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{strings.Repeat("a", 4095) + "é", strings.Repeat("a", 4095)}, // é would end past 4 KiB
		{strings.Repeat("b", 5000), strings.Repeat("b", 4096)},
		{"", ""},
	}
	for _, tt := range tests {
		if err := watchgod.Status(tt.in); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.read(t); got != "STATUS="+tt.want {
			t.Errorf("Status(%.20q) sent %.40q, want STATUS=%.40q", tt.in, got, tt.want)
		}
	}
}

func TestStoreFiles(t *testing.T) {
	s := listenNotify(t, false)
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	defer w1.Close()
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer w2.Close()

	if err := watchgod.StoreFiles("conn", w1, w2); err != nil {
		t.Fatal(err)
	}
	// The caller's files keep their non-blocking mode (f.Fd() would clear it).
	for i, f := range []*os.File{w1, w2} {
		rc, err := f.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var flags int
		rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFL, 0) })
		if nonblock := flags&unix.O_NONBLOCK != 0; err != nil || !nonblock {
			t.Errorf("file %d: non-blocking = %v, %v after StoreFiles; want true", i, nonblock, err)
		}
	}
	got, files := s.read(t)
	if got != "FDSTORE=1\nFDNAME=conn\n" || len(files) != 2 {
		t.Fatalf("sent %q with %d fds, want FDSTORE=1, FDNAME=conn and 2 fds", got, len(files))
	}
	// The received fds are the pipes' write ends, in order.
	for i, r := range []*os.File{r1, r2} {
		if _, err := files[i].Write([]byte{'0' + byte(i)}); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(r, b); err != nil || b[0] != '0'+byte(i) {
			t.Errorf("pipe %d: read %q, %v", i, b, err)
		}
	}

	if err := watchgod.StoreFiles("", w1); err != nil {
		t.Fatal(err)
	}
	if got, files := s.read(t); got != "FDSTORE=1\n" || len(files) != 1 {
		t.Errorf("without a name: sent %q with %d fds", got, len(files))
	}
}

func TestStoreFilesRefused(t *testing.T) {
	s := listenNotify(t, false)
	_, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	many := make([]*os.File, 254)
	for i := range many {
		many[i] = w
	}
	tests := []struct {
		name  string
		files []*os.File
		err   string
	}{
		{"x", nil, "no files"},
		{"x", []*os.File{nil}, "nil"},
		{"x", many, "at most 253"},
		{"a:b", []*os.File{w}, "name"},
		{"tab\t", []*os.File{w}, "name"},
		{strings.Repeat("n", 256), []*os.File{w}, "longer"},
	}
	for _, tt := range tests {
		err := watchgod.StoreFiles(tt.name, tt.files...)
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("StoreFiles(%.20q, %d files) = %v, want an error about %q", tt.name, len(tt.files), err, tt.err)
		}
	}
	// Nothing was sent.
	s.c.SetReadDeadline(time.Now())
	if n, _, err := s.c.ReadFromUnix(make([]byte, 1)); err == nil {
		t.Errorf("a refused call sent a %d byte datagram", n)
	}
}

func TestNotifyWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	_, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for name, call := range map[string]func() error{
		"Ready":      watchgod.Ready,
		"Status":     func() error { return watchgod.Status("x") },
		"Reloading":  watchgod.Reloading,
		"Stopping":   watchgod.Stopping,
		"Watchdog":   watchgod.Watchdog,
		"StoreFiles": func() error { return watchgod.StoreFiles("f", w) },
	} {
		if err := call(); err != nil {
			t.Errorf("%s without NOTIFY_SOCKET: %v", name, err)
		}
	}
}

func TestNotifySocketGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.sock")
	t.Setenv("NOTIFY_SOCKET", path)
	if err := watchgod.Ready(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Ready with a missing socket: %v, want an error naming it", err)
	}
	_, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := watchgod.StoreFiles("f", w); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("StoreFiles with a missing socket: %v, want an error naming it", err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		usec, pid string // "-" leaves the variable unset
		want      time.Duration
	}{
		{"-", "-", 0},
		{"2000000", "-", time.Second},
		{"2000000", self, time.Second},
		{"2000000", "1", 0},
		{"garbage", "-", 0},
		{"-5", "-", 0},
		{"2000000", "garbage", 0},
	}
	for _, tt := range tests {
		for k, v := range map[string]string{"WATCHDOG_USEC": tt.usec, "WATCHDOG_PID": tt.pid} {
			t.Setenv(k, v)
			if v == "-" {
				os.Unsetenv(k)
			}
		}
		if got := watchgod.WatchdogInterval(); got != tt.want {
			t.Errorf("WATCHDOG_USEC=%s WATCHDOG_PID=%s: %v, want %v", tt.usec, tt.pid, got, tt.want)
		}
	}
}

// A job that tells god when it is ready and keeps its watchdog fed. Its
// loader answers ready ["notify"] and watchdog [MS].
func ExampleReady() {
	ln, err := watchgod.Listener("http") // the socket god opened for the job
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	// ... load configuration, warm caches: god holds traffic until now ...
	if err := watchgod.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	watchgod.Status("serving on " + ln.Addr().String())

	if every := watchgod.WatchdogInterval(); every > 0 {
		go func() {
			for range time.Tick(every) {
				watchgod.Watchdog()
			}
		}()
	}
}

// A job that hands its listener to its next generation before it exits.
func ExampleStoreFiles() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	f, err := ln.(*net.TCPListener).File() // a duplicate, sent as is
	if err != nil {
		panic(err)
	}
	if err := watchgod.StoreFiles("http", f); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	f.Close()
	ln.Close()
}
