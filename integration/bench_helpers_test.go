package integration

// The benchmark suite (bench_*_test.go) measures god end to end, with real processes on loopback,
// and prints figures; it never asserts a time. Run it, without -race (a race-enabled god is
// several times slower and its figures mean nothing), with:
//
//	go test -run '^$' -bench . -benchtime 1x -timeout 15m ./integration/
//
// Add -bench 'RestartLatency|Footprint' (any regexp) to run some of them. Each benchmark makes its
// own bounded measurement once and reports it with b.ReportMetric (units name the figure, e.g.
// restart-p50-ms) and readable lines in its log; b.N is ignored. The bench_* benchmarks take about
// 80 s together on 2 cores (the footprint window alone is 20 s).

import (
	"bytes"
	"fmt"
	"github.com/emielm/watchgod/internal/procfs"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// asTest runs f, the body of benchmark b, with b as its testing.TB: the integration harness
// (newGod, startLoad, writeLoader...) takes one, so f keeps every guarantee of a test
// (b.TempDir, b.Cleanup: god stopped, orphans checked). Benchmarks measure a god built without
// the race detector, so under -race they skip.
func asTest(b *testing.B, f func(t testing.TB)) {
	b.Helper()
	if raceEnabled {
		b.Skip("benchmarks measure a race-enabled god: run them without -race")
	}
	f(b)
}

// figures collects a benchmark's numbers inside asTest and reports them from the benchmark: each
// as a metric (b.ReportMetric) and, readable, as one line of the benchmark's log. The testing
// package trims a benchmark's log to 10 lines, so related numbers share a line.
type figures struct {
	metrics []metric
	lines   []string
}

// metric is one b.ReportMetric call: its unit names the figure, e.g. "restart-p50-ms".
type metric struct {
	unit  string
	value float64
}

// add records one figure and prints it on its own line with a note.
func (f *figures) add(unit string, value float64, note string) {
	f.metrics = append(f.metrics, metric{unit, value})
	f.notef("%s = %s  %s", unit, formatFloat(value), note)
}

// addDurations records the p50 and p99 of ds in ms as metrics prefix-p50-ms and prefix-p99-ms,
// and prints them with n, min and max on one line.
func (f *figures) addDurations(prefix string, ds []time.Duration, note string) {
	s := statsOf(ds)
	f.metrics = append(f.metrics, metric{prefix + "-p50-ms", inMS(s.p50)}, metric{prefix + "-p99-ms", inMS(s.p99)})
	f.notef("%s: %s  (%s)", prefix, s, note)
}

// notef adds a line of text.
func (f *figures) notef(format string, args ...any) {
	f.lines = append(f.lines, fmt.Sprintf(format, args...))
}

// report hands every metric to b.ReportMetric and logs the lines (a benchmark's log is always
// printed).
func (f *figures) report(b *testing.B) {
	b.Helper()
	for _, m := range f.metrics {
		b.ReportMetric(m.value, m.unit)
	}
	if len(f.lines) > 9 {
		b.Logf("(%d lines; the testing package shows the first 9)", len(f.lines))
	}
	b.Log("\n" + strings.Join(f.lines, "\n"))
}

// formatFloat prints integers without decimals and other numbers with three significant decimals.
func formatFloat(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// inMS is d in milliseconds, for figures.
func inMS(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// durStats is the spread of a set of durations.
type durStats struct {
	n                  int
	min, p50, p99, max time.Duration
}

// statsOf computes nearest-rank percentiles of ds (all zero for an empty set).
func statsOf(ds []time.Duration) durStats {
	if len(ds) == 0 {
		return durStats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return durStats{n: len(s), min: s[0], p50: rank(0.5), p99: rank(0.99), max: s[len(s)-1]}
}

func (s durStats) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("n=%d min %s p50 %s p99 %s max %s", s.n, r(s.min), r(s.p50), r(s.p99), r(s.max))
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. Linux fixes it at 100 for
// every architecture god runs on (the kernel's HZ may differ; what it exports does not).
const clockTicks = 100

// procStat is what the benchmarks read of /proc/PID/stat and /proc/PID/status.
type procStat struct {
	ppid  int
	cpu   time.Duration // utime + stime
	rssKB int           // VmRSS
}

// readProc reads pid's parent, CPU time and resident set; ok is false when pid is gone.
func readProc(pid int) (procStat, bool) {
	var st procStat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, false
	}
	// Fields after the command: state(3) ppid(4) ... utime(14) stime(15), numbered as in proc(5).
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return st, false
	}
	st.ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	st.cpu = time.Duration(ut+stt) * time.Second / clockTicks
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, false
	}
	for _, line := range strings.Split(string(s), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			st.rssKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return st, true
}

// procsWhere lists the pids of /proc for which match holds.
func procsWhere(match func(pid int) bool) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && match(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// childrenOf lists the pids whose parent is ppid, by a scan of /proc.
func childrenOf(ppid int) []int {
	return procsWhere(func(pid int) bool { st, ok := readProc(pid); return ok && st.ppid == ppid })
}

// childrenByParent maps each pid to its children, from one scan of /proc.
func childrenByParent() map[int][]int {
	out := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, _, err := procfs.ParentAndGroup(pid); err == nil {
			out[ppid] = append(out[ppid], pid)
		}
	}
	return out
}

// envValue is the value of key in pid's environment, "" when it has none.
func envValue(pid int, key string) string {
	for _, kv := range envOf(pid) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// isLoader reports whether pid runs as a loader (its argv ends in "godv1").
func isLoader(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(args) > 1 && args[len(args)-1] == "godv1"
}

// loadersOf returns god's loader processes (its children that run `FILE godv1`).
func loadersOf(godPid int) []int {
	var out []int
	for _, pid := range childrenOf(godPid) {
		if isLoader(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// reloadTookRe reads the timing god logs when an overlap reload is done.
var reloadTookRe = regexp.MustCompile(`reload took ([^:]+): definition ([^,]+), new generation ready after ([^,]+), drain ([^)]+)\)`)

// reloadTiming is one overlap reload as god timed it.
type reloadTiming struct {
	total, define, ready, drain time.Duration
}

// parseReloadTook reads a "reload done: ..." record of god's log; ok is false for other messages.
func parseReloadTook(msg string) (reloadTiming, bool) {
	m := reloadTookRe.FindStringSubmatch(msg)
	if m == nil {
		return reloadTiming{}, false
	}
	var ds [4]time.Duration
	for i := range ds {
		d, err := time.ParseDuration(strings.TrimSpace(m[i+1]))
		if err != nil {
			return reloadTiming{}, false
		}
		ds[i] = d
	}
	return reloadTiming{total: ds[0], define: ds[1], ready: ds[2], drain: ds[3]}, true
}

// manyJobsLoader is a bash loader that defines n jobs s0001, s0002... that each run `sleep
// 100000`, start when loaded and, when checkMS is not "", answer every check with ok and the next
// check in checkMS. It matches requests with patterns, not one branch per job, so that a loader
// of 1000 jobs answers as fast as one of ten: the benchmarks measure god, not bash's case.
func manyJobsLoader(n int, checkMS string) string {
	names := []string{"godv1"}
	for i := 1; i <= n; i++ {
		names = append(names, fmt.Sprintf("s%04d", i))
	}
	var b strings.Builder
	b.WriteString("#!/usr/bin/env bash\n# generated by watchgod's benchmarks\n")
	b.WriteString(`[ "$1" = godv1 ] || { echo "usage: $0 godv1" >&2; exit 2; }` + "\n")
	b.WriteString(`[ -n "$GOD_TEST_PIDS" ] && echo $$ >> "$GOD_TEST_PIDS"` + "\n")
	b.WriteString("echo " + sq(jsonArray(names...)) + "\n")
	b.WriteString("while IFS= read -r req; do\n\tcase \"$req\" in\n")
	b.WriteString(`	'["s'*'","exec"]') echo '["sleep","100000"]' ;;` + "\n")
	b.WriteString(`	'["s'*'","auto"]') echo '["true"]' ;;` + "\n")
	if checkMS != "" {
		fmt.Fprintf(&b, "\t'[\"s'*'\",\"check\",'*) echo %s ;;\n", sq(jsonArray("ok", checkMS)))
	}
	b.WriteString("\t*) echo '[]' ;;\n\tesac\ndone\n")
	return b.String()
}

// countState is the number of jobs in state among jobs.
func countState(jobs []controlJob, state string) int {
	n := 0
	for _, j := range jobs {
		if j.State == state {
			n++
		}
	}
	return n
}
