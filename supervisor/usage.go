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
	n := 0
	for _, j := range jobs {
		n += len(j.Processes)
	}
	// One array for every copy, and one for the pointers: a status of thousands of jobs would
	// otherwise allocate a small slice per job.
	all := make([]control.ProcessStatus, 0, n)
	procs := make([]*control.ProcessStatus, n)
	for i := range jobs {
		start := len(all)
		all = append(all, jobs[i].Processes...)
		jobs[i].Processes = all[start:len(all):len(all)]
		if len(jobs[i].Processes) == 0 {
			jobs[i].Processes = nil // as the snapshot had it: omitted from the JSON either way
		}
	}
	for k := range all {
		procs[k] = &all[k]
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
