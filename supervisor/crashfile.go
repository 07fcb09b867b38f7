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

// crashWriteDelay folds a burst of changes (a reload, many jobs starting) into one write.
const crashWriteDelay = 100 * time.Millisecond

// crashChanged schedules a write of the crash file.
func (s *Supervisor) crashChanged() {
	if s.cfg.StateFile == "" || s.crashTimer.t != nil {
		return
	}
	s.crashTimer.set(crashWriteDelay)
}

// writeCrashFile writes what a god started after this one dies needs to find its orphans.
func (s *Supervisor) writeCrashFile() {
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
