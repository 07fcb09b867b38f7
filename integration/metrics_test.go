package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestMetrics runs god with --metrics and reads /metrics as Prometheus would: job states, an
// automatic restart with the exit code that caused it, a reload of examples/backend, output lines,
// checks, a loader that cannot start, and god's own process and Go metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	metricsAddr, backendAddr := freePort(t), freePort(t)
	g := newGod(t)
	g.env = []string{"BACKEND_ADDR=" + backendAddr}
	copyExecutable(t, backendBin, g.dir, "backend")
	marker := filepath.Join(t.TempDir(), "crashed-once")
	// flaky exits 3 on its first run, then stays up; it is checked every 100 ms.
	writeLoader(t, g.dir, "flaky", bashLoader{Jobs: map[string]bashJob{
		"flaky": {
			Exec:  shJob(fmt.Sprintf(`if [ ! -e %s ]; then touch %s; echo crashing; exit 3; fi; echo up; exec sleep 1000`, sq(marker), sq(marker))),
			Auto:  autoTrue,
			Check: checkOK("100"),
		},
	}})
	broken := writeExecutable(t, g.dir, "broken", []byte("#!/bin/sh\nexit 1\n"))
	g.start("--metrics", metricsAddr)
	url := "http://" + metricsAddr + "/metrics"

	g.waitState("backend", "run", 10*time.Second)
	g.waitJob("flaky", 10*time.Second, "running after one restart", func(j controlJob) bool {
		return j.State == "run" && j.Restarts == 1
	})
	m := waitMetrics(t, g, url, "flaky restarted and checked", func(m metricSet) bool {
		return m.get("god_job_restarts_total", "job", "flaky") == 1 &&
			m.get("god_check_duration_seconds_count") >= 1 &&
			m.get("god_job_log_lines_total", "job", "flaky", "stream", "stdout") >= 2
	})
	for _, c := range []struct {
		want   float64
		name   string
		labels []string
	}{
		{3, "god_jobs", nil},
		{1, "god_job_state", []string{"job", "backend", "state", "run"}},
		{0, "god_job_state", []string{"job", "backend", "state", "failed"}},
		{1, "god_job_state", []string{"job", "flaky", "state", "run"}},
		{1, "god_job_exits_total", []string{"job", "flaky", "code", "3"}},
		{0, "god_job_restarts_total", []string{"job", "backend"}},
		{0, "god_job_reloads_total", []string{"job", "backend"}},
	} {
		if got := m.get(c.name, c.labels...); got != c.want {
			t.Errorf("%s: %v, want %v", series(c.name, c.labels...), got, c.want)
		}
	}
	if m.has("god_job_exits_total", "job", "backend", "code", "0") {
		t.Errorf("backend has an exit before anything stopped it")
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_open_fds", "go_goroutines"} {
		if !m.has(name) {
			t.Errorf("no %s: god's own process and Go metrics are missing", name)
		}
	}
	// The loader that exits at once fails, is retried, and fails again.
	waitMetrics(t, g, url, "broken loader counted", func(m metricSet) bool {
		return m.get("god_loader_failures_total", "loader", broken) >= 1 && m.get("god_loader_failing", "loader", broken) == 1
	})

	r := g.mustCLI("reload", "backend")
	if !strings.Contains(r.stdout, "serves") {
		t.Errorf("god reload backend: %q", r.stdout)
	}
	// god reload returns once the old generation is gone (its exit is counted then); the reload
	// itself is counted just after the answer is sent, so wait for it.
	m = waitMetrics(t, g, url, "reload counted", func(m metricSet) bool {
		return m.get("god_job_reloads_total", "job", "backend") == 1 && m.sum("god_job_exits_total", "job", "backend") == 1
	})
	if got := m.get("god_job_reload_failures_total", "job", "backend"); got != 0 {
		t.Errorf("god_job_reload_failures_total{job=backend}: %v, want 0", got)
	}
	if got := m.get("god_reload_duration_seconds_count"); got != 1 {
		t.Errorf("god_reload_duration_seconds_count: %v, want 1", got)
	}
	if got := m.get("god_job_state", "job", "backend", "state", "run"); got != 1 {
		t.Errorf("backend not in state run after its reload: %v", got)
	}
	if got := m.get("god_job_restarts_total", "job", "backend"); got != 0 {
		t.Errorf("a reload counted as a restart: %v", got)
	}
}

// TestMetricsAddressTaken checks that god refuses to start when --metrics cannot listen, and
// says why.
func TestMetricsAddressTaken(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	r := runCLI(t, nil, "--dir", t.TempDir(), "--socket", filepath.Join(t.TempDir(), "god.sock"),
		"--log", "json", "--metrics", addr)
	if r.code != 1 || !strings.Contains(r.stdout, "--metrics "+addr) || !strings.Contains(r.stdout, "address already in use") {
		t.Fatalf("god with --metrics on a taken address: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// metricSet is one scrape: the value of each series, keyed by series().
type metricSet map[string]float64

// series formats a series key the way the text exposition does: labels sorted by name.
func series(name string, labels ...string) string {
	if len(labels) == 0 {
		return name
	}
	var pairs []string
	for i := 0; i+1 < len(labels); i += 2 {
		pairs = append(pairs, labels[i]+"="+strconv.Quote(labels[i+1]))
	}
	sort.Strings(pairs)
	return name + "{" + strings.Join(pairs, ",") + "}"
}

// get is the value of one series, 0 when it is absent (as a counter not yet incremented).
func (m metricSet) get(name string, labels ...string) float64 { return m[series(name, labels...)] }

func (m metricSet) has(name string, labels ...string) bool {
	_, ok := m[series(name, labels...)]
	return ok
}

// sum adds every series of name whose labels include the given ones.
func (m metricSet) sum(name string, labels ...string) float64 {
	total := 0.0
	for key, v := range m {
		if key != name && !strings.HasPrefix(key, name+"{") {
			continue
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(key, labels[i]+"="+strconv.Quote(labels[i+1])) {
				match = false
			}
		}
		if match {
			total += v
		}
	}
	return total
}

// scrape reads url in the Prometheus text format (sent when the scraper asks for nothing else).
func scrape(url string) (metricSet, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	m := metricSet{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("GET %s: bad line %q", url, line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("GET %s: bad value in %q: %v", url, line, err)
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// waitMetrics scrapes url until cond holds, and fails the test with the last scrape after 10 s
// (scaled by testutil.Slack).
func waitMetrics(t testing.TB, g *god, url, what string, cond func(metricSet) bool) metricSet {
	t.Helper()
	var m metricSet
	var err error
	if testutil.Poll(10*time.Second, func() bool { m, err = scrape(url); return err == nil && cond(m) }) {
		return m
	}
	var god []string
	for k, v := range m {
		if strings.HasPrefix(k, "god_") {
			god = append(god, fmt.Sprintf("%s %v", k, v))
		}
	}
	sort.Strings(god)
	g.fatalf("metrics: not %s within %s (err %v); last scrape:\n%s", what, testutil.Slack(10*time.Second), err, strings.Join(god, "\n"))
	return nil
}
