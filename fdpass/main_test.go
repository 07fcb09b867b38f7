package fdpass

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// childEnv selects what the test binary does when a test re-executes it.
const childEnv = "FDPASS_TEST_CHILD"

// TestMain lets the test binary act as the Go shim (RunShimIfRequested, as
// god will) and as the child processes the tests start.
func TestMain(m *testing.M) {
	RunShimIfRequested()
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "listen":
		childListen()
	case "inherited":
		childInherited()
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", childEnv, os.Getenv(childEnv))
		os.Exit(2)
	}
}

// listenReport is what childListen prints as JSON.
type listenReport struct {
	Pid       int
	ListenPID string
	Names     []string
	Err       string
}

// childListen reports its pid and LISTEN_PID, takes its sockets with
// go-systemd's activation package (which checks LISTEN_PID), then accepts
// one connection on the first and greets it, proving the socket works.
func childListen() {
	rep := listenReport{Pid: os.Getpid(), ListenPID: os.Getenv("LISTEN_PID")}
	byName, err := activation.ListenersWithNames()
	if err != nil {
		rep.Err = err.Error()
	}
	var ln net.Listener
	for name, lns := range byName {
		rep.Names = append(rep.Names, name)
		ln = lns[0]
	}
	if ln == nil && rep.Err == "" {
		rep.Err = "no listeners"
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	os.Stdout.Close()
	if ln == nil {
		os.Exit(1)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		fmt.Fprintln(os.Stderr, "child accept:", err)
		os.Exit(1)
	}
	fmt.Fprintf(c, "hello from %d\n", os.Getpid())
	c.Close()
	os.Exit(0)
}

// inheritedReport is what childInherited prints as JSON.
type inheritedReport struct {
	Counts     map[string]int
	Matches    map[string][]bool // per name, per file: Matches against FDPASS_TEST_SPECS
	Cloexec    bool
	EnvLeft    []string
	SecondCall int
}

// inheritedChild runs argv (with env and extra as its fds from 3 on), which must be this test
// binary in childInherited's mode, and returns its report.
func inheritedChild(t testing.TB, path string, argv, env []string, extra ...*os.File) inheritedReport {
	t.Helper()
	out, ws := forkExec(t, path, argv, env, extra...).wait(t)
	if ws.ExitStatus() != 0 {
		t.Fatalf("child: %v, output %q", ws, out)
	}
	var rep inheritedReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	return rep
}

// childInherited calls Inherited twice and reports what it got.
func childInherited() {
	specs := map[string]Spec{}
	for _, s := range strings.Fields(os.Getenv("FDPASS_TEST_SPECS")) {
		sp, err := ParseSpec(s)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		specs[sp.Name] = sp
	}
	m := Inherited()
	rep := inheritedReport{Counts: map[string]int{}, Matches: map[string][]bool{}, Cloexec: true}
	for name, fs := range m {
		rep.Counts[name] = len(fs)
		for _, f := range fs {
			rep.Matches[name] = append(rep.Matches[name], Matches(f, specs[name]))
			if flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				rep.Cloexec = false
			}
		}
	}
	for _, k := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		if _, ok := os.LookupEnv(k); ok {
			rep.EnvLeft = append(rep.EnvLeft, k)
		}
	}
	rep.SecondCall = len(Inherited())
	json.NewEncoder(os.Stdout).Encode(rep)
	os.Exit(0)
}

// selfPath is the test binary, for re-executing it as a child.
func selfPath(t testing.TB) string {
	t.Helper()
	p, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// baseEnv is the test's environment without anything that would confuse a
// child: no LISTEN_* and no shim or child selector.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "LISTEN_") || k == ShimEnv || k == childEnv || k == "FDPASS_TEST_SPECS" || k == "GORACE" {
			continue
		}
		env = append(env, kv)
	}
	// Under -race a child would sleep 1 s at exit to let races be reported.
	return append(env, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
}

