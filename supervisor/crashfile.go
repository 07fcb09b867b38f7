package supervisor

import (
	"os"
	"time"

	"github.com/emielm/watchgod/internal/crashstate"

	"github.com/emielm/watchgod/internal/procfs"
)

// The crash file (internal/crashstate) lists every process of god's jobs and every socket they
// hold, so that a god started after this one was killed finds them. It is rewritten shortly after
// the set of processes changes (the loop learns of it from the jobs' statuses) and removed when
// god exits cleanly.
//
// A write costs O(jobs) (every job's processes, encoded and written whole), and while thousands
// of jobs start, processes change all the time: written every crashWriteDelay, the file took
// about a second of god's CPU over a start of 5000 jobs (~10 s), a tenth of it. So the writes are
// paced (crashPacing): the next write waits at least crashWriteDelay after a change, and after
// the end of the last write 19 times as long as that write took, so the file costs at most a
// twentieth of god's time however many jobs there are; but never more than crashMaxLag, so that
// a god killed in the middle of a big start leaves a file that lacks at most the last second or
// so of changes. What it lacks is not lost for good: the god that reads it (crashstate.Recover)
// also ends every process whose environment carries the dead god's GOD_SOCKET, which every job
// process has; only a listening socket held by a process the file does not name is not taken
// back for its job.

// crashWriteDelay folds a burst of changes (a reload, many jobs starting) into one write.
const crashWriteDelay = 100 * time.Millisecond

// crashMaxLag bounds the pause between writes that a dear write earns: the most the file lags
// behind god's processes while they change.
const crashMaxLag = time.Second

// crashPacing is the pacing of the crash file's writes (see above).
var crashPacing = pacer{Share: 19, Min: crashWriteDelay, Max: crashMaxLag}

// crashChanged schedules a write of the crash file.
func (s *Supervisor) crashChanged() {
	if s.cfg.StateFile == "" || s.crashTimer.t != nil {
		return
	}
	s.crashTimer.set(s.crashDelay(time.Now()))
}

// crashDelay is how long a change at now waits for its write: crashWriteDelay, or longer while
// the pause that the last write earned lasts.
func (s *Supervisor) crashDelay(now time.Time) time.Duration {
	return max(crashWriteDelay, s.crashPace.next(now).Sub(now))
}

// writeCrashFile writes what a god started after this one dies needs to find its orphans, and
// records what the write cost for the pacing of the next.
func (s *Supervisor) writeCrashFile() {
	start := time.Now()
	defer func() { s.crashPace.done(start, time.Now()) }()
	st := &crashstate.State{God: crashstate.Self()}
	seen := map[int]bool{}
	escaped := s.contain.escapedByJob()
	for name, h := range s.jobs {
		j := crashstate.Job{Name: name, Sockets: h.status.Sockets}
		for _, p := range h.status.Processes {
			seen[p.Pid] = true
			if pr, ok := s.crashProc(p.Pid); ok {
				j.Procs = append(j.Procs, pr)
			}
		}
		for _, pid := range append(escaped[name], h.conns...) {
			seen[pid] = true
			if pr, ok := s.crashProc(pid); ok {
				j.Procs = append(j.Procs, pr)
			}
		}
		st.Jobs = append(st.Jobs, j)
	}
	for pid := range s.crashProcs {
		if !seen[pid] {
			delete(s.crashProcs, pid)
		}
	}
	if err := crashstate.Write(s.cfg.StateFile, st); err != nil {
		s.log.Warn("cannot write the state file a new god would read after a crash", "err", err)
	}
}

// crashProc names pid for the crash file, read once per process.
func (s *Supervisor) crashProc(pid int) (crashstate.Proc, bool) {
	if p, ok := s.crashProcs[pid]; ok {
		return p, true
	}
	start, err := procfs.StartTime(pid)
	if err != nil {
		return crashstate.Proc{}, false
	}
	pgid, err := syscallGetpgid(pid)
	if err != nil {
		return crashstate.Proc{}, false
	}
	p := crashstate.Proc{Pid: pid, Pgid: pgid, Start: start}
	s.crashProcs[pid] = p
	return p, true
}

// removeCrashFile is the end of a clean exit: nothing is left for anyone to recover.
func (s *Supervisor) removeCrashFile() {
	if s.cfg.StateFile != "" {
		os.Remove(s.cfg.StateFile)
	}
}
