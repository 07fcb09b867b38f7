package supervisor

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/emielm/watchgod/supervisor/control"
)

// TestMetricsSnapshotJSON: the snapshot survives its trip to the exporter, histogram buckets
// included (a list ordered by bound, since JSON cannot key by a float), under documented names.
func TestMetricsSnapshotJSON(t *testing.T) {
	in := control.MetricsSnapshot{
		Live: true,
		Jobs: []control.JobMetrics{
			{Name: "gone", Exits: map[int]uint64{0: 1}, LogLines: map[string]uint64{}},
			{Name: "web", State: "run", Restarts: 2, Reloads: 3, ReloadFailures: 1,
				Exits: map[int]uint64{1: 2, 143: 1}, LogLines: map[string]uint64{"stdout": 10}},
		},
		Loaders:        []control.LoaderMetrics{{Path: "/d/app", Failing: true, Failures: 5}},
		CheckDuration:  control.Histogram{Count: 3, Sum: 0.006, Buckets: map[float64]uint64{0.005: 3, 0.001: 1, 10: 3}},
		ReloadDuration: control.Histogram{Buckets: map[float64]uint64{}},
		Runtime:        control.RuntimeMetrics{GoVersion: "go1.26", Goroutines: 9, GCPauseQuantiles: []float64{0, 1, 2, 3, 4}},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"check_duration":{"count":3,"sum":0.006,"buckets":[{"le":0.001,"count":1},{"le":0.005,"count":3},{"le":10,"count":3}]}`,
		`"exits":{"1":2,"143":1}`, `"state":"run"`, `"runtime":{"go_version":"go1.26","goroutines":9`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
	if strings.Contains(string(b), `"name":"gone","state"`) {
		t.Errorf("a removed job carries a state: %s", b)
	}
	var out control.MetricsSnapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in  %+v\n out %+v", in, out)
	}
	var h control.Histogram
	if err := json.Unmarshal([]byte(`{"count":1,"sum":1,"buckets":[{"le":1,"count":1},{"le":1,"count":1}]}`), &h); err == nil {
		t.Error("a bound given twice was accepted")
	}
}

// TestHandleMetrics: the metrics command answers with a snapshot that decodes, its runtime
// figures filled in, also once the loop has ended.
func TestHandleMetrics(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.devNull.Close() })
	close(s.doneCh) // no loop: counters only
	s.metrics.restarted("web")
	res := s.Handle(context.Background(), control.Peer{}, control.Request{V: control.Version, Cmd: control.CmdMetrics}, nil)
	if !res.OK {
		t.Fatalf("metrics: %+v", res)
	}
	var snap control.MetricsSnapshot
	if err := json.Unmarshal(res.Metrics, &snap); err != nil {
		t.Fatal(err)
	}
	if snap.Live || len(snap.Jobs) != 1 || snap.Jobs[0].Restarts != 1 {
		t.Errorf("snapshot: %+v", snap)
	}
	if r := snap.Runtime; r.GoVersion == "" || r.Goroutines == 0 || r.HeapInuseBytes == 0 || r.SysBytes == 0 || r.Threads == 0 {
		t.Errorf("runtime figures missing: %+v", r)
	}
}
