package integration

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
)

// sdMessage is one datagram god sent to its NOTIFY_SOCKET, with the sender's pid from the kernel.
type sdMessage struct {
	pid  int
	time time.Time
	vars map[string]string // KEY=VALUE lines
	raw  string
}

// fakeSystemd is the receiving end of NOTIFY_SOCKET, as systemd runs it for a Type=notify
// service: a unixgram socket with SO_PASSCRED, so every message carries its sender's pid.
type fakeSystemd struct {
	t    testing.TB
	path string
	conn *net.UnixConn

	mu      sync.Mutex
	msgs    []sdMessage
	changed chan struct{} // closed (and replaced) when a message arrives
}

// newFakeSystemd listens on a fresh socket in a temporary directory until the test ends.
func newFakeSystemd(t testing.TB) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil || serr != nil {
		t.Fatalf("SO_PASSCRED: %v %v", err, serr)
	}
	s := &fakeSystemd{t: t, path: path, conn: conn, changed: make(chan struct{})}
	done := make(chan struct{})
	go s.read(done)
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

// read collects datagrams until the socket is closed.
func (s *fakeSystemd) read(done chan<- struct{}) {
	defer close(done)
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.t.Errorf("notify socket: %v", err)
			}
			return
		}
		m := sdMessage{time: time.Now(), raw: string(buf[:n]), vars: map[string]string{}}
		if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range cmsgs {
				if cred, err := unix.ParseUnixCredentials(&c); err == nil {
					m.pid = int(cred.Pid)
				}
			}
		}
		for _, line := range strings.Split(m.raw, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				m.vars[k] = v
			}
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		close(s.changed)
		s.changed = make(chan struct{})
		s.mu.Unlock()
	}
}

// mark is the number of messages so far, for waitFrom.
func (s *fakeSystemd) mark() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// all returns a copy of every message so far.
func (s *fakeSystemd) all() []sdMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// waitFrom waits for a message matching pred among those from index from on and returns its
// index; it fails the test after timeout, listing what came.
func (s *fakeSystemd) waitFrom(from int, timeout time.Duration, what string, pred func(sdMessage) bool) int {
	s.t.Helper()
	timeout = testutil.Slack(timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		for i := from; i < len(s.msgs); i++ {
			if pred(s.msgs[i]) {
				s.mu.Unlock()
				return i
			}
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			s.t.Fatalf("no sd_notify message %s within %s; got:\n%s", what, timeout, s.dump())
		}
	}
}

// dump lists the messages received, for a failure.
func (s *fakeSystemd) dump() string {
	var b strings.Builder
	for _, m := range s.all() {
		b.WriteString(m.time.Format("15:04:05.000") + " pid " + strconv.Itoa(m.pid) + ": " + strings.ReplaceAll(m.raw, "\n", `\n`) + "\n")
	}
	return b.String()
}

// sdHas reports whether a message sets key to value.
func sdHas(key, value string) func(sdMessage) bool {
	return func(m sdMessage) bool { v, ok := m.vars[key]; return ok && v == value }
}

// sdMonotonicUsec is CLOCK_MONOTONIC in microseconds, the clock of MONOTONIC_USEC.
func sdMonotonicUsec(t testing.TB) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

// checkReloading asserts that message i is RELOADING=1 with a MONOTONIC_USEC taken between
// before and after (microseconds of CLOCK_MONOTONIC).
func (s *fakeSystemd) checkReloading(i int, before, after int64) {
	s.t.Helper()
	m := s.all()[i]
	usec, err := strconv.ParseInt(m.vars["MONOTONIC_USEC"], 10, 64)
	if err != nil {
		s.t.Fatalf("RELOADING=1 without a valid MONOTONIC_USEC: %q", m.raw)
	}
	if usec < before || usec > after {
		s.t.Errorf("MONOTONIC_USEC=%d not within the reload [%d, %d]", usec, before, after)
	}
}

