package supervisor

import (
	"bytes"
	"os"
	"runtime"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/supervisor/control"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux
// architecture Go supports (the kernel exports that fixed value whatever its own HZ).
const clockTicks = 100

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
			p.CPUSeconds, p.RSSBytes = processUsage(p.Pid, page, buf)
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

// processUsage reads pid's processor time (utime + stime) and resident set size; zeros when
// the process is gone or /proc does not say. buf holds the file (a stat line is well under
// 1 KiB); the file is read with plain system calls, without an *os.File.
func processUsage(pid int, page int64, buf []byte) (cpuSeconds float64, rssBytes int64) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return 0, 0
	}
	stat := buf[:n]
	// "PID (COMM) STATE PPID ..." with COMM free to hold spaces and ')': fields are counted from
	// the last ')'. After it, utime and stime are the 12th and 13th fields, rss the 22nd.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0
	}
	var f [22][]byte
	k := 0
	for _, field := range bytes.Fields(stat[i+1:]) {
		if k == len(f) {
			break
		}
		f[k] = field
		k++
	}
	if k < len(f) {
		return 0, 0
	}
	utime, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	rss, err3 := strconv.ParseInt(string(f[21]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0
	}
	return float64(utime+stime) / clockTicks, max(rss, 0) * page
}
