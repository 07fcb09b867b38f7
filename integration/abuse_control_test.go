package integration

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// TestControlAbuse throws bad clients at a running god's control socket: malformed and oversized
// requests in volume, truncated ones, clients trickling one byte a second, a flood of connections
// past the limit, and clients of another uid. Meanwhile a loop of status requests is answered
// within a generous bound, every bad client gets a clear error (or is cut off), the jobs keep
// their pids, and afterwards god holds no more fds or goroutines than before.
func TestControlAbuse(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	root := os.Geteuid() == 0
	if root {
		g.socket = reachableSocket(t)
	}
	checks := healthy(t, g)
	writeLoader(t, g.dir, "pair", bashLoader{Jobs: map[string]bashJob{"other": {Exec: sleeper, Auto: autoTrue}}})
	g.start()
	if root {
		if err := os.Chmod(g.socket, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	pids, before := pairRunning(t, g)
	w := watchStatus(g, 3*time.Second, 90*time.Second)

	// Slow clients: one byte a second, eight at once. god's request deadline (5 s) cuts each off
	// with an error, long before the request could be complete.
	var slow sync.WaitGroup
	slowErrs := make(chan string, 8)
	for i := range 8 {
		slow.Add(1)
		go func() {
			defer slow.Done()
			slowErrs <- trickle(g.socket, fmt.Sprintf(`{"v":1,"cmd":"status","jobs":["steady"],"pad":"%d"}`+"\n", i))
		}()
	}

	// Malformed requests in volume, from eight clients at once.
	malformed := []string{
		"garbage\n",
		"{\n",
		"[1,2,3]\n",
		"\x00\xff\xfe\n",
		`{"v":1,"cmd":"nosuchcommand"}` + "\n",
		`{"v":1,"cmd":"status","jobs":[1]}` + "\n",
		`{"v":1,"cmd":"logs","lines":-5}` + "\n",
		`{"v":1,"cmd":"stop","jobs":["../../etc/passwd"]}` + "\n",
		`{"v":1,"cmd":"status"}{"v":1}` + "\n",
		strings.Repeat("[", 30000) + strings.Repeat("]", 30000) + "\n",
		`{"v":1,"cmd":"status","jobs":["` + strings.Repeat("a", 60000) + `"]}` + "\n",
	}
	var wg sync.WaitGroup
	errs := make(chan string, 1000)
	var seenMu sync.Mutex
	seen := map[string]string{} // request -> god's error, for the log
	for wk := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				req := malformed[(wk*25+i)%len(malformed)]
				why, bad := rawReplyErr(g.socket, []byte(req))
				if bad != "" {
					errs <- fmt.Sprintf("malformed %.40q: %s", req, bad)
				}
				seenMu.Lock()
				seen[fmt.Sprintf("%.40q", req)] = why
				seenMu.Unlock()
			}
		}()
	}
	wg.Wait()
	for req, why := range seen {
		t.Logf("malformed %s -> %.150s", req, why)
	}

	// Oversized lines, ten at once: 64 KiB + 1 with its newline, and 4 MiB without one.
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			big := bytes.Repeat([]byte("x"), control.MaxRequestSize+1)
			if i%2 == 1 {
				big = bytes.Repeat([]byte(`{"v":1,`), 4<<20/7)
			}
			res, err := rawResponse(g.socket, append(big, '\n'), 10*time.Second)
			if err != nil {
				errs <- fmt.Sprintf("oversized %d bytes: %v", len(big), err)
			} else if res.OK || !strings.Contains(res.Error, "too large") {
				errs <- fmt.Sprintf("oversized %d bytes: reply %+v, want a too-large error", len(big), res)
			}
		}()
	}
	wg.Wait()

	// Truncated requests: half a line, then the client leaves. god logs them and moves on.
	from := g.mark()
	for range 50 {
		conn, err := net.Dial("unix", g.socket)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write([]byte(`{"v":1,"cmd":"sta`))
		conn.Close()
	}
	g.waitLogFrom(from, 10*time.Second, "a truncated request logged", func(r record) bool {
		return strings.Contains(r.Raw, "request truncated")
	})

	// Clients of another uid are refused by name, five at once.
	if root {
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := runCLI(t, &syscall.Credential{Uid: 65534, Gid: 65534}, "status", "--socket", g.socket)
				if r.code != 1 || !strings.Contains(r.stderr, "permission denied") {
					errs <- fmt.Sprintf("status as uid 65534: exit %d, stderr %q; want 1 and permission denied", r.code, r.stderr)
				}
			}()
		}
		wg.Wait()
	} else {
		t.Log("not root: the other-uid part is skipped")
	}

	// A flood past the connection limit: the connections beyond it are told "busy" at once.
	const flood = control.DefaultMaxConns + 172
	conns := make([]net.Conn, 0, flood)
	for range flood {
		c, err := net.Dial("unix", g.socket)
		if err != nil {
			t.Fatalf("flood: dial %d: %v", len(conns)+1, err)
		}
		conns = append(conns, c)
	}
	// Read every connection at once: those past the limit have their answer already; the others
	// are held by god, waiting for a request, and time out here.
	replies := make([]string, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(time.Second))
			replies[i], _ = bufio.NewReader(c).ReadString('\n')
		}()
	}
	wg.Wait()
	busy := 0
	for _, line := range replies {
		var res control.Response
		switch {
		case line == "":
		case json.Unmarshal([]byte(line), &res) == nil && strings.HasPrefix(res.Error, "busy:"):
			busy++
		default:
			errs <- fmt.Sprintf("flood: unexpected reply %q", line)
		}
	}
	for _, c := range conns {
		c.Close()
	}
	t.Logf("flood of %d connections: %d told busy", flood, busy)
	if busy < flood-control.DefaultMaxConns {
		errs <- fmt.Sprintf("flood of %d connections: only %d told busy, want at least %d", flood, busy, flood-control.DefaultMaxConns)
	}

	slow.Wait()
	close(slowErrs)
	for e := range slowErrs {
		if e != "" {
			errs <- e
		}
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	// After the flood, status is served again, and the jobs never noticed.
	eventually(t, 10*time.Second, "status answered after the flood", func() bool {
		res, err := statusOnce(g.socket, 3*time.Second)
		return err == nil && res.OK
	})
	w.judge(t)
	sameJobs(g, pids)
	checked := lines(checks)
	eventually(t, 5*time.Second, "steady still checked", func() bool { return lines(checks) > checked })
	after, bad := g.settle(before, leakBounds{fds: 2, goroutines: 6}, 15*time.Second)
	t.Logf("after:  %s", after)
	if len(bad) > 0 {
		t.Errorf("god leaked: %s", strings.Join(bad, "; "))
	}
}

