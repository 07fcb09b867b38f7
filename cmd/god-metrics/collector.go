package main

import (
	"github.com/emielm/watchgod/supervisor/control"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// godCollector turns one control.MetricsSnapshot per scrape into Prometheus metrics: god's
// jobs, loaders, checks and reloads (god_*) and god's Go runtime (go_*, from the snapshot's
// Runtime: this process's own runtime would describe the exporter). Job states are read then,
// not tracked as they change: a scrape costs god one call into its loop, a state change costs
// nothing.
type godCollector struct {
	snapshot func() (control.MetricsSnapshot, error)

	jobState, jobs, restarts, exits, reloads, reloadFails, logLines *prometheus.Desc
	loaderFailing, loaderFailures, checkDur, reloadDur              *prometheus.Desc
	rt                                                              runtimeDescs
}

// runtimeDescs are the go_* metrics, under the names and meanings of client_golang's Go collector
// so that dashboards made for any Go program read god's.
type runtimeDescs struct {
	info, goroutines, threads, heapAlloc, heapInuse, sys, gcDuration *prometheus.Desc
}

// newGodCollector returns the collector of god's metrics; snapshot asks god (snapshotClient) or,
// in tests, returns a fixed one. A snapshot error fails the scrape with that error.
func newGodCollector(snapshot func() (control.MetricsSnapshot, error)) *godCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("god_"+name, help, labels, nil)
	}
	g := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("go_"+name, help, labels, nil)
	}
	return &godCollector{
		snapshot:       snapshot,
		jobState:       d("job_state", "1 for the state each job is in, 0 for the others.", "job", "state"),
		jobs:           d("jobs", "Jobs the loaders define."),
		restarts:       d("job_restarts_total", "Automatic restarts of a job by its restart policy (god restart excluded).", "job"),
		exits:          d("job_exits_total", "Processes of a job that ended, by exit code (128+N when killed by signal N).", "job", "code"),
		reloads:        d("job_reloads_total", "Reloads of a job that ended, failed ones included.", "job"),
		reloadFails:    d("job_reload_failures_total", "Reloads of a job that failed and were rolled back.", "job"),
		logLines:       d("job_log_lines_total", "Output lines of a job, by stream.", "job", "stream"),
		loaderFailing:  d("loader_failing", "1 while a loader file's last load failed (god retries it with back-off).", "loader"),
		loaderFailures: d("loader_failures_total", "Loader instances god killed or could not start (crash, protocol error, late answer, failed handshake).", "loader"),
		checkDur:       d("check_duration_seconds", "How long loaders took to answer check."),
		reloadDur:      d("reload_duration_seconds", "How long reloads took, from god reload to the outcome."),
		rt: runtimeDescs{
			info:       g("info", "Information about god's Go environment.", "version"),
			goroutines: g("goroutines", "Number of goroutines that currently exist in god."),
			threads:    g("threads", "Number of OS threads god's Go runtime owns."),
			heapAlloc:  g("memstats_heap_alloc_bytes", "Number of heap bytes god allocated and that are not yet freed (/memory/classes/heap/objects:bytes)."),
			heapInuse:  g("memstats_heap_inuse_bytes", "Number of heap bytes in god's spans that hold objects (/memory/classes/heap/objects:bytes + /memory/classes/heap/unused:bytes)."),
			sys:        g("memstats_sys_bytes", "Number of bytes god's Go runtime obtained from the system (/memory/classes/total:bytes)."),
			gcDuration: g("gc_duration_seconds", "A summary of the wall-time pause (stop-the-world) duration in god's garbage collection cycles."),
		},
	}
}

// Describe sends every metric the collector may export.
func (c *godCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.jobState, c.jobs, c.restarts, c.exits, c.reloads, c.reloadFails, c.logLines,
		c.loaderFailing, c.loaderFailures, c.checkDur, c.reloadDur,
		c.rt.info, c.rt.goroutines, c.rt.threads, c.rt.heapAlloc, c.rt.heapInuse, c.rt.sys, c.rt.gcDuration,
	} {
		ch <- d
	}
}

// Collect reads one snapshot and sends it as constant metrics; without one, it sends the error,
// which fails the scrape (HTTP 500 naming it), as Prometheus expects of a target it cannot read.
func (c *godCollector) Collect(ch chan<- prometheus.Metric) {
	s, err := c.snapshot()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, err)
		return
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	defined := 0
	for _, j := range s.Jobs {
		if j.State != "" {
			defined++
			for _, st := range control.JobStates {
				v := 0.0
				if st == j.State {
					v = 1
				}
				gauge(c.jobState, v, j.Name, string(st))
			}
		}
		counter(c.restarts, j.Restarts, j.Name)
		counter(c.reloads, j.Reloads, j.Name)
		counter(c.reloadFails, j.ReloadFailures, j.Name)
		for code, n := range j.Exits {
			counter(c.exits, n, j.Name, strconv.Itoa(code))
		}
		for stream, n := range j.LogLines {
			counter(c.logLines, n, j.Name, stream)
		}
	}
	if s.Live {
		gauge(c.jobs, float64(defined))
	}
	for _, l := range s.Loaders {
		failing := 0.0
		if l.Failing {
			failing = 1
		}
		gauge(c.loaderFailing, failing, l.Path)
		counter(c.loaderFailures, l.Failures, l.Path)
	}
	ch <- prometheus.MustNewConstHistogram(c.checkDur, s.CheckDuration.Count, s.CheckDuration.Sum, s.CheckDuration.Buckets)
	ch <- prometheus.MustNewConstHistogram(c.reloadDur, s.ReloadDuration.Count, s.ReloadDuration.Sum, s.ReloadDuration.Buckets)
	c.collectRuntime(ch, s.Runtime)
}

// collectRuntime sends god's runtime figures. A snapshot from a god that sends none (GoVersion
// empty) exports no go_* metric rather than zeros that would read as facts.
func (c *godCollector) collectRuntime(ch chan<- prometheus.Metric, r control.RuntimeMetrics) {
	if r.GoVersion == "" {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.rt.info, 1, r.GoVersion)
	gauge(c.rt.goroutines, float64(r.Goroutines))
	gauge(c.rt.threads, float64(r.Threads))
	gauge(c.rt.heapAlloc, float64(r.HeapAllocBytes))
	gauge(c.rt.heapInuse, float64(r.HeapInuseBytes))
	gauge(c.rt.sys, float64(r.SysBytes))
	quantiles := map[float64]float64{}
	if len(r.GCPauseQuantiles) == 5 {
		for i, q := range []float64{0, 0.25, 0.5, 0.75, 1} {
			quantiles[q] = r.GCPauseQuantiles[i]
		}
	}
	ch <- prometheus.MustNewConstSummary(c.rt.gcDuration, r.GCCycles, r.GCPauseSeconds, quantiles)
}
