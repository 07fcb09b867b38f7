// Package upgradestate is the state god hands across `god upgrade`: what its new image needs to
// go on where the old one stopped (the loaders it read, each job's machine, sockets and stored
// fds, the output pipes, exits reaped during the hand-over, recent output, helpers, units), as
// JSON in a memfd named by GOD_UPGRADE_STATE. It is pure data and its encoding, with the few
// steps that move it across an exec (the memfd, close-on-exec, the environment); the supervisor
// fills it in and restores from it.
package upgradestate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// Version is the newest version of the state format handed across a re-exec; a god reads every
// version from 1 to its own. Bump it when a change is not backward compatible.
//
// Version 2 adds Helpers: fds that a god from before helpers would inherit without knowing them,
// and keep open (a metrics socket it then could not listen on again), so it must refuse such a
// state. A state without helpers is still written as version 1, which every god reads.
const Version = 2

// Environment variables of the re-exec.
const (
	EnvState     = "GOD_UPGRADE_STATE"     // fd of the memfd that holds the state
	EnvPreflight = "GOD_UPGRADE_PREFLIGHT" // set: read the state on stdin, check it, exit
	// EnvFailed is set when an old image runs again because the new one could not take over:
	// it says why, for the `god upgrade` client and the log.
	EnvFailed = "GOD_UPGRADE_FAILED"
)

// State is everything god's new image needs to go on where the old one stopped.
type State struct {
	Version     int              `json:"version"`
	Written     time.Time        `json:"written"`
	From        string           `json:"from"` // version of the god that wrote it
	ControlFd   int              `json:"control_fd"`
	ControlPath string           `json:"control_path"`
	NotifyFd    int              `json:"notify_fd"`
	NotifyPath  string           `json:"notify_path"`
	ReplyFd     int              `json:"reply_fd"` // the `god upgrade` client's connection, or -1
	Loaders     []Loader         `json:"loaders"`
	Jobs        []Job            `json:"jobs"`
	Pipes       []Pipe           `json:"pipes"`
	Exits       []Exit           `json:"exits"` // reaped by the old image, not yet seen by their job
	Logs        []joblog.Line    `json:"logs"`  // recent output, for god logs
	Inherited   map[string][]int `json:"inherited,omitempty"`
	Helpers     []Helper         `json:"helpers,omitempty"` // version 2
	// FallbackFd is the image that wrote the state, open, or -1: a new image that cannot take
	// over execs it again with the same state (see Inherited.FallBack). Older gods do not write
	// it (0 is read as none: fd 0 is stdin).
	FallbackFd int `json:"fallback_fd,omitempty"`
	// Units are the job processes' units (the supervisor's containment) and the last tag handed
	// out; an older image ignores them.
	Units   []Unit            `json:"units,omitempty"`
	UnitSeq uint64            `json:"unit_seq,omitempty"`
	Extra   map[string]string `json:"extra,omitempty"`
}

// Loader is a loader file god has read.
type Loader struct {
	Path     string   `json:"path"`
	Ino      uint64   `json:"ino"`
	Size     int64    `json:"size"`
	Mtime    int64    `json:"mtime_ns"`
	Mode     uint32   `json:"mode"`
	Jobs     []string `json:"jobs"`
	NotGodv1 bool     `json:"not_godv1,omitempty"`
}

// Job is one job: its state machine's own state (jobstate.Job, which keeps every deadline), and
// what the job's actor holds for it (sockets, stored fds).
type Job struct {
	jobstate.Job
	UserStopped bool     `json:"user_stopped,omitempty"`
	Reloading   bool     `json:"reloading,omitempty"`
	Sockets     []Socket `json:"sockets,omitempty"`
	Stored      []Stored `json:"stored,omitempty"`
	Accept      *Accept  `json:"accept,omitempty"` // an accept job that accepts
}

// Accept is an accepting accept job: its running connection processes, which god's new image
// takes over, and what its status counts.
type Accept struct {
	Conns  []int     `json:"conns,omitempty"`
	Served int       `json:"served,omitempty"`
	Since  time.Time `json:"since"`
}

// Pids are the processes of the job the state hands over: the machine's and the connection
// processes of an accept job.
func (js *Job) Pids() []int {
	var out []int
	for _, p := range js.Procs {
		out = append(out, p.Pid)
	}
	if js.Accept != nil {
		out = append(out, js.Accept.Conns...)
	}
	return out
}

// Socket is a listening socket god keeps for a job.
type Socket struct {
	Spec    string `json:"spec"`
	Fd      int    `json:"fd"`
	Adopted bool   `json:"adopted,omitempty"`
}

// Stored is an fd a job stored with FDSTORE=1.
type Stored struct {
	Name   string `json:"name"`
	Fd     int    `json:"fd"`
	NoPoll bool   `json:"no_poll,omitempty"` // FDPOLL=0
}

// Pipe is a job output pipe and the start of a line not yet delivered.
type Pipe struct {
	Fd         int    `json:"fd"`
	Job        string `json:"job"`
	Generation int    `json:"gen"`
	Pid        int    `json:"pid"`
	Stream     string `json:"stream"`
	Format     string `json:"format"`
	Rest       []byte `json:"rest,omitempty"`
	// Cut: Rest is the tail of a line already cut at joblog.MaxLine (an empty end of it is no
	// line). Older images neither write nor read it: at worst one empty line more.
	Cut bool `json:"cut,omitempty"`
	// Tag is the pid its lines carry when it is not Pid: a successor that inherited the pipe.
	// Older images neither write nor read it.
	Tag int `json:"tag,omitempty"`
}

