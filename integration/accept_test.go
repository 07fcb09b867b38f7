package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// acceptScript is a connection process: it notes itself in a marker file, records how many
// markers exist (the processes running at once, at most), reads a line from stdin and answers
// it with its pid, $REMOTE_ADDR and the socket-activation variables, then removes its marker.
const acceptScript = `#!/bin/sh
m="$MARKS/active.$$"
: > "$m"
set -- "$MARKS"/active.*
echo $# >> "$MARKS/peaks"
IFS= read -r line
echo "$line pid=$$ remote=$REMOTE_ADDR port=$REMOTE_PORT fds=$LISTEN_FDS names=$LISTEN_FDNAMES lpid=$LISTEN_PID"
rm -f "$m"
`

// acceptJob writes the script and returns the accept job serving addr (tcp) with max-connections max.
func acceptJob(t *testing.T, addr string, max int) (bashJob, string) {
	return acceptJobOn(t, "tcp://"+addr, max)
}

// acceptJobOn is acceptJob on a socket address of fdpass's form (tcp://, unix://).
func acceptJobOn(t *testing.T, addr string, max int) (bashJob, string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "conn.sh")
	if err := os.WriteFile(script, []byte(acceptScript), 0o755); err != nil {
		t.Fatal(err)
	}
	marks := filepath.Join(dir, "marks")
	if err := os.Mkdir(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	j := sockJob([]string{"/bin/sh", script}, []string{"conn=" + addr}, nil,
		map[string][]string{"accept": {"true"}, "max-connections": {strconv.Itoa(max)}})
	j.Env = []string{"MARKS=" + marks}
	return j, marks
}

// TestAcceptConnections: an accept job answers 300 connections (20 clients at once; 1000 with
// WATCHGOD_ACCEPT_CONNECTIONS=1000, 46 s without -race on 2 cores), each by a process of its own
// (as many distinct pids) with the connection as stdin, stdout and fd 3, and never runs more than
// max-connections (5) at once; the job stays in run throughout.
func TestAcceptConnections(t *testing.T) {
	t.Parallel()
	const clients, maxConns = 20, 5
	total := 300
	if n, err := strconv.Atoi(os.Getenv("WATCHGOD_ACCEPT_CONNECTIONS")); err == nil && n > 0 {
		total = n
	}
	addr := freePort(t)
	job, marks := acceptJob(t, addr, maxConns)
	g := newGod(t)
	writeLoader(t, g.dir, "acc", bashLoader{Jobs: map[string]bashJob{"acc": job}})
	g.start()
	g.waitState("acc", "run", 10*time.Second)

	var (
		mu   sync.Mutex
		pids = map[int]bool{}
		errs []string
		next = make(chan int)
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(4 * time.Minute)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				ans, err := askLine(addr, fmt.Sprintf("hello-%d", i), deadline)
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Sprintf("connection %d: %v", i, err))
				} else if want := fmt.Sprintf("hello-%d pid=", i); !strings.HasPrefix(ans, want) ||
					field(ans, "remote") != "127.0.0.1" || field(ans, "fds") != "1" || field(ans, "names") != "connection" ||
					field(ans, "lpid") != field(ans, "pid") || field(ans, "port") == "" {
					errs = append(errs, fmt.Sprintf("connection %d: answer %q", i, ans))
				} else {
					pid, _ := strconv.Atoi(field(ans, "pid"))
					pids[pid] = true
				}
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := range total {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d of %d connections failed, first: %s", len(errs), total, errs[0])
	}
	if len(pids) != total {
		t.Errorf("%d distinct pids for %d connections; want one process each", len(pids), total)
	}
	peaks, err := os.ReadFile(filepath.Join(marks, "peaks"))
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	lines := strings.Fields(string(peaks))
	for _, l := range lines {
		n, _ := strconv.Atoi(l)
		peak = max(peak, n)
	}
	if len(lines) != total || peak > maxConns || peak < 1 {
		t.Errorf("%d processes noted, at most %d at once; want %d, at most %d", len(lines), peak, total, maxConns)
	}
	st := g.waitJob("acc", 30*time.Second, "no connection process left", func(st control.JobStatus) bool {
		return st.State == "run" && st.Connections == 0
	})
	if st.Restarts != 0 {
		t.Errorf("restarts %d; a connection's exit must not restart the job", st.Restarts)
	}
	t.Logf("%d connections, %d clients at once, max-connections %d: %v (%.0f/s), at most %d processes at once",
		total, clients, maxConns, elapsed.Round(time.Millisecond), float64(total)/elapsed.Seconds(), peak)
}

