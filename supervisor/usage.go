package supervisor

import (
	"bytes"
	"os"
	"strconv"

	"github.com/emielm/watchgod/supervisor/control"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux
// architecture Go supports (the kernel exports that fixed value whatever its own HZ).
const clockTicks = 100

// withUsage returns jobs with each process's CPU time and resident memory filled in from /proc,
// like `pm2 list` and `ps` show them. The process lists are copied: the snapshots are the jobs'
// published ones, shared with other readers.
func withUsage(jobs []control.JobStatus) []control.JobStatus {
	page := int64(os.Getpagesize())
	for i := range jobs {
		procs := append([]control.ProcessStatus(nil), jobs[i].Processes...)
		for k := range procs {
			procs[k].CPUSeconds, procs[k].RSSBytes = processUsage(procs[k].Pid, page)
		}
		jobs[i].Processes = procs
	}
	return jobs
}

// processUsage reads pid's processor time (utime + stime) and resident set size; zeros when
// the process is gone or /proc does not say.
func processUsage(pid int, page int64) (cpuSeconds float64, rssBytes int64) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0
	}
	// "PID (COMM) STATE PPID ..." with COMM free to hold spaces and ')': fields are counted from
	// the last ')'. After it, utime and stime are the 12th and 13th fields, rss the 22nd.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 22 {
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
