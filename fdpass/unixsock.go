package fdpass

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// openUnix opens a unix, unixgram or unixpacket socket at s.Address. A socket with a path gets
// a stale socket file cleared first and its mode, owner and group applied after bind; on any
// error after bind the new socket file is removed again. An abstract socket has no file.
func openUnix(s Spec) (*os.File, error) {
	if s.IsFile() {
		if err := clearStale(s); err != nil {
			return nil, err
		}
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = s.Options.apply(int(fd)) })
		return errors.Join(err, serr)
	}}
	var f *os.File
	var err error
	if s.Network == "unixgram" {
		var pc net.PacketConn
		pc, err = lc.ListenPacket(context.Background(), s.Network, s.Address)
		if err != nil {
			return nil, err
		}
		f, err = detach(pc.(syscall.Conn), pc, s)
	} else {
		var ln net.Listener
		ln, err = lc.Listen(context.Background(), s.Network, s.Address)
		if err != nil {
			return nil, err
		}
		ul := ln.(*net.UnixListener)
		// The path must outlive this listener: god keeps the fd.
		ul.SetUnlinkOnClose(false)
		if f, err = detach(ul, ul, s); err == nil {
			if err = s.applyBacklog(f); err != nil {
				f.Close()
			}
		}
	}
	if err == nil && s.IsFile() {
		err = applyPerms(s)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		if s.IsFile() {
			os.Remove(s.Address)
		}
		return nil, err
	}
	return f, nil
}

// openFIFO creates the fifo at s.Address, or reuses the fifo already there (as systemd does),
// and opens it for reading and writing: that open never blocks, and the fifo never reports end
// of file to its readers while god holds it. A fifo it created gets the spec's mode (else
// 0666 less the umask), owner and group, and is removed again if that fails.
func openFIFO(s Spec) (*os.File, error) {
	created := true
	if err := unix.Mkfifo(s.Address, 0o666); errors.Is(err, unix.EEXIST) {
		fi, serr := os.Lstat(s.Address)
		if serr != nil {
			return nil, serr
		}
		if fi.Mode().Type() != fs.ModeNamedPipe {
			return nil, fmt.Errorf("%s exists and is not a fifo (%s)", s.Address, fi.Mode().Type())
		}
		created = false
	} else if err != nil {
		return nil, fmt.Errorf("mkfifo %s: %w", s.Address, err)
	}
	fail := func(err error) (*os.File, error) {
		if created {
			os.Remove(s.Address)
		}
		return nil, err
	}
	fd, err := unix.Open(s.Address, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return fail(fmt.Errorf("open %s: %w", s.Address, err))
	}
	if fd < 3 { // never keep it on a closed stdin, stdout or stderr
		nfd, derr := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		unix.Close(fd)
		if derr != nil {
			return fail(fmt.Errorf("dup: %w", derr))
		}
		fd = nfd
	}
	f := os.NewFile(uintptr(fd), s.String())
	if err := applyPerms(s); err != nil {
		f.Close()
		return fail(err)
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
	switch s.Network {
	case "unixgram":
		typ = unix.SOCK_DGRAM
	case "unixpacket":
		typ = unix.SOCK_SEQPACKET
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
