package integration

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// god --metrics runs the Prometheus exporter as a child process (cmd/god-metrics) on a socket god
// keeps: these tests kill it, stop god under it, upgrade god across it and leave it out.

// exporterPid waits until god has exactly one live god-metrics child other than not, and returns
// its pid; the orphan check of the test's cleanup then knows it too.
func exporterPid(g *god, not int, timeout time.Duration) int {
	g.t.Helper()
	var live []int
	if !testutil.Poll(timeout, func() bool {
		live = live[:0]
		for _, pid := range childrenOf(g.cmd.Process.Pid) {
			if pid != not && alive(pid) && procComm(pid) == "god-metrics" {
				live = append(live, pid)
			}
		}
		return len(live) == 1
	}) {
		g.fatalf("god runs %d metrics exporters other than pid %d after %s, want 1: %v", len(live), not, timeout, live)
	}
	g.addPid(live[0], "metrics exporter")
	return live[0]
}

// procComm is the command name of pid ("" when it is gone).
func procComm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// listenInode finds the inode of the TCP socket listening on addr (an IPv4 host:port), in
// /proc/net/tcp: the identity of the socket, whoever holds it.
func listenInode(t testing.TB, addr string) uint64 {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(host).To4()
	p, _ := strconv.Atoi(port)
	// The kernel writes the address as the 32-bit value in host order (little-endian here).
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 9 && fields[1] == want && fields[3] == "0A" { // 0A: LISTEN
			inode, err := strconv.ParseUint(fields[9], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return inode
		}
	}
	t.Fatalf("no socket listens on %s (%s) in /proc/net/tcp", addr, want)
	return 0
}

// TestMetricsExporterRestart: an exporter killed by SIGKILL is started again, the next scrapes
// work, and process_* metrics describe god before and after (not the exporter: its start time
// changed, god's did not).
func TestMetricsExporterRestart(t *testing.T) {
	t.Parallel()
	addr := freePort(t)
	g := startGod(t, "--metrics", addr)
	url := "http://" + addr + "/metrics"
	before := waitMetrics(t, g, url, "first scrape", func(m metricSet) bool { return m.has("god_jobs") })
	old := exporterPid(g, 0, 10*time.Second)
	mark := g.mark()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	g.waitLogFrom(mark, 10*time.Second, "the exporter's death logged", func(r record) bool {
		return r.Msg == "helper ended; restarting" && r.str("helper") == "god-metrics" && strings.Contains(r.str("err"), "SIGKILL")
	})
	next := exporterPid(g, old, 10*time.Second)
	after := waitMetrics(t, g, url, "a scrape after the exporter was killed", func(m metricSet) bool { return m.has("god_jobs") })
	start := "process_start_time_seconds"
	if !before.has(start) || before.get(start) != after.get(start) {
		t.Errorf("%s %v before, %v after the exporter was replaced (pid %d -> %d): the process metrics are not god's",
			start, before.get(start), after.get(start), old, next)
	}
}

// TestMetricsExporterStops: god's shutdown stops the exporter and waits for it, and a god killed
// by SIGKILL, which cannot stop anything, still leaves no exporter behind (it watches god).
func TestMetricsExporterStops(t *testing.T) {
	t.Parallel()
	t.Run("shutdown", func(t *testing.T) {
		t.Parallel()
		g := startGod(t, "--metrics", freePort(t))
		pid := exporterPid(g, 0, 10*time.Second)
		g.signal(syscall.SIGTERM)
		if code := g.wait(20 * time.Second); code != 0 {
			g.fatalf("god exited %d after SIGTERM", code)
		}
		if alive(pid) {
			g.fatalf("metrics exporter pid %d still runs after god exited", pid)
		}
		if len(g.logs(0, func(r record) bool { return r.Msg == "helper stopped" && r.int("pid") == pid })) != 1 {
			g.fatalf("god did not log the exporter's stop")
		}
	})
	t.Run("god killed", func(t *testing.T) {
		t.Parallel()
		g := startGod(t, "--metrics", freePort(t))
		pid := exporterPid(g, 0, 10*time.Second)
		if err := g.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-g.exited
		eventually(t, 10*time.Second, "metrics exporter gone after god was killed", func() bool { return !alive(pid) })
	})
}

