package integration

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchGod is a god for benchmarks (the test harness's god wants a *testing.T): it runs the bash
// loader l, drains god's log and stops god when the benchmark ends.
func benchGod(b *testing.B, l bashLoader) (socket string) {
	b.Helper()
	base := b.TempDir()
	dir, socket := filepath.Join(base, "loaders"), filepath.Join(base, "god.sock")
	if err := os.Mkdir(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := writeNoFork(filepath.Join(dir, "bench"), []byte(l.script()), 0o755); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(godBin, "--dir", dir, "--socket", socket, "--log", "json")
	cmd.Env = plainEnv(noRaceExitSleep, "GOD_TEST_PIDS="+filepath.Join(base, "pids"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"msg":"loaders read; god ready"`) {
				once.Do(func() { close(running) })
			}
		}
		io.Copy(io.Discard, out)
	}()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		b.Fatal("god did not start within 10 s")
	}
	return socket
}

// benchCLI runs `god ARGS --socket SOCK` and returns its stdout.
func benchCLI(b *testing.B, socket string, args ...string) string {
	b.Helper()
	cmd := exec.Command(godBin, append(args, "--socket", socket)...)
	cmd.Env = plainEnv(noRaceExitSleep)
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		b.Fatalf("god %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// waitHTTP polls url until it answers 200, for at most 10 s.
func waitHTTP(b *testing.B, url string) {
	b.Helper()
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // polling from the outside, bounded by the deadline
	}
	b.Fatalf("%s: no answer within 10 s", url)
}

// sockLoad runs workers keep-alive clients against url for d and returns requests per second and
// the number of failed requests.
func sockLoad(url string, workers int, d time.Duration) (float64, int64) {
	tr := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var ok, failed atomic.Int64
	end := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Go(func() {
			for time.Now().Before(end) {
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(ok.Load()) / time.Since(start).Seconds(), failed.Load()
}

// BenchmarkListenerSource compares the same HTTP server (sockjob http, watchgod.ServeHTTP) on a
// socket it opened itself and on the fd god passed it: 8 keep-alive clients, on loopback, in 12
// short rounds that alternate which server goes first. The ratio is the median of the rounds'
// ratios, which a busy moment of the machine moves far less than a ratio of two long runs.
// Figures, not assertions: run without -race for meaningful numbers.
func BenchmarkListenerSource(b *testing.B) {
	const workers, rounds, d = 8, 12, 500 * time.Millisecond
	own, viaGod := tcpPort(b), tcpPort(b)
	self := startLineProc(b, plainEnv("SOCKJOB_LISTEN=http=tcp://"+own), sockjobBin, "http")
	self.line(b, "http serving ", 10*time.Second)
	benchGod(b, bashLoader{Jobs: map[string]bashJob{
		"web": sockJob([]string{sockjobBin, "http"}, []string{"http=tcp://" + viaGod}, []string{"notify"}, nil),
	}})
	selfURL, godURL := "http://"+own+"/", "http://"+viaGod+"/"
	waitHTTP(b, selfURL)
	waitHTTP(b, godURL)
	sockLoad(selfURL, workers, d) // warm both up
	sockLoad(godURL, workers, d)
	for b.Loop() {
		var selfRates, godRates, ratios []float64
		var failed int64
		for round := 0; round < rounds; round++ {
			var sr, gr float64
			var f1, f2 int64
			if round%2 == 0 {
				sr, f1 = sockLoad(selfURL, workers, d)
				gr, f2 = sockLoad(godURL, workers, d)
			} else {
				gr, f2 = sockLoad(godURL, workers, d)
				sr, f1 = sockLoad(selfURL, workers, d)
			}
			failed += f1 + f2
			selfRates, godRates = append(selfRates, sr), append(godRates, gr)
			ratios = append(ratios, gr/sr)
		}
		b.ReportMetric(median(selfRates), "self-req/s")
		b.ReportMetric(median(godRates), "god-fd-req/s")
		b.ReportMetric(median(ratios), "ratio-median")
		b.ReportMetric(float64(failed), "failed")
	}
}

// median of a few figures (sorted copy).
func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkShimStart measures, through god, the time from spawn to READY=1 of the same job
// without sockets (started directly) and with one socket (started through the /bin/sh
// LISTEN_PID shim), over 20 restarts each, from the process's Started and the job's Since in
// `god status --json`.
func BenchmarkShimStart(b *testing.B) {
	const rounds = 20
	socket := benchGod(b, bashLoader{Jobs: map[string]bashJob{
		"plain":   sockJob([]string{sockjobBin, "serve"}, nil, []string{"notify"}, nil),
		"sockets": sockJob([]string{sockjobBin, "serve", "-names", "web"}, []string{"web=tcp://" + tcpPort(b)}, []string{"notify"}, nil),
	}})
	readyAfter := func(job string) time.Duration {
		benchCLI(b, socket, "restart", job)
		var jobs []controlJob
		if err := json.Unmarshal([]byte(benchCLI(b, socket, "status", "--json")), &jobs); err != nil {
			b.Fatal(err)
		}
		for _, j := range jobs {
			if j.Name == job && j.State == "run" && len(j.Processes) == 1 {
				return j.Since.Sub(j.Processes[0].Started)
			}
		}
		b.Fatalf("job %s not running after restart: %+v", job, jobs)
		return 0
	}
	for b.Loop() {
		var plain, socks time.Duration
		for i := 0; i < rounds; i++ {
			plain += readyAfter("plain")
			socks += readyAfter("sockets")
		}
		ms := func(d time.Duration) float64 { return float64(d) / float64(rounds) / float64(time.Millisecond) }
		b.ReportMetric(ms(plain), "plain-ready-ms")
		b.ReportMetric(ms(socks), "shim-ready-ms")
		b.ReportMetric(ms(socks-plain), "shim-extra-ms")
	}
}

// tcpPort is freePort for benchmarks: a loopback address no one listens on right now.
func tcpPort(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
