package integration

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkReloadUnderLoad reloads examples/backend 50 times, one after the other, while 8 clients
// send requests as fast as they can (the reload tests' load generator), with keep-alive on, off,
// and with 4 instances sharing the socket. It reports the requests made and failed during the
// reloads, latency percentiles in a steady window without reload and during the reloads, and
// god's own cost of one reload: the time god reports for the whole reload minus the new
// generation's own time to ready (so: asking the loader for the definition, the drain of the
// old generation, and god's bookkeeping), median over the 50.
func BenchmarkReloadUnderLoad(b *testing.B) {
	cases := []struct {
		name      string
		keepAlive bool
		instances int
	}{
		{"keepalive", true, 1},
		{"no-keepalive", false, 1},
		{"instances4", false, 4},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var f figures
			skipped := ""
			asTest(b, func(t testing.TB) {
				skipped = reloadUnderLoad(t, &f, c.keepAlive, c.instances)
			})
			if skipped != "" {
				b.Skip(skipped)
			}
			f.report(b)
		})
	}
}

const (
	benchReloads       = 50
	benchReloadWorkers = 8
	benchSteadyWindow  = 3 * time.Second
)

// reloadUnderLoad is one variant of BenchmarkReloadUnderLoad; it returns why it was skipped, or "".
func reloadUnderLoad(t testing.TB, f *figures, keepAlive bool, instances int) string {
	addr := freePort(t)
	env := []string{"BACKEND_ADDR=" + addr}
	if instances > 1 {
		env = append(env, fmt.Sprintf("BACKEND_INSTANCES=%d", instances))
	}
	g := backendGod(t, env...)
	if instances > 1 {
		// examples/backend reads BACKEND_INSTANCES since the sockets work; before that, one process.
		j := g.waitState("backend", "run", 10*time.Second)
		if len(j.Processes) != instances {
			return fmt.Sprintf("examples/backend runs %d process(es) with BACKEND_INSTANCES=%d: instances not supported", len(j.Processes), instances)
		}
	}
	l := startLoad(t, loadOpts{URL: "http://" + addr + "/", Workers: benchReloadWorkers, KeepAlive: keepAlive,
		Timeout: 10 * time.Second, MaxTime: 3 * time.Minute})
	l.waitServed(t, 200, 20*time.Second) // warm: connections open, goroutines running

	s0 := time.Now()
	// The steady window: the load runs alone while the test waits.
	time.Sleep(benchSteadyWindow)
	s1 := time.Now()

	from := g.mark()
	var cliTook []time.Duration
	var rollbacks []string
	r0 := time.Now()
	for k := 0; k < benchReloads; k++ {
		t0 := time.Now()
		res := g.cli("reload", "backend")
		cliTook = append(cliTook, time.Since(t0))
		if res.code != 0 {
			rollbacks = append(rollbacks, fmt.Sprintf("reload %d: exit %d: %s", k+1, res.code, strings.TrimSpace(res.stdout+res.stderr)))
		}
	}
	r1 := time.Now()
	l.finish()

	var steady, during []time.Duration
	var total, failed int
	errs := map[string]int{}
	for _, r := range l.all() {
		switch {
		case !r.start.Before(s0) && r.end.Before(s1):
			if r.err == "" {
				steady = append(steady, r.end.Sub(r.start))
			}
		case !r.start.Before(r0) && r.start.Before(r1):
			total++
			if r.err != "" {
				failed++
				errs[r.err]++
				continue
			}
			during = append(during, r.end.Sub(r.start))
		}
	}

	var timings []reloadTiming
	for _, r := range g.logs(from, func(r record) bool { return r.str("job") == "backend" && strings.HasPrefix(r.Msg, "reload done: ") }) {
		if rt, ok := parseReloadTook(r.Msg); ok {
			timings = append(timings, rt)
		}
	}
	pick := func(fn func(reloadTiming) time.Duration) []time.Duration {
		var out []time.Duration
		for _, rt := range timings {
			out = append(out, fn(rt))
		}
		return out
	}
	godCost := statsOf(pick(func(r reloadTiming) time.Duration { return r.total - r.ready }))
	overhead := statsOf(pick(func(r reloadTiming) time.Duration { return r.total - r.define - r.ready - r.drain }))
	med := func(fn func(reloadTiming) time.Duration) string {
		return statsOf(pick(fn)).p50.Round(10 * time.Microsecond).String()
	}

	span := r1.Sub(r0)
	f.add("reload-requests", float64(total), fmt.Sprintf("during %d reloads in %s (%.0f req/s; steady %.0f req/s), %d clients, keep-alive %v, %d instance(s)",
		benchReloads, span.Round(time.Millisecond), float64(total)/span.Seconds(), float64(len(steady))/s1.Sub(s0).Seconds(), benchReloadWorkers, keepAlive, instances))
	f.add("reload-failed-requests", float64(failed), topErrors(errs, 3))
	f.add("reload-rollbacks", float64(len(rollbacks)), strings.Join(first(rollbacks, 2), "; "))
	f.addDurations("steady-latency", steady, fmt.Sprintf("%s window without reload", benchSteadyWindow))
	f.addDurations("reload-latency", during, "requests started during the reloads")
	f.add("god-reload-cost-p50-ms", inMS(godCost.p50), fmt.Sprintf("reload took minus new generation ready, median of %d (p99 %s)", godCost.n, godCost.p99.Round(10*time.Microsecond)))
	f.notef("median of %d reloads as god logs them: took %s = definition %s + new generation ready %s + drain %s + rest %s; `god reload` command %s",
		len(timings), med(func(r reloadTiming) time.Duration { return r.total }), med(func(r reloadTiming) time.Duration { return r.define }),
		med(func(r reloadTiming) time.Duration { return r.ready }), med(func(r reloadTiming) time.Duration { return r.drain }),
		overhead.p50.Round(10*time.Microsecond), statsOf(cliTook).p50.Round(10*time.Microsecond))
	return ""
}

// topErrors names the n most frequent errors, with their counts.
func topErrors(errs map[string]int, n int) string {
	if len(errs) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(errs))
	for e := range errs {
		keys = append(keys, e)
	}
	sort.Slice(keys, func(a, b int) bool { return errs[keys[a]] > errs[keys[b]] })
	var out []string
	for _, e := range first(keys, n) {
		out = append(out, fmt.Sprintf("%d× %.120s", errs[e], e))
	}
	return strings.Join(out, "; ")
}

// first is at most the n first items of s.
func first(s []string, n int) []string { return slices.Clone(s[:min(n, len(s))]) }
