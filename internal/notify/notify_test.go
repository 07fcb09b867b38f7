package notify

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/procfs"
	"github.com/emielm/watchgod/internal/testutil"
)

// notifyHelperEnv makes the test binary act as a job process in
// TestNotifyHelperProcess instead of running tests.
const notifyHelperEnv = "WATCHGOD_NOTIFY_TEST_HELPER"

// notifyHelperComm is the name the helper gives itself: ')' and spaces make
// /proc/PID/stat hard to split on spaces, which procfs.ProcessGroup must survive.
const notifyHelperComm = "a) 1 2 (b"

// TestNotifyHelperProcess is not a test: run by startNotifyHelper, it renames
// itself, sends its environment variable's payload to NOTIFY_SOCKET with
// go-systemd, as a job would, and waits for stdin to close so its pid stays
// alive while the test checks it.
func TestNotifyHelperProcess(t *testing.T) {
	payload, ok := os.LookupEnv(notifyHelperEnv)
	if !ok {
		t.Skip("helper process for TestNotifyServerChild")
	}
	code := 0
	if err := os.WriteFile("/proc/self/comm", []byte(notifyHelperComm), 0); err != nil {
		os.Stderr.WriteString("helper: comm: " + err.Error() + "\n")
		code = 2
	}
	if sent, err := daemon.SdNotify(false, payload); err != nil || !sent {
		os.Stderr.WriteString("helper: sd_notify failed\n")
		code = 2
	}
	io.Copy(io.Discard, os.Stdin)
	os.Exit(code)
}

// startNotifyHelper runs the test binary as a job process in its own process
// group that sends payload to socket. Closing the returned writer lets it exit.
func startNotifyHelper(t testing.TB, socket, payload string) (*exec.Cmd, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNotifyHelperProcess$")
	// GORACE: a race-enabled binary otherwise sleeps 1 s at exit.
	cmd.Env = append(os.Environ(), notifyHelperEnv+"="+payload, "NOTIFY_SOCKET="+socket, "GORACE=atexit_sleep_ms=0")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("helper process: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("helper process did not exit")
		}
	})
	return cmd, stdin
}

// notifyHarness is a Server serving in the background for one test.
type notifyHarness struct {
	s    *Server
	msgs chan Message
	log  *testutil.LockedBuffer
}

// startNotifyServer listens in a temp dir and serves until the test ends;
// oobSize, when not 0, replaces the control buffer size.
func startNotifyServer(t testing.TB, oobSize int) *notifyHarness {
	t.Helper()
	return startNotifyServerAdmit(t, oobSize, nil)
}

// startNotifyServerAdmit is startNotifyServer with an Admit function.
func startNotifyServerAdmit(t testing.TB, oobSize int, admit func(uid, pid int) Admission) *notifyHarness {
	t.Helper()
	s, err := Listen(filepath.Join(t.TempDir(), "notify.sock"))
	if err != nil {
		t.Fatal(err)
	}
	if oobSize != 0 {
		s.oobSize = oobSize
	}
	h := &notifyHarness{s: s, msgs: make(chan Message, 16), log: &testutil.LockedBuffer{}}
	s.Logger = slog.New(slog.NewTextHandler(h.log, nil))
	s.Admit = admit
	served := make(chan error, 1)
	go func() { served <- s.Serve(func(m Message) { h.msgs <- m }) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := testutil.Receive(t, served, 5*time.Second, "Serve's return after Close"); err != nil {
			t.Errorf("Serve after Close: %v", err)
		}
		for len(h.msgs) > 0 {
			for _, f := range (<-h.msgs).Files {
				f.Close()
			}
		}
		if t.Failed() {
			t.Logf("server log:\n%s", h.log)
		}
	})
	return h
}

// next waits for the next delivered message.
func (h *notifyHarness) next(t testing.TB) Message {
	t.Helper()
	select {
	case m := <-h.msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("no notify message delivered; server log:\n%s", h.log)
		return Message{}
	}
}

