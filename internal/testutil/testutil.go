// Package testutil holds what the tests of several packages share: waiting for a condition with
// a deadline instead of sleeping, a buffer that goroutines write to at once, and a logger whose
// records a test can wait for.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Slack scales a test's deadline: a deadline says when to give up on something that should have
// happened, and on a busy 2-core CI box (the race detector, parallel tests, another CPU-heavy
// process) things take a few times longer than on an idle machine. Only a failing test waits the
// longer deadline. WATCHGOD_TEST_SLACK sets the factor (default 3; 1 for the written deadlines).
func Slack(d time.Duration) time.Duration {
	return d * time.Duration(slackFactor())
}

// slackFactor reads WATCHGOD_TEST_SLACK once.
var slackFactor = sync.OnceValue(func() int {
	if n, err := strconv.Atoi(os.Getenv("WATCHGOD_TEST_SLACK")); err == nil && n >= 1 {
		return n
	}
	return 3
})

// Eventually polls cond until it holds, and fails tb when it does not within timeout (scaled by
// Slack). what says what was waited for. It is for conditions no event announces (a file written
// by another process, a pid gone); the poll is short, the deadline generous.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(timeout, cond) {
		tb.Fatalf("%s: not within %s", what, Slack(timeout))
	}
}

// Poll is Eventually for a caller that says itself what it found instead: it polls cond until it
// holds, for at most timeout (scaled by Slack), and reports whether it did.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(Slack(timeout))
	for wait := time.Millisecond; !cond(); wait = min(2*wait, 20*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait) // polling, bounded by the deadline
	}
	return true
}

// LockedBuffer is a bytes.Buffer that goroutines may write and read at once.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Records is a slog.Handler that keeps every record, for tests that wait for a log line.
type Records struct {
	mu      sync.Mutex
	records []slog.Record
	changed chan struct{} // closed and replaced at every record
}

// NewLogger returns a logger (every level) and the records it keeps.
func NewLogger() (*slog.Logger, *Records) {
	r := &Records{changed: make(chan struct{})}
	return slog.New(r), r
}

func (r *Records) Enabled(context.Context, slog.Level) bool { return true }

func (r *Records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}

// WithAttrs and WithGroup keep the records in the same list; the attributes are dropped (tests
// match on the message and the record's own attributes).
func (r *Records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *Records) WithGroup(string) slog.Handler      { return r }

// Count is how many records so far match pred.
func (r *Records) Count(pred func(slog.Record) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.records {
		if pred(rec) {
			n++
		}
	}
	return n
}

// Wait returns once n records match pred, and fails tb after timeout.
func (r *Records) Wait(tb testing.TB, timeout time.Duration, n int, what string, pred func(slog.Record) bool) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if r.Count(pred) >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			tb.Fatalf("%s: not within %s", what, timeout)
		}
	}
}

// Attr returns the value of the record's attribute key as a string, "" when it has none.
func Attr(rec slog.Record, key string) string {
	var v string
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// Piped is a process a test talks to over its stdin and stdout (a loader, a job binary in loader
// mode).
type Piped struct {
	Cmd    *exec.Cmd
	Stdin  io.WriteCloser
	Stdout io.ReadCloser
	Stderr *LockedBuffer
}

// StartPiped runs argv with extra environment env, in a process group of its own, with piped
// stdin and stdout; what it writes on stderr is kept. At cleanup its stdin is closed and its
// group killed, and it is reaped.
func StartPiped(tb testing.TB, argv []string, env ...string) *Piped {
	tb.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &Piped{Cmd: cmd, Stderr: &LockedBuffer{}}
	cmd.Stderr = p.Stderr
	var err error
	if p.Stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	if p.Stdout, err = cmd.StdoutPipe(); err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.Stdin.Close()
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	return p
}

// OpenPTY opens a pseudo-terminal pair, for tests of what a program does on a real terminal;
// with rows > 0 the terminal has that many rows (and 200 columns). It skips tb when the machine
// has no pseudo-terminals. Both ends are closed when tb ends.
func OpenPTY(tb testing.TB, rows int) (ptmx, pts *os.File) {
	tb.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("no pty: %v", err)
	}
	tb.Cleanup(func() { ptmx.Close() })
	rc, err := ptmx.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var n int
	var ierr error
	rc.Control(func(fd uintptr) {
		if ierr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ierr != nil {
			return
		}
		if n, ierr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); ierr != nil || rows <= 0 {
			return
		}
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(rows), Col: 200})
	})
	if ierr != nil {
		tb.Skipf("pty setup: %v", ierr)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		tb.Skipf("open pts: %v", err)
	}
	tb.Cleanup(func() { pts.Close() })
	return ptmx, pts
}

