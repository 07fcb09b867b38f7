package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// loadOpts configures a load generator.
type loadOpts struct {
	URL       string        // http://HOST:PORT/ (for a unix socket, any host: Unix decides)
	Unix      string        // when set, every connection dials this unix socket path
	Workers   int           // concurrent clients (default 4)
	KeepAlive bool          // reuse connections (default: a new connection per request)
	Timeout   time.Duration // per request (default 10 s)
	MaxTime   time.Duration // the generator stops by itself after this (default 90 s)
	MaxCount  int           // ... or after this many requests per worker (default 1e6)
}

// response is one request the load generator made.
type response struct {
	start, end time.Time
	gen        int    // the generation the body names (0: none)
	pid        int    // the pid the body names (0: none)
	err        string // "" when the request succeeded (status 200, a body that names a generation)
}

// load sends GET requests from several workers until stopped, and keeps what each one got, so a
// test can prove that no request failed while god reloaded the job behind the address.
type load struct {
	opts   loadOpts
	client *http.Client
	stop   chan struct{}
	done   sync.WaitGroup

	mu      sync.Mutex
	results [][]response // per worker
}

// bodyRe reads what examples/backend and examples/tableflip answer: "... pid P, generation G, ...".
var bodyRe = regexp.MustCompile(`pid (\d+), generation (\d+)\b`)

// startLoad starts the workers; t.Cleanup stops them if the test does not.
func startLoad(t testing.TB, o loadOpts) *load {
	t.Helper()
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxTime == 0 {
		o.MaxTime = 90 * time.Second
	}
	if o.MaxCount == 0 {
		o.MaxCount = 1_000_000
	}
	tr := &http.Transport{
		DisableKeepAlives:   !o.KeepAlive,
		MaxIdleConnsPerHost: o.Workers,
		DialContext:         (&net.Dialer{Timeout: o.Timeout}).DialContext,
	}
	if o.Unix != "" {
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", o.Unix)
		}
	}
	l := &load{
		opts:    o,
		client:  &http.Client{Transport: tr, Timeout: o.Timeout},
		stop:    make(chan struct{}),
		results: make([][]response, o.Workers),
	}
	deadline := time.Now().Add(o.MaxTime)
	for w := range o.Workers {
		l.done.Add(1)
		go l.worker(w, deadline)
	}
	t.Cleanup(l.finish)
	return l
}

// worker sends requests one after the other until stop, the deadline or MaxCount.
func (l *load) worker(w int, deadline time.Time) {
	defer l.done.Done()
	for i := 0; i < l.opts.MaxCount && time.Now().Before(deadline); i++ {
		select {
		case <-l.stop:
			return
		default:
		}
		r := l.get()
		l.mu.Lock()
		l.results[w] = append(l.results[w], r)
		l.mu.Unlock()
	}
}

// get makes one request and judges its answer.
func (l *load) get() (r response) {
	r = response{start: time.Now()}
	defer func() { r.end = time.Now() }()
	resp, err := l.client.Get(l.opts.URL)
	if err != nil {
		r.err = err.Error()
		return r
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	r.end = time.Now()
	switch {
	case err != nil:
		r.err = "reading body: " + err.Error()
	case resp.StatusCode != http.StatusOK:
		r.err = fmt.Sprintf("status %d: %.200s", resp.StatusCode, body)
	default:
		m := bodyRe.FindStringSubmatch(string(body))
		if m == nil {
			r.err = fmt.Sprintf("body names no generation: %.200q", body)
			break
		}
		r.pid, _ = strconv.Atoi(m[1])
		r.gen, _ = strconv.Atoi(m[2])
	}
	return r
}

// finish stops the workers and waits for them (each stops after its request in flight).
func (l *load) finish() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.done.Wait()
	l.client.CloseIdleConnections()
}

// all returns every response so far, in no particular order.
func (l *load) all() []response {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []response
	for _, rs := range l.results {
		out = append(out, rs...)
	}
	return out
}

// count is the number of responses so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, rs := range l.results {
		n += len(rs)
	}
	return n
}

