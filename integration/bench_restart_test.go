package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/fdpass"
)

// BenchmarkRestartLatency measures how fast god replaces a process that died, three ways, side by
// side:
//
//   - restart: from god's "exited" record to its "started" record for the next process (the
//     reaper, the job's restart decision and fork/exec), over 100 restarts of a sh job that runs
//     30 ms and exits 1;
//   - kill-to-answer: from `kill -9` of examples/backend (a socket job) to the first answer of its
//     successor on the socket god kept open, as a client sees it, over 30 kills;
//   - alone: the backend's own start-up, spawn to first answer on a pre-opened socket passed the
//     same way (LISTEN_FDS through the sh shim) without god, over 30 starts.
//
// god runs with --restart-delay 0 --restart-limit 0 so that every restart is immediate
// (no back-off, however quickly the job fails).
func BenchmarkRestartLatency(b *testing.B) {
	var f figures
	asTest(b, func(t testing.TB) {
		restartFromLog(t, &f, 100)
		alone := startAlone(t, 30)
		kill := restartOnSocket(t, &f, 30)
		f.addDurations("alone-spawn-to-answer", alone, "backend started by the test, no god")
		f.notef("kill-to-answer p50 minus alone p50 (god's share of a restart seen by a client): %.2f ms",
			inMS(statsOf(kill).p50-statsOf(alone).p50))
	})
	f.report(b)
}

// restartFromLog restarts a job that exits on its own n times and reads the delays from god's log.
func restartFromLog(t testing.TB, f *figures, n int) {
	g := newGod(t)
	writeLoader(t, g.dir, "flap", bashLoader{Jobs: map[string]bashJob{
		"flap": {Exec: shJob("sleep 0.03; exit 1"), Auto: autoTrue},
	}})
	g.start("--restart-delay", "0", "--restart-limit", "0")
	started := func(r record) bool { return r.Msg == "started" && r.str("job") == "flap" }
	eventually(t, 60*time.Second, fmt.Sprintf("%d starts of flap", n+1), func() bool { return len(g.logs(0, started)) > n })
	g.mustCLI("stop", "flap")
	f.addDurations("restart-exited-to-started", exitToStart(g, "flap", n), "god log records, sh job exiting 1 after 30 ms")
}

// exitToStart pairs each "exited" record of job with the "started" record that follows it, for at
// most n pairs, and returns the gaps.
func exitToStart(g *god, job string, n int) []time.Duration {
	recs := g.logs(0, func(r record) bool { return r.str("job") == job && (r.Msg == "exited" || r.Msg == "started") })
	var gaps []time.Duration
	var exited *record
	for i := range recs {
		switch {
		case recs[i].Msg == "exited":
			exited = &recs[i]
		case exited != nil && len(gaps) < n:
			gaps = append(gaps, recs[i].Time.Sub(exited.Time))
			exited = nil
		}
	}
	return gaps
}

// restartOnSocket kills examples/backend n times and times each kill to the successor's first
// answer; it returns those times and adds them (and god's exited-to-started) to f.
func restartOnSocket(t testing.TB, f *figures, n int) []time.Duration {
	addr := freePort(t)
	g := newGod(t)
	g.env = []string{"BACKEND_ADDR=" + addr}
	copyExecutable(t, backendBin, g.dir, "backend")
	g.start("--restart-delay", "0", "--restart-limit", "0")
	g.waitState("backend", "run", 15*time.Second)
	url := "http://" + addr + "/"
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	pid, _ := answerNotFrom(t, client, url, 0, 10*time.Second)
	var lat []time.Duration
	retries := 0
	for range n {
		g.addPid(pid, "backend killed by the benchmark")
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", pid, err)
		}
		next, tries := answerNotFrom(t, client, url, pid, 10*time.Second)
		lat = append(lat, time.Since(t0))
		retries += tries - 1
		pid = next
	}
	f.addDurations("kill-to-answer", lat, fmt.Sprintf("kill -9 of examples/backend to its successor's answer (%d retried requests)", retries))
	f.addDurations("socket-job-exited-to-started", exitToStart(g, "backend", n), "god log records of those restarts")
	return lat
}

// benchPidRe reads the pid in examples/backend's answer (run alone it names no generation).
var benchPidRe = regexp.MustCompile(`pid (\d+),`)

// answerNotFrom asks url until a process other than old answers (any process when old is 0) and
// returns that pid and the number of requests it took. A refused or cut request is retried: it is
// what a client of a dying process gets.
func answerNotFrom(t testing.TB, c *http.Client, url string, old int, timeout time.Duration) (pid, tries int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for tries = 1; ; tries++ {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = string(body)
			if m := benchPidRe.FindStringSubmatch(last); m != nil {
				pid, _ = strconv.Atoi(m[1])
				if pid != old {
					return pid, tries
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer from a process other than %d at %s within %s (last error %v, last answer %q)", old, url, timeout, err, last)
		}
	}
}

// startAlone starts examples/backend n times by itself on a socket the test opened and passes as
// god would (fds 3.., LISTEN_FDS, LISTEN_PID set by the sh shim), and times spawn to first answer.
func startAlone(t testing.TB, n int) []time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock, err := ln.(*net.TCPListener).File()
	ln.Close() // sock keeps the socket listening
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	url := "http://" + ln.Addr().String() + "/"
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	argv := fdpass.ShimArgv([]string{backendBin})
	var lat []time.Duration
	for range n {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = plainEnv(fdpass.Env([]string{"http"})...)
		cmd.ExtraFiles = []*os.File{sock}
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pid, _ := answerNotFrom(t, client, url, 0, 10*time.Second)
		lat = append(lat, time.Since(t0))
		cmd.Process.Kill()
		cmd.Wait()
		if pid != cmd.Process.Pid {
			t.Fatalf("pid %d answered, want the backend just started, %d", pid, cmd.Process.Pid)
		}
	}
	return lat
}