// send writes one datagram with files attached, from this process, over an
// unconnected socket as sd_pid_notify_with_fds does.
func (h *notifyHarness) send(t testing.TB, payload []byte, files ...*os.File) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"}) // autobind
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetWriteBuffer(4 * notifyMaxPayload); err != nil {
		t.Fatal(err)
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = unix.UnixRights(fds...)
	}
	to := &net.UnixAddr{Name: h.s.Path(), Net: "unixgram"}
	if _, _, err := c.WriteMsgUnix(payload, oob, to); err != nil {
		t.Fatal(err)
	}
}

// sync sends a marker message and waits for it: every datagram sent before
// has then been handled, since one socket keeps datagrams in order.
func (h *notifyHarness) sync(t testing.TB) {
	t.Helper()
	h.send(t, []byte("X_SYNC=1"))
	if m := h.next(t); m.Fields["X_SYNC"] != "1" {
		t.Fatalf("got %+v, want the sync marker (an earlier message was delivered)", m)
	}
}

// sentPipe returns the read end of a pipe and its write end, which the test
// sends; once every copy of the write end is closed the read end sees EOF.
func sentPipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// wantAllClosed checks that no copy of the pipes' write ends is open any more
// (the test's own copies must be closed first), so nothing leaked.
func wantAllClosed(t testing.TB, readers ...*os.File) {
	t.Helper()
	for i, r := range readers {
		r.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("pipe %d: read = %d, %v; want EOF (a received fd was not closed)", i, n, err)
		}
	}
}