// TestAcceptStop: god status counts the running connection processes, god reload keeps them, and
// god stop ends them (a process blocked reading its connection gets SIGTERM) and stops accepting,
// and god start accepts again.
func TestAcceptStop(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	job, _ := acceptJob(t, addr, 5)
	g := newGod(t)
	writeLoader(t, g.dir, "acc", bashLoader{Jobs: map[string]bashJob{"acc": job}})
	g.start()
	g.waitState("acc", "run", 10*time.Second)
	var conns []net.Conn
	for range 3 {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	g.waitJob("acc", 20*time.Second, "3 connections", func(st control.JobStatus) bool { return st.Connections == 3 })
	// A reload renews the accept loop; the open connections keep their processes.
	g.mustCLI("reload", "acc")
	if ans, err := askLine(addr, "after-reload", time.Now().Add(20*time.Second)); err != nil || !strings.HasPrefix(ans, "after-reload pid=") {
		t.Fatalf("after reload: %q, %v", ans, err)
	}
	g.waitJob("acc", 20*time.Second, "3 connections after reload", func(st control.JobStatus) bool {
		return st.State == "run" && st.Connections == 3
	})
	if out := g.mustCLI("status"); !strings.Contains(out.stdout, "3 connections") {
		t.Errorf("god status does not show the connections:\n%s", out.stdout)
	}
	g.mustCLI("stop", "acc")
	g.waitState("acc", "stopped", 20*time.Second)
	for i, c := range conns {
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			t.Errorf("connection %d answered after stop; want it closed by its process's end", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("connection %d still open after stop", i)
		}
	}
	g.mustCLI("start", "acc")
	g.waitState("acc", "run", 20*time.Second)
	if ans, err := askLine(addr, "again", time.Now().Add(20*time.Second)); err != nil || !strings.HasPrefix(ans, "again pid=") {
		t.Fatalf("after start: %q, %v", ans, err)
	}
}

// TestAcceptUnix: an accept job on a unix socket answers with REMOTE_ADDR empty (an unnamed peer)
// and no REMOTE_PORT.
func TestAcceptUnix(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "acc.sock")
	job, _ := acceptJobOn(t, "unix://"+path, 2)
	g := newGod(t)
	writeLoader(t, g.dir, "acc", bashLoader{Jobs: map[string]bashJob{"acc": job}})
	g.start()
	g.waitState("acc", "run", 10*time.Second)
	for i := range 3 {
		c, err := net.DialTimeout("unix", path, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprintf(c, "u%d\n", i)
		ans, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(ans, fmt.Sprintf("u%d pid=", i)) || !strings.Contains(ans, " remote= port= fds=1 ") {
			t.Errorf("connection %d: %q, %v", i, ans, err)
		}
	}
}

// askLine sends line on a new connection to addr and reads one answer line.
func askLine(addr, line string, deadline time.Time) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Until(deadline))
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	if _, err := fmt.Fprintln(c, line); err != nil {
		return "", err
	}
	ans, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(ans, "\n"), err
}

// startAcceptGod starts god (on a copy of its binary, for god upgrade) with the accept job acc
// on a free port, max-connections 5, and opens a connection that stays open: its address, the
// job's marks directory and the held connection.
func startAcceptGod(t *testing.T) (g *god, addr, marks string, held net.Conn) {
	t.Helper()
	addr = freePort(t)
	job, marks := acceptJob(t, addr, 5)
	g = newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god")
	writeLoader(t, g.dir, "acc", bashLoader{Jobs: map[string]bashJob{"acc": job}})
	g.start()
	g.waitState("acc", "run", 10*time.Second)
	held, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { held.Close() })
	return g, addr, marks, held
}

