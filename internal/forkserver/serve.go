package forkserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// RunIfRequested serves as the fork server when Env is set, and exits when god closes its end;
// it returns at once otherwise. A binary that god may start as its fork server (god itself, a
// test binary in TestMain) calls it first thing in main.
func RunIfRequested() {
	if os.Getenv(Env) != "1" {
		return
	}
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, "god fork server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// serve reads requests until end of file and runs each in a goroutine of its own: a fork+exec
// blocks its thread until the child has exec'd (vfork), and god starts several at once.
func serve() error {
	// The children are started with SIGPIPE ignored, as god ignores it when it forks them
	// itself (systemd's IgnoreSIGPIPE= does the same for services): the server must not differ.
	signal.Ignore(syscall.SIGPIPE)
	unix.CloseOnExec(serverFd) // the children must not hold god's line to the server
	f := os.NewFile(serverFd, "forkserver")
	fc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	conn, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return fmt.Errorf("fd %d is not a unix socket", serverFd)
	}
	defer conn.Close()
	buf := make([]byte, maxRequest)
	oob := make([]byte, unix.CmsgSpace((maxFiles+1)*4))
	for {
		n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			if errors.Is(err, net.ErrClosed) || n == 0 {
				return nil // god closed its end: idle, re-exec'd or gone
			}
			return err
		}
		fds := rights(oob[:oobn])
		req, err := parseRequest(buf[:n], len(fds))
		if err == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			err = fmt.Errorf("fork server: request %d truncated", req.ID)
		}
		if err != nil {
			closeAll(fds)
			send(conn, replyTo(req.ID, 0, err))
			continue
		}
		go func() {
			pid, err := forkExec(req, fds)
			closeAll(fds)
			send(conn, replyTo(req.ID, pid, err))
		}()
	}
}

// forkExec starts req's program with fds as its files (and its cgroup's), as god's child.
func forkExec(req request, fds []int) (int, error) {
	files := make([]uintptr, req.Files)
	for i := range files {
		files[i] = uintptr(fds[i])
	}
	sys := &syscall.SysProcAttr{Setpgid: req.Setpgid, Cloneflags: syscall.CLONE_PARENT}
	if c := req.Cred; c != nil {
		sys.Credential = &syscall.Credential{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups, NoSetGroups: c.NoSetGroups}
	}
	if req.Cgroup {
		sys.UseCgroupFD, sys.CgroupFD = true, fds[req.Files]
	}
	return syscall.ForkExec(req.Path, req.Argv, &syscall.ProcAttr{Dir: req.Dir, Env: req.Env, Files: files, Sys: sys})
}

// send writes one reply; a failure means god is gone, which the read loop sees next.
func send(conn *net.UnixConn, r reply) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	conn.Write(b)
}

// rights returns the fds of the SCM_RIGHTS messages in oob.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
