package procfs

import "os"

// Children lists the calling process's children, from the children file of each of its threads
// (/proc/self/task/TID/children: a child belongs to the thread that forked it, an orphan
// reparented to the process to its main thread). Each file is read in one read (readWhole) and
// its pids parsed in place: god with 10 000 jobs has 10 000 children, and the containment looks
// at them after bursts of exits. A thread that ended meanwhile is passed over; a child forked during the
// reading may be missed (the caller looks again at the next exit).
func Children() []int {
	tasks, _ := os.ReadDir("/proc/self/task")
	var out []int
	for _, t := range tasks {
		b, err := readWhole("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
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