// TestMetricsAcrossUpgrade: scrapes go on through three `god upgrade`s without one failing. The
// old image stops its exporter before it re-executes; the listening socket stays open in god
// (the same inode throughout), so scrapes in between wait in its queue for the new image's
// exporter.
func TestMetricsAcrossUpgrade(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	dir := t.TempDir()
	g.bin = copyExecutable(t, godBin, dir, "god")
	copyExecutable(t, metricsBin, dir, "god-metrics")
	addr := freePort(t)
	g.start("--metrics", addr)
	url := "http://" + addr + "/metrics"
	waitMetrics(t, g, url, "first scrape", func(m metricSet) bool { return m.has("god_jobs") })
	godPid := g.cmd.Process.Pid
	inode := listenInode(t, addr)
	if !socketInodes(t, godPid)[inode] {
		t.Fatalf("god does not hold the metrics socket (inode %d) itself", inode)
	}

	var mu sync.Mutex
	var ok int
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				m, err := scrape(url)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case !m.has("god_jobs") || !m.has("go_goroutines"):
					failures = append(failures, "a scrape without god_jobs or go_goroutines")
				default:
					ok++
				}
				mu.Unlock()
			}
		}()
	}
	served := func() int {
		mu.Lock()
		defer mu.Unlock()
		return ok
	}
	exporter := exporterPid(g, 0, 10*time.Second)
	for i := 0; i < 3; i++ {
		r := g.mustCLI("upgrade")
		if !strings.Contains(r.stdout, "upgraded") {
			t.Fatalf("upgrade %d: %q", i+1, r.stdout)
		}
		next := exporterPid(g, exporter, 10*time.Second)
		if alive(exporter) {
			t.Errorf("upgrade %d: the old exporter pid %d still runs", i+1, exporter)
		}
		exporter = next
		n := served()
		eventually(t, 10*time.Second, "scrapes served by the new exporter", func() bool { return served() >= n+5 })
	}
	close(stop)
	wg.Wait()
	t.Logf("%d scrapes across 3 upgrades, %d failed", ok, len(failures))
	if len(failures) > 0 {
		t.Errorf("%d scrapes failed across upgrades, first: %s", len(failures), failures[0])
	}
	if got := listenInode(t, addr); got != inode || !socketInodes(t, godPid)[inode] {
		t.Errorf("the metrics socket changed across upgrades: inode %d before, %d after (held by god: %v)",
			inode, got, socketInodes(t, godPid)[inode])
	}
	if n := len(g.logs(0, func(r record) bool { return r.Msg == "upgraded: god runs its new image" })); n != 3 {
		t.Errorf("god logged %d upgrades, want 3", n)
	}
}

// TestMetricsExporterMissing: without god-metrics next to god or in PATH, god --metrics does not
// start and says where it looked; an upgrade to a binary without it is refused by the pre-flight,
// and god goes on serving metrics.
func TestMetricsExporterMissing(t *testing.T) {
	t.Parallel()
	t.Run("start", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		bin := copyExecutable(t, godBin, dir, "god")
		emptyPath := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--dir", t.TempDir(), "--socket", filepath.Join(t.TempDir(), "god.sock"),
			"--log", "json", "--metrics", freePort(t))
		cmd.Env = append(os.Environ(), "PATH="+emptyPath, noRaceExitSleep)
		out, err := cmd.CombinedOutput()
		code := cmd.ProcessState.ExitCode()
		if err == nil || code != 1 {
			t.Fatalf("god --metrics without its exporter: exit %d (%v), want 1\n%s", code, err, out)
		}
		for _, want := range []string{"--metrics", "god-metrics not found", filepath.Join(dir, "god-metrics"), emptyPath} {
			if !strings.Contains(string(out), want) {
				t.Errorf("god's error does not name %q:\n%s", want, out)
			}
		}
	})
	t.Run("upgrade", func(t *testing.T) {
		t.Parallel()
		g := newGod(t)
		dir := t.TempDir()
		g.bin = copyExecutable(t, godBin, dir, "god")
		exporterFile := copyExecutable(t, metricsBin, dir, "god-metrics")
		g.env = append(g.env, "PATH=/usr/bin:/bin")
		addr := freePort(t)
		g.start("--metrics", addr)
		url := "http://" + addr + "/metrics"
		pid := exporterPid(g, 0, 10*time.Second)
		if err := os.Remove(exporterFile); err != nil {
			t.Fatal(err)
		}
		r := g.cli("upgrade")
		if r.code != 1 || !strings.Contains(r.stderr, "refused") || !strings.Contains(r.stderr, "god-metrics not found") {
			t.Fatalf("upgrade without the exporter next to god: exit %d, stdout %q, stderr %q; want a refusal naming it", r.code, r.stdout, r.stderr)
		}
		waitMetrics(t, g, url, "a scrape after the refused upgrade", func(m metricSet) bool { return m.has("god_jobs") })
		if now := exporterPid(g, 0, 10*time.Second); now != pid {
			t.Errorf("a refused upgrade replaced the exporter: pid %d -> %d", pid, now)
		}
	})
}
