// Command god-metrics is the Prometheus exporter of `god --metrics ADDR`. god starts it; it is not
// meant to be run by hand.
//
// It is a program of its own, not a part of god, for two reasons. Memory: the Prometheus client
// library brings net/http, crypto/tls, protobuf and compression code with it, and whatever links it
// maps that code. Linked into god it made god's binary twice as large (14.7 MB against 7.7 MB) and
// added 3.5 MiB of file pages to god's resident memory, with --metrics off, which is the default;
// god must stay below what runit needs for the same jobs. Isolation: an HTTP server, a scrape
// flood or a bug in the exporter cannot harm the supervisor. This process can crash; god restarts
// it (with back-off, logged) and the jobs never notice.
//
// How god runs it:
//
//	god-metrics --listen-fd=3 --socket=PATH --pid=PID [--log=MODE] [--log-level=LEVEL]
//
// where:
//
//   - fd 3 is a listening TCP socket that god opened on ADDR before it reported ready, and keeps
//     open: it outlives the exporter's restarts and god's upgrades, and scrapes that arrive while
//     no exporter runs wait in its queue instead of being refused.
//   - --socket is god's control socket. Each scrape asks god for one snapshot (the control command
//     "metrics", docs/control.md) and exports it; scrapes that arrive while a request is under way
//     share its answer, so god serves at most one such request at a time however hard the
//     exporter is scraped.
//   - --pid is god's pid. process_* metrics describe that process (read from /proc/PID), and go_*
//     metrics are god's runtime figures from the snapshot, not this process's. The exporter exits
//     when that process does (it watches a pidfd), so even a god killed by SIGKILL leaves no
//     exporter behind.
//   - --log and --log-level are god's own (joblog.NewLogger): the exporter writes to god's stdout
//     in god's format.
//
// On SIGTERM it stops accepting, answers the scrapes it accepted (for at most 3 s) and exits 0.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/emielm/watchgod"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// options are the exporter's flags: what god tells it.
type options struct {
	listenFd int
	socket   string
	godPid   int
	logMode  string
	logLevel string
	timeout  time.Duration
}

func main() { os.Exit(run(os.Args[1:])) }

// parseOptions reads the flags and checks that god gave what the exporter cannot do without.
func parseOptions(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("god-metrics", flag.ContinueOnError)
	fs.IntVar(&o.listenFd, "listen-fd", 3, "fd of the listening socket god opened on --metrics ADDR")
	fs.StringVar(&o.socket, "socket", "", "god's control socket (required)")
	fs.IntVar(&o.godPid, "pid", 0, "god's pid: process_* metrics describe it, and the exporter exits with it (required)")
	fs.StringVar(&o.logMode, "log", "auto", "log format, as god's --log")
	fs.StringVar(&o.logLevel, "log-level", "info", "lowest level logged, as god's --log-level")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "how long god may take to answer one snapshot request")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.socket == "":
		return o, fmt.Errorf("--socket is required: god's control socket")
	case o.godPid <= 0:
		return o, fmt.Errorf("--pid is required: god's pid")
	case o.listenFd < 3:
		return o, fmt.Errorf("--listen-fd %d: want 3 or above", o.listenFd)
	}
	return o, nil
}

// run is the exporter: it serves until SIGTERM, SIGINT or god's exit, and returns the exit code.
func run(args []string) int {
	o, err := parseOptions(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "god-metrics:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(os.Stderr, "god-metrics: --log-level %q: %v\n", o.logLevel, err)
		return 2
	}
	logger, err := joblog.NewLogger(os.Stdout, o.logMode, level)
	if err != nil {
		fmt.Fprintln(os.Stderr, "god-metrics: --log:", err)
		return 2
	}
	logger = logger.With("helper", "god-metrics")
	if err := serve(o, logger); err != nil {
		logger.Error("metrics exporter", "err", err)
		return 1
	}
	return 0
}

// serve wires the socket, god's watch, the registry and the HTTP server, and drains on the way out.
func serve(o options, logger *slog.Logger) error {
	ln, err := listenerFromFd(o.listenFd)
	if err != nil {
		return err
	}
	godGone, err := watchGod(o.godPid)
	if err != nil {
		ln.Close()
		return err
	}
	client := &snapshotClient{socket: o.socket, timeout: o.timeout}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{
			PidFn: func() (int, error) { return o.godPid, nil }, // god's process, not this one
		}),
		newGodCollector(client.snapshot),
	)
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-godGone:
			logger.Info("god exited; the metrics exporter exits too", "god_pid", o.godPid)
			cancel()
		case <-ctx.Done():
		}
	}()
	logger.Info("metrics exporter listening", "addr", ln.Addr().String(), "god_pid", o.godPid)
	// god gives the exporter 5 s after SIGTERM; a scrape takes milliseconds.
	watchgod.DrainTimeout = 3 * time.Second
	if err := watchgod.ServeHTTPContext(ctx, srv, ln); err != nil {
		return fmt.Errorf("metrics exporter on %s: %w", ln.Addr(), err)
	}
	return nil
}

// listenerFromFd takes the listening socket god passed. net.FileListener duplicates the fd; the
// original is closed so the exporter holds one copy (god holds its own).
func listenerFromFd(fd int) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), "metrics socket")
	if f == nil {
		return nil, fmt.Errorf("metrics exporter: fd %d: not open", fd)
	}
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: listening socket on fd %d: %w", fd, err)
	}
	return ln, nil
}