// child is a process started with syscall.ForkExec, its stdout a pipe.
type child struct {
	pid    int
	proc   *os.Process
	out    *os.File
	done   chan struct{} // closed when the child is reaped
	ws     syscall.WaitStatus
	errc   chan []byte // the child's stderr, once it is closed
	stderr []byte
}

// forkExec starts path with argv and env via syscall.ForkExec; stdout and
// stderr are pipes, extra become fds 3, 4, .... The child is killed and
// reaped at cleanup if the test did not wait for it.
func forkExec(t testing.TB, path string, argv, env []string, extra ...*os.File) *child {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	files := []uintptr{0, w.Fd(), ew.Fd()}
	for _, f := range extra {
		fd, err := RawFd(f)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, uintptr(fd))
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files})
	w.Close()
	ew.Close()
	for _, f := range extra {
		keepAlive(f)
	}
	if err != nil {
		r.Close()
		er.Close()
		t.Fatalf("fork/exec %s: %v", path, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{pid: pid, proc: proc, out: r, done: make(chan struct{}), errc: make(chan []byte, 1)}
	go func() {
		b, _ := io.ReadAll(io.LimitReader(er, 1<<20))
		er.Close()
		c.errc <- b
	}()
	go func() {
		st, err := proc.Wait()
		if err == nil {
			c.ws = st.Sys().(syscall.WaitStatus)
		}
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			proc.Kill()
			<-c.done
		}
		r.Close()
	})
	return c
}

// wait waits up to 30 s for the child to exit and returns its stdout and
// wait status; past the deadline it kills the child and fails the test.
func (c *child) wait(t testing.TB) ([]byte, syscall.WaitStatus) {
	t.Helper()
	outc := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(c.out)
		outc <- b
	}()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.proc.Kill()
		<-c.done
		t.Fatalf("child %d did not exit within 30 s", c.pid)
	}
	c.stderr = <-c.errc
	return <-outc, c.ws
}

// readLine reads one line of the child's stdout within 30 s.
func (c *child) readLine(t testing.TB) []byte {
	t.Helper()
	c.out.SetReadDeadline(time.Now().Add(30 * time.Second))
	var line []byte
	b := make([]byte, 1)
	for len(line) < 1<<16 {
		n, err := c.out.Read(b)
		if n == 1 {
			if b[0] == '\n' {
				return line
			}
			line = append(line, b[0])
		}
		if err != nil {
			t.Fatalf("child %d stdout: %v (read %q)", c.pid, err, line)
		}
	}
	t.Fatalf("child %d: line too long", c.pid)
	return nil
}

// rawFd is f's fd number (RawFd), failing t when f has none.
func rawFd(t testing.TB, f *os.File) int {
	t.Helper()
	fd, err := RawFd(f)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// fdState reports whether fd is close-on-exec and whether it is
// non-blocking.
func fdState(t testing.TB, f *os.File) (cloexec, nonblock bool) {
	t.Helper()
	fd := rawFd(t, f)
	defer keepAlive(f)
	fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fdfl&unix.FD_CLOEXEC != 0, fl&unix.O_NONBLOCK != 0
}

// sockPort returns the port f is bound to.
func sockPort(t testing.TB, f *os.File) int {
	t.Helper()
	fd := rawFd(t, f)
	defer keepAlive(f)
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	t.Fatalf("%s: not an inet socket: %T", f.Name(), sa)
	return 0
}

// mustOpen parses and opens a spec, closing it at cleanup.
func mustOpen(t testing.TB, spec string) (Spec, *os.File) {
	t.Helper()
	s, err := ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Open(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return s, f
}

// itoa is strconv.Itoa, short for test tables.
func itoa(i int) string { return strconv.Itoa(i) }

// dialGreeting dials addr and reads one line, with deadlines.
func dialGreeting(t testing.TB, network, addr string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read greeting: %v (got %q)", err, b)
	}
	return string(bytes.TrimSpace(b))
}
