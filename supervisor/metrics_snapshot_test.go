package supervisor

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/emielm/watchgod/supervisor/control"
)

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
