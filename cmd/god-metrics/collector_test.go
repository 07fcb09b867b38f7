package main

import (
	"errors"
	"github.com/emielm/watchgod/supervisor/control"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestGodCollector checks the exposition of a snapshot: one state series per state for defined
// jobs only, counters of a removed job kept, exit codes and streams as labels, and the jobs gauge.
func TestGodCollector(t *testing.T) {
	snap := control.MetricsSnapshot{
		Live: true,
		Jobs: []control.JobMetrics{
			{Name: "gone", Exits: map[int]uint64{0: 1}, LogLines: map[string]uint64{}},
			{
				Name: "web", State: "run", Restarts: 2, Reloads: 3, ReloadFailures: 1,
				Exits:    map[int]uint64{1: 2, 143: 1},
				LogLines: map[string]uint64{"stdout": 10, "stderr": 4},
			},
		},
		Loaders: []control.LoaderMetrics{{Path: "/d/app", Failing: true, Failures: 5}},
		CheckDuration: control.Histogram{
			Count: 3, Sum: 0.006, Buckets: map[float64]uint64{0.001: 1, 0.005: 3},
		},
		ReloadDuration: control.Histogram{Buckets: map[float64]uint64{1: 0}},
	}
	c := newGodCollector(func() (control.MetricsSnapshot, error) { return snap, nil })
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	want := `
# HELP god_jobs Jobs the loaders define.
# TYPE god_jobs gauge
god_jobs 1
# HELP god_job_exits_total Processes of a job that ended, by exit code (128+N when killed by signal N).
# TYPE god_job_exits_total counter
god_job_exits_total{code="0",job="gone"} 1
god_job_exits_total{code="1",job="web"} 2
god_job_exits_total{code="143",job="web"} 1
# HELP god_job_log_lines_total Output lines of a job, by stream.
# TYPE god_job_log_lines_total counter
god_job_log_lines_total{job="web",stream="stderr"} 4
god_job_log_lines_total{job="web",stream="stdout"} 10
# HELP god_job_restarts_total Automatic restarts of a job by its restart policy (god restart excluded).
# TYPE god_job_restarts_total counter
god_job_restarts_total{job="gone"} 0
god_job_restarts_total{job="web"} 2
# HELP god_job_reload_failures_total Reloads of a job that failed and were rolled back.
# TYPE god_job_reload_failures_total counter
god_job_reload_failures_total{job="gone"} 0
god_job_reload_failures_total{job="web"} 1
# HELP god_loader_failing 1 while a loader file's last load failed (god retries it with back-off).
# TYPE god_loader_failing gauge
god_loader_failing{loader="/d/app"} 1
# HELP god_loader_failures_total Loader instances god killed or could not start (crash, protocol error, late answer, failed handshake).
# TYPE god_loader_failures_total counter
god_loader_failures_total{loader="/d/app"} 5
# HELP god_check_duration_seconds How long loaders took to answer check.
# TYPE god_check_duration_seconds histogram
god_check_duration_seconds_bucket{le="0.001"} 1
god_check_duration_seconds_bucket{le="0.005"} 3
god_check_duration_seconds_bucket{le="+Inf"} 3
god_check_duration_seconds_sum 0.006
god_check_duration_seconds_count 3
`
	names := []string{"god_jobs", "god_job_exits_total", "god_job_log_lines_total", "god_job_restarts_total",
		"god_job_reload_failures_total", "god_loader_failing", "god_loader_failures_total", "god_check_duration_seconds"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}

	// One series per state for the defined job, none for the removed one.
	if n := testutil.CollectAndCount(c, "god_job_state"); n != len(control.JobStates) {
		t.Errorf("god_job_state: %d series, want %d", n, len(control.JobStates))
	}
	run := prometheus.NewRegistry()
	run.MustRegister(c)
	if err := testutil.GatherAndCompare(run, strings.NewReader(`
# HELP god_job_state 1 for the state each job is in, 0 for the others.
# TYPE god_job_state gauge
god_job_state{job="web",state="backoff"} 0
god_job_state{job="web",state="degrade"} 0
god_job_state{job="web",state="done"} 0
god_job_state{job="web",state="exit"} 0
god_job_state{job="web",state="failed"} 0
god_job_state{job="web",state="listen"} 0
god_job_state{job="web",state="run"} 1
god_job_state{job="web",state="start"} 0
god_job_state{job="web",state="stop"} 0
god_job_state{job="web",state="stopped"} 0
god_job_state{job="web",state="wait"} 0
`), "god_job_state"); err != nil {
		t.Fatal(err)
	}

	// Once the supervisor's loop has ended, counters are still exported but the jobs gauge is not.
	snap.Live = false
	snap.Jobs[1].State = ""
	if n := testutil.CollectAndCount(c, "god_jobs", "god_job_state"); n != 0 {
		t.Errorf("after the loop ended: %d jobs/state series, want none", n)
	}
}

// TestGodCollectorRuntime: god's runtime figures from the snapshot come out under client_golang's
// go_* names, and a snapshot without them gives no go_* series at all.
func TestGodCollectorRuntime(t *testing.T) {
	snap := control.MetricsSnapshot{Live: true, Runtime: control.RuntimeMetrics{
		GoVersion: "go1.26.8", Goroutines: 23, Threads: 7, HeapAllocBytes: 1000, HeapInuseBytes: 2048, SysBytes: 9000,
		GCCycles: 4, GCPauseSeconds: 0.0004, GCPauseQuantiles: []float64{0.00005, 0.00008, 0.0001, 0.00012, 0.0001},
	}}
	c := newGodCollector(func() (control.MetricsSnapshot, error) { return snap, nil })
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
	want := `
# HELP go_goroutines Number of goroutines that currently exist in god.
# TYPE go_goroutines gauge
go_goroutines 23
# HELP go_threads Number of OS threads god's Go runtime owns.
# TYPE go_threads gauge
go_threads 7
# HELP go_info Information about god's Go environment.
# TYPE go_info gauge
go_info{version="go1.26.8"} 1
# HELP go_memstats_heap_inuse_bytes Number of heap bytes in god's spans that hold objects (/memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes).
# TYPE go_memstats_heap_inuse_bytes gauge
go_memstats_heap_inuse_bytes 2048
# HELP go_gc_duration_seconds A summary of the wall-time pause (stop-the-world) duration in god's garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 5e-05
go_gc_duration_seconds{quantile="0.25"} 8e-05
go_gc_duration_seconds{quantile="0.5"} 0.0001
go_gc_duration_seconds{quantile="0.75"} 0.00012
go_gc_duration_seconds{quantile="1"} 0.0001
go_gc_duration_seconds_sum 0.0004
go_gc_duration_seconds_count 4
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"go_goroutines", "go_threads", "go_info", "go_memstats_heap_inuse_bytes", "go_gc_duration_seconds"); err != nil {
		t.Fatal(err)
	}
	snap.Runtime = control.RuntimeMetrics{}
	if n := testutil.CollectAndCount(c, "go_goroutines", "go_info", "go_gc_duration_seconds"); n != 0 {
		t.Errorf("a snapshot without runtime figures gave %d go_* series, want none", n)
	}
}

// TestScrapeWithoutGod: when god does not answer, the scrape fails with god's error (HTTP 500),
// and the exporter counts it in promhttp_metric_handler_errors_total, as the registry it
// serves is the one promhttp counts in.
func TestScrapeWithoutGod(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newGodCollector(func() (control.MetricsSnapshot, error) {
		return control.MetricsSnapshot{}, errors.New("metrics exporter: cannot reach god at /x: connect: no such file")
	}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "cannot reach god") {
		t.Fatalf("scrape without god: %d %q", rec.Code, rec.Body.String())
	}
	// Gather fails as the scrape did, yet returns what it could collect, the counter included.
	mfs, _ := reg.Gather()
	failed := -1.0
	for _, mf := range mfs {
		if mf.GetName() != "promhttp_metric_handler_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "cause" && l.GetValue() == "gathering" {
					failed = m.GetCounter().GetValue()
				}
			}
		}
	}
	if failed != 1 {
		t.Errorf("promhttp_metric_handler_errors_total{cause=\"gathering\"} = %v, want 1", failed)
	}
}
