package main

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/emielm/watchgod/supervisor"
)

// TestGodCollector checks the exposition of a snapshot: one state series per state for defined
// jobs only, counters of a removed job kept, exit codes and streams as labels, and the jobs gauge.
func TestGodCollector(t *testing.T) {
	snap := supervisor.MetricsSnapshot{
		Live: true,
		Jobs: []supervisor.JobMetrics{
			{Name: "gone", Exits: map[int]uint64{0: 1}, LogLines: map[string]uint64{}},
			{
				Name: "web", State: supervisor.StateRun, Restarts: 2, Reloads: 3, ReloadFailures: 1,
				Exits:    map[int]uint64{1: 2, 143: 1},
				LogLines: map[string]uint64{"stdout": 10, "stderr": 4},
			},
		},
		Loaders: []supervisor.LoaderMetrics{{Path: "/d/app", Failing: true, Failures: 5}},
		CheckDuration: supervisor.Histogram{
			Count: 3, Sum: 0.006, Buckets: map[float64]uint64{0.001: 1, 0.005: 3},
		},
		ReloadDuration: supervisor.Histogram{Buckets: map[float64]uint64{1: 0}},
	}
	c := newGodCollector(func() supervisor.MetricsSnapshot { return snap })
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
	if n := testutil.CollectAndCount(c, "god_job_state"); n != len(supervisor.JobStates) {
		t.Errorf("god_job_state: %d series, want %d", n, len(supervisor.JobStates))
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