// TestAcceptSurvivesUpgrade: god upgrade (god re-executes itself) keeps an accept job: a
// connection open across it is still answered by its own process, the new image counts it in
// god status and accepts new connections, and god stop then ends the old connection's process
// as well (nothing of the old image's accepting is left unsupervised).
func TestAcceptSurvivesUpgrade(t *testing.T) {
	t.Parallel()
	g, addr, _, held := startAcceptGod(t)
	g.waitJob("acc", 20*time.Second, "1 connection", func(st control.JobStatus) bool { return st.Connections == 1 })
	g.upgrade()
	g.waitJob("acc", 20*time.Second, "run with the held connection counted", func(st control.JobStatus) bool {
		return st.State == "run" && st.Connections == 1
	})
	if ans, err := askLine(addr, "after-upgrade", time.Now().Add(20*time.Second)); err != nil || !strings.HasPrefix(ans, "after-upgrade pid=") {
		t.Fatalf("new connection after upgrade: %q, %v", ans, err)
	}
	held.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintln(held, "held")
	if ans, err := bufio.NewReader(held).ReadString('\n'); err != nil || !strings.HasPrefix(ans, "held pid=") {
		t.Fatalf("the connection held across the upgrade: %q, %v", ans, err)
	}
	held2, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer held2.Close()
	g.waitJob("acc", 20*time.Second, "1 connection", func(st control.JobStatus) bool { return st.Connections == 1 })
	g.upgrade()
	g.mustCLI("stop", "acc")
	g.waitState("acc", "stopped", 20*time.Second)
	held2.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := bufio.NewReader(held2).ReadString('\n'); err == nil {
		t.Errorf("connection answered after stop; want it closed by its process's end")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("connection held across an upgrade still open after stop: its process was not ended")
	}
}

// TestAcceptGodKilled: after a kill -9 of god, the new god ends the connection processes the
// dead one left (no orphan keeps serving unsupervised) and accepts on the job's socket again.
func TestAcceptGodKilled(t *testing.T) {
	t.Parallel()
	g, addr, marks, _ := startAcceptGod(t)
	var conn int
	eventually(t, 20*time.Second, "the held connection's process", func() bool {
		ms, _ := filepath.Glob(filepath.Join(marks, "active.*"))
		if len(ms) != 1 {
			return false
		}
		conn, _ = strconv.Atoi(strings.TrimPrefix(filepath.Ext(ms[0]), "."))
		return conn > 0
	})
	g.addPid(conn, "connection process")
	// The state file is written shortly after the processes change: wait for it.
	eventually(t, 10*time.Second, "the state file naming the connection process", func() bool {
		b, _ := os.ReadFile(strings.TrimSuffix(g.socket, ".sock") + "-state.json")
		return strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, conn))
	})
	g2, _ := killAndReplace(t, g, nil)
	g2.waitState("acc", "run", 20*time.Second)
	if ans, err := askLine(addr, "after-crash", time.Now().Add(20*time.Second)); err != nil || !strings.HasPrefix(ans, "after-crash pid=") {
		g2.fatalf("new connection after the new god's start: %q, %v", ans, err)
	}
	g2.waitLog(20*time.Second, "the dead god's connection process ended", func(r record) bool {
		return r.Msg == "recovery: ending an orphan of the dead god" && r.int("pid") == conn
	})
	eventually(t, 20*time.Second, "the dead god's connection process gone", func() bool { return !alive(conn) })
}

// TestAcceptFullStops: with every max-connections slot taken, god reload, god upgrade and god
// stop of an accept job still finish (its accept loop waits for a free slot, and must still hear
// that it is to stop), and the waiting connection is served after the reload and the upgrade.
func TestAcceptFullStops(t *testing.T) {
	t.Parallel()
	g, addr, _, held := startAcceptGod(t) // max-connections 5: this one and 4 more
	conns := []net.Conn{held}
	for range 4 {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	g.waitJob("acc", 20*time.Second, "5 connections", func(st control.JobStatus) bool { return st.Connections == 5 })
	g.mustCLI("reload", "acc")
	g.upgrade()
	g.waitJob("acc", 20*time.Second, "run with 5 connections", func(st control.JobStatus) bool {
		return st.State == "run" && st.Connections == 5
	})
	// One connection ends: its slot serves a new one.
	conns[0].SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintln(conns[0], "first")
	if ans, err := bufio.NewReader(conns[0]).ReadString('\n'); err != nil || !strings.HasPrefix(ans, "first pid=") {
		t.Fatalf("first held connection: %q, %v", ans, err)
	}
	if ans, err := askLine(addr, "next", time.Now().Add(20*time.Second)); err != nil || !strings.HasPrefix(ans, "next pid=") {
		t.Fatalf("a new connection once a slot is free: %q, %v", ans, err)
	}
	g.waitJob("acc", 20*time.Second, "4 connections", func(st control.JobStatus) bool { return st.Connections == 4 })
	for range 1 {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	g.waitJob("acc", 20*time.Second, "5 connections again", func(st control.JobStatus) bool { return st.Connections == 5 })
	g.mustCLI("stop", "acc")
	g.waitState("acc", "stopped", 20*time.Second)
}
