// Package crashstate lets a god that was killed (kill -9, OOM, a crash) be followed by one that
// finds what it left. The running god keeps a small file beside its control socket with every
// process its jobs run (pid, process group, start time) and every listening socket they hold; a
// new god that finds the file of a god that is gone takes the sockets back from the orphans
// (pidfd_getfd: the queue of waiting connections is kept), ends the orphans cleanly, and then
// starts its jobs on those sockets. No orphan serves unsupervised, and no duplicate fights for a
// port.
package crashstate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/emielm/watchgod/internal/procfs"
)

// State is what a god leaves behind.
type State struct {
	God  Proc  `json:"god"`
	Jobs []Job `json:"jobs"`
}

// Job is one job's processes and sockets.
type Job struct {
	Name    string   `json:"name"`
	Procs   []Proc   `json:"procs,omitempty"`
	Sockets []string `json:"sockets,omitempty"` // NAME=ADDR specs
}

// Proc is a process, named so that a reused pid is never taken for it.
type Proc struct {
	Pid   int    `json:"pid"`
	Pgid  int    `json:"pgid"`
	Start uint64 `json:"start"` // /proc/PID/stat starttime, clock ticks since boot
}

// Path is the state file of the god whose control socket is socket.
func Path(socket string) string { return strings.TrimSuffix(socket, ".sock") + "-state.json" }

// Self is the calling process as a Proc.
func Self() Proc {
	pid := os.Getpid()
	st, _ := procfs.StartTime(pid)
	pgid, _ := pgidOf(pid)
	return Proc{Pid: pid, Pgid: pgid, Start: st}
}

// Write replaces the file at path with st, atomically (a temporary file renamed over it), mode 0600.
func Write(path string, st *State) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state file %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return nil
}

// Read reads the state file at path; nil, nil when there is none.
func Read(path string) (*State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return &st, nil
}

// Alive reports whether p still runs: its pid exists and started when p did (so a pid the kernel
// handed to another process since is not p).
func (p Proc) Alive() bool {
	st, err := procfs.StartTime(p.Pid)
	return err == nil && st == p.Start && p.Start != 0
}

// pgidOf is the process group of pid.
func pgidOf(pid int) (int, error) { return procfs.ProcessGroup(pid) }
