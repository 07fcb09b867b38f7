package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// Helpers of the socket tests (sock_*_test.go). Their job binary is sockjobBin, built by TestMain
// from testdata/sockjob.

// freeUDP returns a loopback UDP address no one is bound to right now.
func freeUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// echoReply is a bash snippet that answers a request with the godv1 array items.
func echoReply(items ...string) string { return "echo " + sq(jsonArray(items...)) }

// sockJob is a job of a bash loader that runs argv with the given sockets (NAME=ADDR items),
// readiness (nil: default) and extra properties (prop -> reply items).
func sockJob(argv, listen, ready []string, extra map[string][]string) bashJob {
	props := map[string]string{}
	if listen != nil {
		props["listen"] = echoReply(listen...)
	}
	if ready != nil {
		props["ready"] = echoReply(ready...)
	}
	for p, v := range extra {
		props[p] = echoReply(v...)
	}
	return bashJob{Exec: argv, Auto: autoTrue, Props: props}
}

// ask connects to addr (network tcp or unix), reads the whole answer within timeout and returns
// it. A refused or failed connection is an error: the sockets must never refuse.
func ask(network, addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(c)
	if err != nil {
		return string(b), fmt.Errorf("read from %s %s: %w", network, addr, err)
	}
	return string(b), nil
}

// askUDP sends one datagram to addr and returns the first answer within timeout.
func askUDP(addr string, timeout time.Duration) (string, error) {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return "", fmt.Errorf("udp %s: %w", addr, err)
	}
	return string(buf[:n]), nil
}

// answeredBy extracts P from an answer "NAME pid=P gen=G", or 0.
func answeredBy(answer string) int {
	_, rest, ok := strings.Cut(answer, " pid=")
	if !ok {
		return 0
	}
	f, _, _ := strings.Cut(rest, " ")
	pid, _ := strconv.Atoi(f)
	return pid
}

// jobLine waits for a stdout line of job that starts with prefix, logged from index from on.
func (g *god) jobLine(from int, job, prefix string, timeout time.Duration) string {
	g.t.Helper()
	r := g.waitLogFrom(from, timeout, job+" printing "+prefix, func(r record) bool {
		return r.str("job") == job && r.str("stream") == "stdout" && strings.HasPrefix(r.Msg, prefix)
	})
	return r.Msg
}

// socketInodes returns the inodes of the sockets pid holds, from /proc/PID/fd ("socket:[INODE]").
func socketInodes(t testing.TB, pid int) map[uint64]bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		ino, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 10, 64)
		if err == nil {
			out[ino] = true
		}
	}
	return out
}

// plainEnv is the test's environment without anything of god's or systemd's protocols, for
// processes the tests start themselves.
func plainEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "GOD_") || strings.HasPrefix(k, "LISTEN_") || strings.HasPrefix(k, "WATCHDOG_") ||
			k == "NOTIFY_SOCKET" || k == "SOCKJOB_LISTEN" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}

// lineProc is a process the test started itself, with its stdout read line by line.
type lineProc struct {
	cmd   *exec.Cmd
	lines chan string // closed at EOF
	errb  *testutil.LockedBuffer
}

// startLineProc starts argv with env; cleanup kills it (SIGKILL) and waits.
func startLineProc(t testing.TB, env []string, argv ...string) *lineProc {
	t.Helper()
	p := &lineProc{cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 100), errb: &testutil.LockedBuffer{}}
	p.cmd.Env = env
	p.cmd.Stderr = p.errb
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
	})
	return p
}

// line waits for the next stdout line that starts with prefix (earlier lines are skipped).
func (p *lineProc) line(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	timeout = testutil.Slack(timeout)
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("%s exited before printing %q; stderr:\n%s", p.cmd.Path, prefix, p.errb.String())
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("%s printed no %q within %s; stderr:\n%s", p.cmd.Path, prefix, timeout, p.errb.String())
		}
	}
}

// field returns the value of key=VALUE in a line of space-separated fields.
func field(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