func TestNotifyServerChild(t *testing.T) {
	h := startNotifyServer(t, 0)
	cmd, _ := startNotifyHelper(t, h.s.Path(), "READY=1\nSTATUS=x")
	m := h.next(t)
	if m.Pid != cmd.Process.Pid {
		t.Errorf("Pid = %d, want the child's %d", m.Pid, cmd.Process.Pid)
	}
	if !m.Ready || m.Status != "x" || len(m.Files) != 0 {
		t.Errorf("got %+v, want Ready and Status x", m)
	}
	pgrp, err := procfs.ProcessGroup(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if pgrp != cmd.Process.Pid {
		t.Errorf("ProcessGroup(child) = %d, want %d (it is a group leader)", pgrp, cmd.Process.Pid)
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(stat, []byte("("+notifyHelperComm+")")) {
		t.Errorf("child did not rename itself: stat %q", stat)
	}
}

func TestNotifyServerOwnPid(t *testing.T) {
	h := startNotifyServer(t, 0)
	h.send(t, []byte("STATUS=hello\nMAINPID=1\n"))
	m := h.next(t)
	if m.Pid != os.Getpid() {
		t.Errorf("Pid = %d, want the sender's %d (MAINPID must not count)", m.Pid, os.Getpid())
	}
	if m.MainPid != 1 || m.Status != "hello" {
		t.Errorf("got %+v", m)
	}
}

func TestNotifyServerFdStore(t *testing.T) {
	h := startNotifyServer(t, 0)
	r1, w1 := sentPipe(t)
	r2, w2 := sentPipe(t)
	before := testutil.OpenFds(t)
	h.send(t, []byte("FDSTORE=1\nFDNAME=conn"), w1, w2)
	m := h.next(t)
	if !m.FdStore || m.FdName != "conn" || len(m.Files) != 2 {
		t.Fatalf("got %+v, want FDSTORE=1 with 2 files named conn", m)
	}
	if got := testutil.OpenFds(t); got != before+2 {
		t.Errorf("%d fds open, want %d: the 2 received ones", got, before+2)
	}
	// The received files are the pipes' write ends.
	for i, f := range m.Files {
		if f.Name() != "conn" {
			t.Errorf("file %d named %q, want conn", i, f.Name())
		}
		if _, err := f.Write([]byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range []*os.File{r1, r2} {
		b := make([]byte, 1)
		if _, err := io.ReadFull(r, b); err != nil || b[0] != byte('a'+i) {
			t.Errorf("pipe %d: read %q, %v", i, b, err)
		}
	}
	for _, f := range m.Files {
		f.Close()
	}
	w1.Close()
	w2.Close()
	wantAllClosed(t, r1, r2)
}

func TestNotifyServerClosesUnwantedFds(t *testing.T) {
	h := startNotifyServer(t, 0)
	r1, w1 := sentPipe(t)
	r2, w2 := sentPipe(t)
	h.send(t, []byte("READY=1"), w1, w2) // fds without FDSTORE=1
	if m := h.next(t); !m.Ready || len(m.Files) != 0 {
		t.Errorf("got %+v, want READY=1 and no files", m)
	}
	w1.Close()
	w2.Close()
	wantAllClosed(t, r1, r2)
}

func TestNotifyServerDropsBadMessages(t *testing.T) {
	h := startNotifyServer(t, 0)
	huge := bytes.Repeat([]byte("X"), notifyMaxPayload+20<<10)
	copy(huge, "FDSTORE=1\nSTATUS=")
	tooLong := append([]byte("FDSTORE=1\nSTATUS="), bytes.Repeat([]byte("y"), notifyMaxPayload)...)
	tests := []struct {
		name    string
		payload []byte
		log     string
	}{
		{"larger than the buffer", huge, "payload truncated"},
		{"one byte over the limit", tooLong[:notifyMaxPayload+1], "invalid payload"},
		{"bad line", []byte("FDSTORE=1\nready=1"), "invalid key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w := sentPipe(t)
			h.send(t, tt.payload, w)
			w.Close()
			h.sync(t)
			wantAllClosed(t, r)
			// Drops of one reason are logged at most once a second: a second one is said
			// when that second is over, with its count.
			testutil.Eventually(t, 5*time.Second, "the drop logged: "+tt.log, func() bool { return strings.Contains(h.log.String(), tt.log) })
		})
	}
}

func TestNotifyServerControlTruncated(t *testing.T) {
	// Room for the credentials and one fd only: three fds truncate the control data.
	h := startNotifyServer(t, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4))
	var readers []*os.File
	var writers []*os.File
	for range 3 {
		r, w := sentPipe(t)
		readers, writers = append(readers, r), append(writers, w)
	}
	h.send(t, []byte("FDSTORE=1"), writers...)
	for _, w := range writers {
		w.Close()
	}
	h.sync(t)
	wantAllClosed(t, readers...)
	if !strings.Contains(h.log.String(), "control data truncated") {
		t.Errorf("log lacks the truncation:\n%s", h.log)
	}
}

func TestListenNotifyStaleAndClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify.sock")

	// A socket nobody reads, as a killed god leaves it.
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close() // unixgram sockets keep their path on Close
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	s, err := Listen(path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o666 {
		t.Errorf("mode %v, want 0666", fi.Mode().Perm())
	}

	// A live one is not taken over.
	if s2, err := Listen(path); err == nil || !strings.Contains(err.Error(), "in use") {
		if s2 != nil {
			s2.Close()
		}
		t.Errorf("over a live socket: err = %v, want in use", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close: Lstat = %v, want not exist", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// Close leaves a socket that a newer server bound at the path.
	s, err = Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path)
	newer, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer newer.Close()
	s.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Errorf("Close removed the newer server's socket: %v", err)
	}

	// Not a socket: refused, left alone.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("over a regular file: err = %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "data" {
		t.Errorf("regular file changed: %q, %v", b, err)
	}
}

func TestListenNotifyAbstract(t *testing.T) {
	path := "@watchgod-notify-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	s, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan Message, 1)
	served := make(chan error, 1)
	go func() { served <- s.Serve(func(m Message) { done <- m }) }()
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1")); err != nil {
		t.Fatal(err)
	}
	if m := testutil.Receive(t, done, 5*time.Second, "a message on the abstract socket"); !m.Ready || m.Pid != os.Getpid() {
		t.Errorf("got %+v", m)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve after Close: %v", err)
	}
}