// TestDeployNotifySystemd plays systemd's part for a Type=notify god with WatchdogSec=: a
// NOTIFY_SOCKET and WATCHDOG_USEC in god's environment. god says READY=1 once its auto job is
// started, keeps STATUS= current, frames each rescan (`god rescan` and SIGHUP) with RELOADING=1
// and MONOTONIC_USEC then READY=1, pings WATCHDOG=1 at half the interval, and says STOPPING=1 on
// SIGTERM. Every message comes from god's own pid (NotifyAccess=main would drop the others), and
// the job sees none of god's systemd variables.
func TestDeployNotifySystemd(t *testing.T) {
	t.Parallel()
	sd := newFakeSystemd(t)
	const watchdog = 600 * time.Millisecond
	g := newGod(t)
	// No WATCHDOG_PID: systemd sets it to the main pid, which god's is; unset means the same.
	g.env = []string{
		"NOTIFY_SOCKET=" + sd.path,
		"WATCHDOG_USEC=" + strconv.FormatInt(watchdog.Microseconds(), 10),
	}
	writeLoader(t, g.dir, "svc", bashLoader{Jobs: map[string]bashJob{
		"svc": {Exec: sleeper, Auto: autoTrue},
	}})
	g.start()
	godPid := g.cmd.Process.Pid

	ready := sd.waitFrom(0, 10*time.Second, "READY=1 at start-up", sdHas("READY", "1"))
	// READY=1 comes once the auto job was started: it has a process by now, or will at once.
	pid := pidOf(t, g.waitState("svc", "run", 10*time.Second))
	sd.waitFrom(ready, 5*time.Second, `STATUS= "1 job, 1 running"`, sdHas("STATUS", "1 job, 1 running"))

	env := envOf(pid)
	for _, k := range []string{"WATCHDOG_USEC=", "NOTIFY_SOCKET=" + sd.path} {
		for _, kv := range env {
			if strings.HasPrefix(kv, k) {
				t.Errorf("job inherited god's %s", kv)
			}
		}
	}

	// `god rescan`: what ExecReload=god rescan runs for `systemctl reload`.
	before, from := sdMonotonicUsec(t), sd.mark()
	g.mustCLI("rescan")
	after := sdMonotonicUsec(t)
	r := sd.waitFrom(from, 5*time.Second, "RELOADING=1 for god rescan", sdHas("RELOADING", "1"))
	sd.checkReloading(r, before, after)
	sd.waitFrom(r+1, 5*time.Second, "READY=1 after god rescan", sdHas("READY", "1"))

	// SIGHUP: the same, asynchronously.
	before, from = sdMonotonicUsec(t), sd.mark()
	g.signal(syscall.SIGHUP)
	r = sd.waitFrom(from, 5*time.Second, "RELOADING=1 for SIGHUP", sdHas("RELOADING", "1"))
	sd.checkReloading(r, before, sdMonotonicUsec(t))
	sd.waitFrom(r+1, 5*time.Second, "READY=1 after SIGHUP", sdHas("READY", "1"))

	// A job change shows in STATUS=.
	from = sd.mark()
	g.mustCLI("stop", "svc")
	sd.waitFrom(from, 5*time.Second, `STATUS= "1 job, 0 running"`, sdHas("STATUS", "1 job, 0 running"))

	// Watchdog: pings at about half of WATCHDOG_USEC, never as far apart as the interval itself.
	from = sd.mark()
	p := from
	for range 4 {
		p = sd.waitFrom(p, 2*watchdog, "WATCHDOG=1", sdHas("WATCHDOG", "1")) + 1
	}
	var last time.Time
	for _, m := range sd.all()[from:] {
		if m.vars["WATCHDOG"] != "1" {
			continue
		}
		if !last.IsZero() {
			if gap := m.time.Sub(last); gap > watchdog*9/10 {
				t.Errorf("watchdog pings %s apart; WATCHDOG_USEC is %s", gap, watchdog)
			}
		}
		last = m.time
	}

	// `god upgrade`: RELOADING=1 (with MONOTONIC_USEC) from the old image, READY=1 from the new
	// one (same pid), and the watchdog pings go on after the re-exec.
	before, from = sdMonotonicUsec(t), sd.mark()
	g.mustCLI("upgrade")
	r = sd.waitFrom(from, 5*time.Second, "RELOADING=1 for god upgrade", sdHas("RELOADING", "1"))
	sd.checkReloading(r, before, sdMonotonicUsec(t))
	r = sd.waitFrom(r+1, 10*time.Second, "READY=1 after god upgrade", sdHas("READY", "1"))
	p = r
	for range 3 {
		p = sd.waitFrom(p, 2*watchdog, "WATCHDOG=1 after the upgrade", sdHas("WATCHDOG", "1")) + 1
	}

	from = sd.mark()
	g.signal(syscall.SIGTERM)
	sd.waitFrom(from, 10*time.Second, "STOPPING=1 on SIGTERM", sdHas("STOPPING", "1"))
	if code := g.wait(10 * time.Second); code != 0 {
		t.Errorf("god exited %d after SIGTERM, want 0", code)
	}
	for _, m := range sd.all() {
		if m.pid != godPid {
			t.Errorf("message %q from pid %d, not god (%d): NotifyAccess=main would drop it", m.raw, m.pid, godPid)
		}
	}
	if os.Getenv("IT_DEBUG") != "" {
		t.Logf("sd_notify messages:\n%s", sd.dump())
	}
	if n := strings.Count(sd.dump(), "STOPPING=1"); n != 1 {
		t.Errorf("STOPPING=1 sent %d times, want once:\n%s", n, sd.dump())
	}
}

// TestDeployNotifyWatchdogPid: with WATCHDOG_PID naming another process (systemd watches the
// main pid; god is not it, say under a wrapper), god does not ping; it still says READY=1.
func TestDeployNotifyWatchdogPid(t *testing.T) {
	t.Parallel()
	sd := newFakeSystemd(t)
	g := newGod(t)
	g.env = []string{"NOTIFY_SOCKET=" + sd.path, "WATCHDOG_USEC=100000", "WATCHDOG_PID=" + strconv.Itoa(os.Getpid())}
	g.start()
	ready := sd.waitFrom(0, 10*time.Second, "READY=1", sdHas("READY", "1"))
	// Wait for a message god sends after READY=1 on a rescan, by then a 50 ms ping would have come.
	g.mustCLI("rescan")
	sd.waitFrom(ready+1, 5*time.Second, "READY=1 after rescan", sdHas("READY", "1"))
	for _, m := range sd.all() {
		if m.vars["WATCHDOG"] == "1" {
			t.Fatalf("god pinged although WATCHDOG_PID=%d is not god:\n%s", os.Getpid(), sd.dump())
		}
	}
}
