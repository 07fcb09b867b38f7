package procfs

import (
	"bytes"
	"strconv"

	"golang.org/x/sys/unix"
)

// clockTicks is USER_HZ, the unit of the times in /proc/PID/stat: 100 on every Linux
// architecture Go supports (the kernel exports that fixed value whatever its own HZ).
const clockTicks = 100

// Usage reads pid's processor time (utime + stime, in seconds) and resident set size (in
// pages) from /proc/PID/stat; zeros when the process is gone or /proc does not say. buf holds
// the file (a stat line is well under 1 KiB) and the file is read with plain system calls,
// without an *os.File: `god status` reads it for thousands of processes at a time, so the
// line is parsed in place too, without a string per field (splitting it into strings was a
// tenth of the read's cost, and most of god status's garbage).
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
	ticks, rss, ok := parseUsage(buf[:n])
	if !ok {
		return 0, 0
	}
	return float64(ticks) / clockTicks, rss
}

// parseUsage finds utime + stime (clock ticks) and rss (pages, never negative) in a
// /proc/PID/stat line: the 12th, 13th and 22nd fields after the command name, which may hold
// spaces and ')' and so ends at the last ')'. Fields are separated by runs of white space, as
// strings.Fields splits them. ok is false when a field is missing or not a number.
func parseUsage(stat []byte) (ticks uint64, rss int64, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, false
	}
	var utime, stime []byte
	rest := stat[i+1:]
	for field := 0; field <= 21; field++ {
		f, r := nextField(rest)
		if f == nil {
			return 0, 0, false
		}
		rest = r
		switch field {
		case 11:
			utime = f
		case 12:
			stime = f
		case 21:
			u, err1 := parseUint(utime)
			s, err2 := parseUint(stime)
			n, err3 := parseInt(f)
			if !err1 || !err2 || !err3 {
				return 0, 0, false
			}
			return u + s, max(n, 0), true
		}
	}
	return 0, 0, false
}

// nextField returns the first field of b (nil when b holds only white space) and what follows it.
func nextField(b []byte) (field, rest []byte) {
	start := 0
	for start < len(b) && isSpace(b[start]) {
		start++
	}
	if start == len(b) {
		return nil, nil
	}
	end := start
	for end < len(b) && !isSpace(b[end]) {
		end++
	}
	return b[start:end], b[end:]
}

// isSpace is the ASCII white space of strings.Fields (a stat line is ASCII outside the
// command name).
func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// parseUint is strconv.ParseUint(string(b), 10, 64) without the string; ok false where it
// errs.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseInt is strconv.ParseInt(string(b), 10, 64) without the string, for the sign forms a
// stat line can hold; ok false where it errs.
func parseInt(b []byte) (int64, bool) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	u, ok := parseUint(b)
	switch {
	case !ok:
		return 0, false
	case neg && u <= 1<<63:
		return -int64(u), true // -(1<<63) wraps to itself: math.MinInt64, as ParseInt gives
	case !neg && u < 1<<63:
		return int64(u), true
	}
	return 0, false
}
