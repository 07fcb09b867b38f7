package fdpass

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnix opens a unix or unixgram socket at s.Address after clearing a
// stale socket file, then applies mode, owner and group. On any error after
// bind the new socket file is removed again.
func openUnix(s Spec) (*os.File, error) {
	if err := clearStale(s); err != nil {
		return nil, err
	}
	addr := &net.UnixAddr{Name: s.Address, Net: s.Network}
	var f *os.File
	var err error
	if s.Network == "unix" {
		var ln *net.UnixListener
		ln, err = net.ListenUnix("unix", addr)
		if err != nil {
			return nil, err
		}
		// The path must outlive this listener: god keeps the fd.
		ln.SetUnlinkOnClose(false)
		f, err = detach(ln, ln, s)
	} else {
		var c *net.UnixConn
		c, err = net.ListenUnixgram("unixgram", addr)
		if err != nil {
			return nil, err
		}
		f, err = detach(c, c, s)
	}
	if err == nil {
		err = applyPerms(s)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.Remove(s.Address)
		return nil, err
	}
	return f, nil
}

// clearStale makes room for binding at s.Address. Nothing there: fine. A
// socket nobody serves (connect is refused): removed. A served socket, of
// either type: "in use". Anything else: an error naming what is there.
func clearStale(s Spec) error {
	fi, err := os.Lstat(s.Address)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%s)", s.Address, fi.Mode().Type())
	}
	live, err := probe(s)
	if err != nil {
		return fmt.Errorf("probe existing socket %s: %w", s.Address, err)
	}
	if live {
		return fmt.Errorf("%s is in use by a live socket", s.Address)
	}
	if err := os.Remove(s.Address); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// probe connects to the socket file without blocking. Refused means stale;
// connected, a full backlog (EAGAIN) or a socket of the other type
// (EPROTOTYPE) mean somebody holds it.
func probe(s Spec) (live bool, err error) {
	typ := unix.SOCK_STREAM
	if s.Network == "unixgram" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, &unix.SockaddrUnix{Name: s.Address})
	switch {
	case err == nil, errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.EPROTOTYPE):
		return true, nil
	case errors.Is(err, unix.ECONNREFUSED), errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, err
}

// applyPerms sets the socket file's mode, and owner and group when running
// as root (a non-root process cannot give files away, and the spec must
// still work for an unprivileged god).
func applyPerms(s Spec) error {
	if s.Mode != 0 {
		if err := os.Chmod(s.Address, s.Mode.Perm()); err != nil {
			return err
		}
	}
	if (s.Owner == "" && s.Group == "") || os.Geteuid() != 0 {
		return nil
	}
	uid, gid := -1, -1
	if s.Owner != "" {
		id, err := lookupID(s.Owner, true)
		if err != nil {
			return err
		}
		uid = id
	}
	if s.Group != "" {
		id, err := lookupID(s.Group, false)
		if err != nil {
			return err
		}
		gid = id
	}
	return os.Lchown(s.Address, uid, gid)
}

// lookupID resolves a user or group name, or takes a numeric id as is.
func lookupID(name string, isUser bool) (int, error) {
	if id, err := strconv.Atoi(name); err == nil && id >= 0 {
		return id, nil
	}
	var sid string
	if isUser {
		u, err := user.Lookup(name)
		if err != nil {
			return -1, fmt.Errorf("owner: %w", err)
		}
		sid = u.Uid
	} else {
		g, err := user.LookupGroup(name)
		if err != nil {
			return -1, fmt.Errorf("group: %w", err)
		}
		sid = g.Gid
	}
	return strconv.Atoi(sid)
}
