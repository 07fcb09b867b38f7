package supervisor

import (
	"os"
	"testing"

	"github.com/emielm/watchgod/supervisor/control"
)

// TestWithUsage: the processes are copied before their figures are filled in (the snapshots
// are shared with other readers), a job without processes keeps none, and a live process (this
// test's) gets its resident memory, over enough processes to take several goroutines.
func TestWithUsage(t *testing.T) {
	self := os.Getpid()
	shared := []control.ProcessStatus{{Pid: self}, {Pid: 1<<22 + 1}}
	jobs := []control.JobStatus{{Name: "none"}, {Name: "empty", Processes: []control.ProcessStatus{}}}
	for range 2 * usageChunk {
		jobs = append(jobs, control.JobStatus{Name: "j", Processes: shared})
	}
	out := withUsage(jobs)
	if out[0].Processes != nil || out[1].Processes != nil {
		t.Errorf("jobs without processes: %v, %v; want nil", out[0].Processes, out[1].Processes)
	}
	for i, j := range out[2:] {
		if len(j.Processes) != 2 || j.Processes[0].Pid != self || j.Processes[0].RSSBytes <= 0 || j.Processes[1].RSSBytes != 0 {
			t.Fatalf("job %d: processes %+v; want this process with its RSS, then a gone one without", i+2, j.Processes)
		}
		if &j.Processes[0] == &shared[0] || (i > 0 && &j.Processes[0] == &out[i+1].Processes[0]) {
			t.Fatalf("job %d: processes not copied", i+2)
		}
		if cap(j.Processes) != 2 {
			t.Fatalf("job %d: capacity %d: an append to it would write into the next job's", i+2, cap(j.Processes))
		}
	}
	if shared[0].RSSBytes != 0 {
		t.Error("the shared snapshot's process was written")
	}
}
