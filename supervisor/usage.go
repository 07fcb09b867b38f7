package supervisor

import (
	"os"
	"runtime"
	"sync"

	"github.com/emielm/watchgod/internal/procfs"
	"github.com/emielm/watchgod/supervisor/control"
)

// usageChunk is how many processes one goroutine of withUsage reads: below it, one does all.
const usageChunk = 512

// withUsage returns jobs with each process's CPU time and resident memory filled in from /proc,
// like `pm2 list` and `ps` show them. The process lists are copied: the snapshots are the jobs'
// published ones, shared with other readers. With thousands of processes the reads (one small
// /proc file each, most of god status's time) are spread over the CPUs.
func withUsage(jobs []control.JobStatus) []control.JobStatus {
	var procs []*control.ProcessStatus
	for i := range jobs {
		jobs[i].Processes = append([]control.ProcessStatus(nil), jobs[i].Processes...)
		for k := range jobs[i].Processes {
			procs = append(procs, &jobs[i].Processes[k])
		}
	}
	page := int64(os.Getpagesize())
	fill := func(part []*control.ProcessStatus) {
		buf := make([]byte, 1024)
		for _, p := range part {
			cpu, pages := procfs.Usage(p.Pid, buf)
			p.CPUSeconds, p.RSSBytes = cpu, pages*page
		}
	}
	workers := min(runtime.GOMAXPROCS(0), (len(procs)+usageChunk-1)/usageChunk)
	if workers <= 1 {
		fill(procs)
		return jobs
	}
	var wg sync.WaitGroup
	per := (len(procs) + workers - 1) / workers
	for start := 0; start < len(procs); start += per {
		part := procs[start:min(start+per, len(procs))]
		wg.Go(func() { fill(part) })
	}
	wg.Wait()
	return jobs
}