// Exit is a wait status.
type Exit struct {
	Pid    int       `json:"pid"`
	Status uint32    `json:"status"`
	Time   time.Time `json:"time"`
}

// Helper is a helper's files in the state: the fds stay open across the exec, and the new image
// gives them to the helper it starts.
type Helper struct {
	Name string `json:"name"`
	Fds  []int  `json:"fds"`
}

// Unit is a job process's unit (its group, its cgroup, the processes that escaped it): the new
// image goes on holding what escaped.
type Unit struct {
	Tag     uint64 `json:"tag"`
	Job     string `json:"job"`
	Pgid    int    `json:"pgid"`
	Escaped []int  `json:"escaped,omitempty"`
	Cgroup  string `json:"cgroup,omitempty"`
}

// Check validates a state read by a new image: the version, and that what must be there is.
func (st *State) Check() error {
	if st.Version < 1 || st.Version > Version {
		return fmt.Errorf("upgrade state version %d, this god reads versions 1 to %d", st.Version, Version)
	}
	if err := st.checkHelpers(); err != nil {
		return err
	}
	for _, u := range st.Units {
		if u.Pgid <= 1 || u.Tag == 0 {
			return fmt.Errorf("upgrade state: bad unit %+v", u)
		}
		for _, pid := range u.Escaped {
			if pid <= 1 {
				return fmt.Errorf("upgrade state: unit %d: bad pid %d", u.Tag, pid)
			}
		}
	}
	seen := map[string]bool{}
	for _, js := range st.Jobs {
		if !loader.ValidJobName(js.Name) || seen[js.Name] {
			return fmt.Errorf("upgrade state: bad or repeated job name %q", js.Name)
		}
		seen[js.Name] = true
		for _, s := range js.Sockets {
			if _, err := fdpass.ParseSpec(s.Spec); err != nil {
				return fmt.Errorf("upgrade state: job %s: %w", js.Name, err)
			}
		}
		for _, p := range js.Procs {
			if p.Pid <= 1 {
				return fmt.Errorf("upgrade state: job %s: bad pid %d", js.Name, p.Pid)
			}
		}
	}
	return nil
}

// checkHelpers validates the helpers of a state: names unique, fds above stdio.
func (st *State) checkHelpers() error {
	if len(st.Helpers) > 0 && st.Version < 2 {
		return fmt.Errorf("upgrade state version %d carries helpers (version 2 and later do)", st.Version)
	}
	seen := map[string]bool{}
	for _, hs := range st.Helpers {
		if hs.Name == "" || seen[hs.Name] {
			return fmt.Errorf("upgrade state: empty or repeated helper name %q", hs.Name)
		}
		seen[hs.Name] = true
		for _, fd := range hs.Fds {
			if fd < 3 {
				return fmt.Errorf("upgrade state: helper %s: bad fd %d", hs.Name, fd)
			}
		}
	}
	return nil
}

// Read decodes a state and checks it.
func Read(r io.Reader) (*State, error) {
	var st State
	dec := json.NewDecoder(io.LimitReader(r, 1<<30))
	if err := dec.Decode(&st); err != nil {
		return nil, fmt.Errorf("upgrade state: %w", err)
	}
	if err := st.Check(); err != nil {
		return nil, err
	}
	return &st, nil
}

// Fds lists every fd the state hands over, to keep open across an exec.
func (st *State) Fds() []int {
	keep := []int{st.ControlFd, st.ReplyFd, st.NotifyFd}
	for _, js := range st.Jobs {
		for _, so := range js.Sockets {
			keep = append(keep, so.Fd)
		}
		for _, so := range js.Stored {
			keep = append(keep, so.Fd)
		}
	}
	for _, p := range st.Pipes {
		keep = append(keep, p.Fd)
	}
	for _, fds := range st.Inherited {
		keep = append(keep, fds...)
	}
	for _, h := range st.Helpers {
		keep = append(keep, h.Fds...)
	}
	return keep
}

// TakeHelperFiles returns the files god's old image kept for the helper called name (in the
// order the helper had them), close-on-exec, and removes them from the state: the caller owns
// them. It returns nil when the old image had no such helper (it ran without it, or it is a god
// from before helpers). CloseUntakenHelperFiles closes the files of every helper not taken.
func (st *State) TakeHelperFiles(name string) []*os.File {
	if st == nil {
		return nil
	}
	for i := range st.Helpers {
		hs := &st.Helpers[i]
		if hs.Name != name || hs.Fds == nil {
			continue
		}
		files := make([]*os.File, 0, len(hs.Fds))
		for _, fd := range hs.Fds {
			unix.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), name))
		}
		hs.Fds = nil
		return files
	}
	return nil
}

// CloseUntakenHelperFiles closes what an old image kept for a helper this image does not run.
func (st *State) CloseUntakenHelperFiles() {
	for i := range st.Helpers {
		for _, fd := range st.Helpers[i].Fds {
			syscall.Close(fd)
		}
		st.Helpers[i].Fds = nil
	}
}
