package forkserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"syscall"
)

// Env, set to "1" in its environment, makes god's binary the fork server (RunIfRequested).
const Env = "WATCHGOD_FORKSERVER"

// serverFd is the fd of the server's end of the socket.
const serverFd = 3

// maxRequest bounds a request's JSON: argv and environment of a job fit with room to spare. A
// bigger request is not sent (ErrUnavailable): the caller forks itself.
const maxRequest = 256 << 10

// maxFiles is how many fds one request carries at most: the kernel passes at most 253 in one
// message (SCM_MAX_FD), one is the cgroup's.
const maxFiles = 252

// request is one fork+exec, with Files fds attached in order, then the cgroup's if Cgroup.
type request struct {
	ID      uint64   `json:"id"`
	Path    string   `json:"path"`
	Argv    []string `json:"argv"`
	Env     []string `json:"env"`
	Dir     string   `json:"dir,omitempty"`
	Setpgid bool     `json:"setpgid,omitempty"`
	Cred    *cred    `json:"cred,omitempty"`
	Files   int      `json:"files"`
	Cgroup  bool     `json:"cgroup,omitempty"`
}

// cred is syscall.Credential on the wire.
type cred struct {
	Uid         uint32   `json:"uid"`
	Gid         uint32   `json:"gid"`
	Groups      []uint32 `json:"groups,omitempty"`
	NoSetGroups bool     `json:"nosetgroups,omitempty"`
}

// reply is the outcome of request ID: the child's pid, or the errno of the failed fork or exec
// (Errno), or another failure (Err).
type reply struct {
	ID    uint64 `json:"id"`
	Pid   int    `json:"pid,omitempty"`
	Errno int    `json:"errno,omitempty"`
	Err   string `json:"err,omitempty"`
}

// errorOf is the error a reply carries, nil for a started child. An errno comes back as a
// syscall.Errno, so that callers tell ENOENT, EACCES or EMFILE apart as they would after a fork
// of their own.
func (r reply) errorOf() error {
	switch {
	case r.Errno != 0:
		return syscall.Errno(r.Errno)
	case r.Err != "":
		return errors.New(r.Err)
	case r.Pid <= 0:
		return fmt.Errorf("fork server: reply %d without a pid", r.ID)
	}
	return nil
}

// replyTo makes the reply to request id for the outcome of its fork.
func replyTo(id uint64, pid int, err error) reply {
	var errno syscall.Errno
	switch {
	case err == nil:
		return reply{ID: id, Pid: pid}
	case errors.As(err, &errno):
		return reply{ID: id, Errno: int(errno)}
	default:
		return reply{ID: id, Err: err.Error()}
	}
}

// parseRequest reads a request as received with nfds fds, and checks that they match.
func parseRequest(b []byte, nfds int) (request, error) {
	var req request
	if err := json.Unmarshal(b, &req); err != nil {
		return req, fmt.Errorf("fork server: bad request: %w", err)
	}
	want := req.Files
	if req.Cgroup {
		want++
	}
	switch {
	case req.Files < 0 || want != nfds:
		return req, fmt.Errorf("fork server: request %d: %d fds passed, %d expected", req.ID, nfds, want)
	case req.Path == "" || len(req.Argv) == 0:
		return req, fmt.Errorf("fork server: request %d: no program", req.ID)
	}
	return req, nil
}
