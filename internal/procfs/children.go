package procfs

import (
	"io"
	"os"
)

// Children lists the calling process's children, from the children file of each of its threads
// (/proc/self/task/TID/children: a child belongs to the thread that forked it, an orphan
// reparented to the process to its main thread). One buffer serves every file and the pids are
// parsed in place: god with 10 000 jobs has 10 000 children, and the containment looks at them
// after bursts of exits. A thread that ended meanwhile is passed over; a child forked during the
// reading may be missed (the caller looks again at the next exit).
func Children() []int {
	tasks, _ := os.ReadDir("/proc/self/task")
	var out []int
	buf := make([]byte, 0, 64<<10)
	for _, t := range tasks {
		b, err := readAll(buf, "/proc/self/task/"+t.Name()+"/children")
		if err != nil {
			continue
		}
		buf = b[:0]
		pid, in := 0, false
		for _, ch := range b {
			if ch >= '0' && ch <= '9' {
				pid, in = pid*10+int(ch-'0'), true
				continue
			}
			if in {
				out = append(out, pid)
			}
			pid, in = 0, false
		}
		if in {
			out = append(out, pid)
		}
	}
	return out
}

// readAll reads the whole of a /proc file into buf, growing it as needed (such files have no
// size to stat).
func readAll(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF || (err == nil && n == 0) {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