// waitServed waits until n more requests have completed than at the call, so a test knows the
// load actually ran between two steps.
//
// It waits at least a minute whatever timeout says: it asserts progress, not speed, and a 2-core
// machine running other tests (or a CPU hog) may serve 20 requests slowly; a stuck load still
// fails.
func (l *load) waitServed(t testing.TB, n int, timeout time.Duration) {
	t.Helper()
	timeout = max(timeout, time.Minute)
	want := l.count() + n
	eventually(t, timeout, fmt.Sprintf("%d more requests served", n), func() bool { return l.count() >= want })
}

// reloadMark is the moment a `god reload` returned and the generation it said serves from then on.
type reloadMark struct {
	at  time.Time
	gen int
}

// loadReport is the judgement of one load run.
type loadReport struct {
	total, failed int
	errs          map[string]int // error text -> count
	perGen        map[int]int    // generation -> responses
	stale         []string       // responses from an older generation after a reload returned
}

func (r loadReport) String() string {
	gens := make([]int, 0, len(r.perGen))
	for g := range r.perGen {
		gens = append(gens, g)
	}
	sort.Ints(gens)
	if len(gens) == 0 {
		gens = []int{0}
	}
	return fmt.Sprintf("%d requests, %d failed, %d generations answered (%d..%d), %d stale",
		r.total, r.failed, len(r.perGen), gens[0], gens[len(gens)-1], len(r.stale))
}

// check judges every response: none failed, each names a generation, and each that started after
// reload mark k returned names generation >= mark k's.
func (l *load) check(marks []reloadMark) loadReport {
	rep := loadReport{errs: map[string]int{}, perGen: map[int]int{}}
	sort.Slice(marks, func(a, b int) bool { return marks[a].at.Before(marks[b].at) })
	for _, r := range l.all() {
		rep.total++
		if r.err != "" {
			rep.failed++
			rep.errs[r.err]++
			continue
		}
		rep.perGen[r.gen]++
		// The last mark before this request started is the generation it must at least see.
		i := sort.Search(len(marks), func(i int) bool { return !marks[i].at.Before(r.start) }) - 1
		if i >= 0 && r.gen < marks[i].gen && len(rep.stale) < 20 {
			rep.stale = append(rep.stale, fmt.Sprintf("request at %s (%s after reload %d returned) answered by generation %d < %d",
				r.start.Format("15:04:05.000"), r.start.Sub(marks[i].at).Round(time.Microsecond), i+1, r.gen, marks[i].gen))
		}
	}
	return rep
}

// expectClean fails the test unless the report has no failure and no stale answer.
func (rep loadReport) expectClean(t testing.TB) {
	t.Helper()
	if rep.total == 0 {
		t.Fatal("the load generator made no request")
	}
	if rep.failed > 0 {
		var lines []string
		for e, n := range rep.errs {
			lines = append(lines, fmt.Sprintf("  %5d× %s", n, e))
		}
		sort.Strings(lines)
		t.Errorf("%d of %d requests failed:\n%s", rep.failed, rep.total, strings.Join(lines, "\n"))
	}
	if len(rep.stale) > 0 {
		t.Errorf("old generations answered after their reload returned:\n  %s", strings.Join(rep.stale, "\n  "))
	}
}

// reloadGenRe reads the serving generation from `god reload`'s summary.
var reloadGenRe = regexp.MustCompile(`generation (\d+) serves|reloaded \(generation (\d+)\)`)

// reloadOK runs `god reload JOB`, which must exit 0, and returns when it returned, the generation
// that serves and how long the command took.
func (g *god) reloadOK(job string) (reloadMark, time.Duration) {
	g.t.Helper()
	t0 := time.Now()
	r := g.mustCLI("reload", job)
	at := time.Now()
	m := reloadGenRe.FindStringSubmatch(r.stdout)
	if m == nil {
		g.fatalf("god reload %s: no serving generation in its output:\n%s", job, r.stdout)
	}
	gen, _ := strconv.Atoi(m[1] + m[2])
	return reloadMark{at: at, gen: gen}, at.Sub(t0)
}

// durations summarises reload times for the test log.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(a, b int) bool { return s[a] < s[b] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return fmt.Sprintf("min %s, median %s, max %s, mean %s", s[0].Round(time.Millisecond),
		s[len(s)/2].Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), (sum / time.Duration(len(s))).Round(time.Millisecond))
}
