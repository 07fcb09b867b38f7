package control

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestMetricsSnapshotJSON: the snapshot survives its trip to the exporter, histogram buckets
// included (a list ordered by bound, since JSON cannot key by a float), under documented names.
func TestMetricsSnapshotJSON(t *testing.T) {
	in := MetricsSnapshot{
		Live: true,
		Jobs: []JobMetrics{
			{Name: "gone", Exits: map[int]uint64{0: 1}, LogLines: map[string]uint64{}},
			{Name: "web", State: "run", Restarts: 2, Reloads: 3, ReloadFailures: 1,
				Exits: map[int]uint64{1: 2, 143: 1}, LogLines: map[string]uint64{"stdout": 10}},
		},
		Loaders:        []LoaderMetrics{{Path: "/d/app", Failing: true, Failures: 5}},
		CheckDuration:  Histogram{Count: 3, Sum: 0.006, Buckets: map[float64]uint64{0.005: 3, 0.001: 1, 10: 3}},
		ReloadDuration: Histogram{Buckets: map[float64]uint64{}},
		Runtime:        RuntimeMetrics{GoVersion: "go1.26", Goroutines: 9, GCPauseQuantiles: []float64{0, 1, 2, 3, 4}},
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
	var out MetricsSnapshot
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in  %+v\n out %+v", in, out)
	}
	var h Histogram
	if err := json.Unmarshal([]byte(`{"count":1,"sum":1,"buckets":[{"le":1,"count":1},{"le":1,"count":1}]}`), &h); err == nil {
		t.Error("a bound given twice was accepted")
	}
}
