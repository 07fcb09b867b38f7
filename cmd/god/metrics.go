package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emielm/watchgod/supervisor"
)

// startMetrics serves Prometheus metrics on http://ADDR/metrics (`god --metrics ADDR`): god's
// jobs, loaders, checks and reloads, and god's own process and Go runtime. It listens before it
// returns, so a taken or invalid address fails god's start instead of a scrape much later. stop
// shuts the server down, waiting a moment for a scrape under way.
func startMetrics(addr string, sup *supervisor.Supervisor, logger *slog.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		newGodCollector(sup.Metrics),
	)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		Registry: reg, // counts its own failed scrapes (promhttp_metric_handler_errors_total)
	}))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", "addr", addr, "err", err)
		}
	}()
	logger.Info("serving metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}, nil
}

// godCollector turns a supervisor.MetricsSnapshot into Prometheus metrics at each scrape. Job
// states are read then, not tracked as they change: a scrape costs one call into the supervisor's
// loop, a state change costs nothing.
type godCollector struct {
	snapshot func() supervisor.MetricsSnapshot

	jobState, jobs, restarts, exits, reloads, reloadFails, logLines *prometheus.Desc
	loaderFailing, loaderFailures, checkDur, reloadDur              *prometheus.Desc
}

// newGodCollector returns the collector of god's own metrics; snapshot is Supervisor.Metrics (a
// parameter so that tests can feed it).
func newGodCollector(snapshot func() supervisor.MetricsSnapshot) *godCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("god_"+name, help, labels, nil)
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
	}
}

// Describe sends every metric god_ may export.
func (c *godCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.jobState, c.jobs, c.restarts, c.exits, c.reloads, c.reloadFails, c.logLines,
		c.loaderFailing, c.loaderFailures, c.checkDur, c.reloadDur,
	} {
		ch <- d
	}
}

// Collect reads one snapshot and sends it as constant metrics.
func (c *godCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
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
			for _, st := range supervisor.JobStates {
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
}