// rawReplyErr sends one malformed request and returns god's error; bad is "" when god answered
// with a failed result that says why, else what was wrong with its answer.
func rawReplyErr(socket string, payload []byte) (why, bad string) {
	res, err := rawResponse(socket, payload, 10*time.Second)
	if err != nil {
		return "", err.Error()
	}
	if res.OK || res.Error == "" || res.Type != control.TypeResult {
		return res.Error, fmt.Sprintf("reply %+v, want a failed result with an error", res)
	}
	return res.Error, ""
}

// trickle sends req one byte a second (at most 30 bytes) and returns "" when god cut it off with a
// timeout error within 12 s, or what went wrong.
func trickle(socket, req string) string {
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return "slow client: dial: " + err.Error()
	}
	defer conn.Close()
	t0 := time.Now()
	conn.SetReadDeadline(t0.Add(12 * time.Second))
	reply := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			line = "no reply: " + err.Error()
		}
		reply <- line
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; i < len(req) && i < 30; i++ {
		if _, err := conn.Write([]byte{req[i]}); err != nil {
			break // god closed the connection: its reply is waiting
		}
		select {
		case line := <-reply:
			return judgeTrickle(line, time.Since(t0))
		case <-tick.C:
		}
	}
	return judgeTrickle(<-reply, time.Since(t0))
}

func judgeTrickle(line string, took time.Duration) string {
	var res control.Response
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return fmt.Sprintf("slow client: after %s: %q is not a response", took.Round(time.Millisecond), line)
	}
	if res.OK || !strings.Contains(res.Error, "not received within") {
		return fmt.Sprintf("slow client: after %s: reply %+v, want a request-deadline error", took.Round(time.Millisecond), res)
	}
	return ""
}