// BashPause is bash that defines pause SECONDS, for the start of a script's body: a wait without
// a fork (read on a pipe that never has data), so that a loader's reply time is its own and not
// that of starting sleep on a busy machine.
const BashPause = `exec {never}<> <(:)
pause() { read -r -t "$1" -u "$never" || true; }
`

// WriteScript writes an executable bash script dir/name with body (the lines after
// "#!/bin/bash"), for a loader or a job a test runs, and returns its path (see WriteExecutable).
func WriteScript(tb testing.TB, dir, name, body string) string {
	tb.Helper()
	return WriteExecutable(tb, dir, name, []byte("#!/bin/bash\n"+body))
}

// WriteExecutable puts content at dir/name with mode 0755 in one rename (a dot-file renamed into
// place: god skips it until it has its name) and returns its path.
func WriteExecutable(tb testing.TB, dir, name string, content []byte) string {
	tb.Helper()
	path := filepath.Join(dir, name)
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := WriteNoFork(tmp, content, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil { // against the umask
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// CopyExecutable copies the file src into dir as name, executable (see WriteExecutable), and
// returns its path.
func CopyExecutable(tb testing.TB, src, dir, name string) string {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	return WriteExecutable(tb, dir, name, b)
}

// WriteNoFork is os.WriteFile for a file that will be executed: no fork of this process may
// happen while it is open for writing, or the child holds the fd until its own exec and an exec
// of the file meanwhile (by anyone) fails with "text file busy" (ETXTBSY; golang/go#22315).
// syscall.ForkLock is what every fork of a Go process takes.
func WriteNoFork(path string, data []byte, mode os.FileMode) error {
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	return os.WriteFile(path, data, mode)
}

// Receive returns the next value on ch, and fails tb when none comes within timeout (scaled by
// Slack). what says what was waited for. It is the wait for an event: a process's exit, a
// watch's report, a server's answer.
func Receive[T any](tb testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	tb.Helper()
	timeout = Slack(timeout)
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case v := <-ch:
		return v
	case <-t.C:
		tb.Fatalf("%s: not within %s", what, timeout)
		panic("unreachable") // Fatalf ends the test's goroutine
	}
}

// Context returns a context that ends with tb or after d (scaled by Slack), whichever is first:
// the bound of a test's requests.
func Context(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), Slack(d))
	tb.Cleanup(cancel)
	return ctx
}

// ListenNotify binds a unixgram socket (in a temporary directory, or at an abstract address when
// abstract is set) and points NOTIFY_SOCKET at it until tb ends: the service manager's end of
// sd_notify, for a test that reads what a program says to it.
func ListenNotify(tb testing.TB, abstract bool) *net.UnixConn {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "notify.sock")
	if abstract {
		path = fmt.Sprintf("@watchgod-notify-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	tb.Setenv("NOTIFY_SOCKET", path)
	return c
}

// OpenFds is the number of fds this process has open: a test compares it before and after to
// find an fd leaked.
func OpenFds(tb testing.TB) int {
	tb.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(ents)
}

// MainWithBinary is a TestMain that builds the Go package pkg (as the go command names it) into a
// temporary directory as name, sets *path to it, runs the tests, removes the directory and exits
// with the tests' status: for tests that run a program of the module as a process.
func MainWithBinary(m *testing.M, pkg, name string, path *string) {
	dir, err := os.MkdirTemp("", "watchgod-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*path = filepath.Join(dir, name)
	if out, err := exec.Command("go", "build", "-o", *path, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
