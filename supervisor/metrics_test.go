package supervisor

import (
	"sync"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/joblog"
)

// TestMetricsCounters counts from many goroutines at once (as job goroutines, relays and loader
// pools do) and checks the snapshot; with -race it also checks that the hot paths are safe.
func TestMetricsCounters(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.devNull.Close() })
	close(s.doneCh) // no loop: Metrics reports counters only

	m := s.metrics
	var added sync.WaitGroup
	const workers, each = 8, 500
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			add := m.countLines("web", "stdout", func(ls []joblog.Line) { added.Add(-len(ls)) })
			for i := 0; i < each; i++ {
				added.Add(1)
				add([]joblog.Line{{}})
			}
			m.exited("web", 143)
			m.restarted("web")
			m.jobReloaded("web", 20*time.Millisecond, w%2 == 0)
			m.loaderFailed("/d/app")
			m.checkLatency(3 * time.Millisecond)
		}()
	}
	wg.Wait()
	added.Wait()
	m.exited("gone", 0)

	snap := s.Metrics()
	if snap.Live {
		t.Errorf("Live with no loop")
	}
	if len(snap.Jobs) != 2 || snap.Jobs[0].Name != "gone" || snap.Jobs[1].Name != "web" {
		t.Fatalf("jobs: %+v", snap.Jobs)
	}
	web := snap.Jobs[1]
	if web.State != "" || web.LogLines["stdout"] != workers*each || web.Exits[143] != workers ||
		web.Restarts != workers || web.Reloads != workers || web.ReloadFailures != workers/2 {
		t.Errorf("web: %+v", web)
	}
	if snap.Jobs[0].Exits[0] != 1 {
		t.Errorf("gone: %+v", snap.Jobs[0])
	}
	if len(snap.Loaders) != 1 || snap.Loaders[0].Failures != workers || snap.Loaders[0].Failing {
		t.Errorf("loaders: %+v", snap.Loaders)
	}
	if c := snap.CheckDuration; c.Count != workers || c.Buckets[0.0025] != 0 || c.Buckets[0.005] != workers {
		t.Errorf("check histogram: %+v", c)
	}
	if r := snap.ReloadDuration; r.Count != workers || r.Buckets[0.01] != 0 || r.Buckets[0.025] != workers ||
		r.Sum < 0.159 || r.Sum > 0.161 {
		t.Errorf("reload histogram: %+v", r)
	}
}

// TestHistogramBounds checks that an observation on a bound counts in that bucket (Prometheus's
// "le") and one above every bound only in +Inf.
func TestHistogramBounds(t *testing.T) {
	h := newHistogram([]float64{0.1, 1})
	h.observe(100 * time.Millisecond)
	h.observe(time.Second + time.Nanosecond)
	s := h.snapshot()
	if s.Buckets[0.1] != 1 || s.Buckets[1] != 1 || s.Count != 2 {
		t.Fatalf("%+v", s)
	}
}
