package procfs

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux
// architecture Go supports (the kernel exports that fixed value whatever its own HZ).
const clockTicks = 100

// Usage reads pid's processor time (utime + stime, in seconds) and resident set size (in
// pages) from /proc/PID/stat; zeros when the process is gone or /proc does not say. buf holds
// the file (a stat line is well under 1 KiB) and the file is read with plain system calls,
// without an *os.File: `god status` reads it for thousands of processes at a time.
func Usage(pid int, buf []byte) (cpuSeconds float64, rssPages int64) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, 0
	}
	n, err := unix.Read(fd, buf)
	unix.Close(fd)
	if err != nil || n <= 0 {
		return 0, 0
	}
	// After the command name, utime and stime are the 12th and 13th fields, rss the 22nd.
	f := fieldsAfterComm(buf[:n])
	if len(f) < 22 {
		return 0, 0
	}
	utime, err1 := strconv.ParseUint(f[11], 10, 64)
	stime, err2 := strconv.ParseUint(f[12], 10, 64)
	rss, err3 := strconv.ParseInt(f[21], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0
	}
	return float64(utime+stime) / clockTicks, max(rss, 0)
}