func TestParseNotify(t *testing.T) {
	tests := []struct {
		in   string
		want Message
	}{
		{"READY=1", Message{Ready: true, Fields: map[string]string{"READY": "1"}}},
		{"READY=1\n", Message{Ready: true, Fields: map[string]string{"READY": "1"}}},
		{"READY=0", Message{Fields: map[string]string{"READY": "0"}}},
		{"READY=1\r", Message{Fields: map[string]string{"READY": "1\r"}}}, // not READY=1 for systemd either
		{"STATUS=serving 3 clients\nMAINPID=4242", Message{
			Status: "serving 3 clients", MainPid: 4242,
			Fields: map[string]string{"STATUS": "serving 3 clients", "MAINPID": "4242"}}},
		{"STATUS=", Message{Fields: map[string]string{"STATUS": ""}}},
		{"STATUS=a=b", Message{Status: "a=b", Fields: map[string]string{"STATUS": "a=b"}}},
		{"RELOADING=1\nMONOTONIC_USEC=123456789\n", Message{Reloading: true, MonotonicUsec: 123456789,
			Fields: map[string]string{"RELOADING": "1", "MONOTONIC_USEC": "123456789"}}},
		{"EXTEND_TIMEOUT_USEC=5000000", Message{ExtendUsec: 5000000, Fields: map[string]string{"EXTEND_TIMEOUT_USEC": "5000000"}}},
		{"FDSTOREREMOVE=1\nFDNAME=db", Message{FdStoreRemove: true, FdName: "db", Fields: map[string]string{"FDSTOREREMOVE": "1", "FDNAME": "db"}}},
		{"FDSTORE=1\nFDPOLL=0", Message{FdStore: true, FdNoPoll: true, Fields: map[string]string{"FDSTORE": "1", "FDPOLL": "0"}}},
		{"STOPPING=1\nERRNO=2", Message{Stopping: true, Errno: 2,
			Fields: map[string]string{"STOPPING": "1", "ERRNO": "2"}}},
		{"WATCHDOG=1", Message{Watchdog: true, Fields: map[string]string{"WATCHDOG": "1"}}},
		{"WATCHDOG=trigger", Message{WatchdogTrigger: true, Fields: map[string]string{"WATCHDOG": "trigger"}}},
		{"FDSTORE=1\nFDNAME=web-conn.1", Message{FdStore: true, FdName: "web-conn.1",
			Fields: map[string]string{"FDSTORE": "1", "FDNAME": "web-conn.1"}}},
		{"STATUS=a\nSTATUS=b", Message{Status: "b", Fields: map[string]string{"STATUS": "b"}}},
		{"X_CUSTOM_2=whatever", Message{Fields: map[string]string{"X_CUSTOM_2": "whatever"}}},
		{"_A=1", Message{Fields: map[string]string{"_A": "1"}}},
		{"STATUS=" + strings.Repeat("s", notifyMaxValue), Message{Status: strings.Repeat("s", notifyMaxValue),
			Fields: map[string]string{"STATUS": strings.Repeat("s", notifyMaxValue)}}},
	}
	for _, tt := range tests {
		got, err := Parse([]byte(tt.in))
		if err != nil {
			t.Errorf("%.40q: %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%.40q:\n got %+v\nwant %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseNotifyErrors(t *testing.T) {
	many := strings.Repeat("X="+strings.Repeat("v", 1000)+"\n", 70)
	tests := []struct{ in, err string }{
		{"", "empty"},
		{"\n", "line 1"},
		{"READY=1\n\n", "line 2"},
		{"READY=1\nSTATUS", "line 2 \"STATUS\": no '='"},
		{"READY=1\x00", "NUL"},
		{"ready=1", "invalid key"},
		{"=1", "invalid key"},
		{"1A=1", "invalid key"},
		{"A-B=1", "invalid key"},
		{" READY=1", "invalid key"},
		{"STATUS=" + strings.Repeat("s", notifyMaxValue+1), "exceeds"},
		{many, "exceeds 65536"},
		{"MAINPID=abc", "MAINPID"},
		{"MAINPID=0", "MAINPID"},
		{"MAINPID=-1", "MAINPID"},
		{"MAINPID=+5", "MAINPID"},
		{"MAINPID=99999999999", "MAINPID"},
		{"ERRNO=x", "ERRNO"},
		{"MONOTONIC_USEC=", "MONOTONIC_USEC"},
		{"MONOTONIC_USEC=+1", "MONOTONIC_USEC"},
		{"MONOTONIC_USEC=18446744073709551616", "MONOTONIC_USEC"},
		{"EXTEND_TIMEOUT_USEC=", "EXTEND_TIMEOUT_USEC"},
		{"EXTEND_TIMEOUT_USEC=-5", "EXTEND_TIMEOUT_USEC"},
		{"EXTEND_TIMEOUT_USEC=5s", "EXTEND_TIMEOUT_USEC"},
		{"FDNAME=a:b", "FDNAME"},
		{"FDNAME=", "FDNAME"},
		{"FDNAME=" + strings.Repeat("n", 256), "FDNAME"},
		{"STATUS=\xff", "UTF-8"},
	}
	for _, tt := range tests {
		m, err := Parse([]byte(tt.in))
		if err == nil {
			t.Errorf("%.40q: no error, got %+v", tt.in, m)
			continue
		}
		if !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%.40q: error %q does not mention %q", tt.in, err, tt.err)
		}
		if m.Fields != nil || m.Ready {
			t.Errorf("%.40q: error with a half-filled message %+v", tt.in, m)
		}
	}
}

// TestNotifyServerAdmitsBySender: Admit sees the sender's real uid and pid before anything else;
// a refused sender's datagrams are dropped with their fds, and a flood of them is one log line a
// second, with the count.
func TestNotifyServerAdmitsBySender(t *testing.T) {
	var reject atomic.Bool
	var sawUid, sawPid, asked atomic.Int64
	h := startNotifyServerAdmit(t, 0, func(uid, pid int) Admission {
		asked.Add(1)
		sawUid.Store(int64(uid))
		sawPid.Store(int64(pid))
		if reject.Load() {
			return DropUser
		}
		return Admitted
	})
	reject.Store(true)
	r, w := sentPipe(t)
	h.send(t, []byte("FDSTORE=1\nREADY=1"), w)
	w.Close()
	const flood = 2000
	for range flood {
		h.send(t, []byte("READY=1"))
	}
	// Every datagram was judged (refused) before the marker may pass.
	testutil.Eventually(t, 10*time.Second, "every datagram judged", func() bool { return asked.Load() == flood+1 })
	reject.Store(false)
	h.sync(t) // the marker is admitted and delivered: everything before it was handled
	if len(h.msgs) != 0 {
		t.Fatalf("%d refused messages delivered", len(h.msgs))
	}
	wantAllClosed(t, r)
	if sawUid.Load() != int64(os.Getuid()) || sawPid.Load() != int64(os.Getpid()) {
		t.Errorf("Admit saw uid %d pid %d, want this process's %d %d", sawUid.Load(), sawPid.Load(), os.Getuid(), os.Getpid())
	}
	testutil.Eventually(t, 5*time.Second, "the count of held-back drops logged", func() bool {
		return strings.Contains(h.log.String(), "repeated=")
	})
	if n := strings.Count(h.log.String(), "sender is no user"); n < 1 || n > 3 {
		t.Errorf("%d log lines for %d refused datagrams, want one or two:\n%s", n, flood+1, h.log)
	}
}
