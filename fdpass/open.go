package fdpass

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Open creates the socket god keeps for as long as the job is defined.
//
// Stream and seqpacket sockets (tcp*, unix, unixpacket) are bound and
// listening, datagram sockets (udp*, unixgram) are bound, a fifo is created
// (if missing) and opened for reading and writing. The spec's Options are set
// between socket(2) and bind(2), and the backlog at listen. The returned file is close-on-exec, in blocking
// mode, and made with os.NewFile, so that os.StartProcess and
// syscall.ForkExec (which call Fd) never change O_NONBLOCK on the file
// description that god shares with the job. The file is named after the
// spec (Spec.String).
//
// tcp sockets get SO_REUSEADDR, so a restarted god can bind while old
// connections linger in TIME_WAIT. An empty tcp or udp host means every
// address; for "tcp" and "udp" that is a dual-stack IPv6 socket where the
// kernel allows it, as with net.Listen. A host name is resolved when Open
// is called and the first address is used, as net.Listen does.
//
// For unix sockets, a stale socket file at the path (nobody accepts:
// connecting is refused) is removed first; a live one is an error ("in
// use"), and so is a file at the path that is not a socket. The parent
// directory must exist. Mode, Owner and Group are then applied to the new
// file (Owner and Group only when running as root); until then the file has
// the mode the umask gives, so put sockets that need protection in a
// directory that is already protected. If applying them fails, the new
// socket is closed and its file removed. The file is not removed
// when the socket is closed: the caller removes it when the job goes away.
//
// Errors name the spec.
func Open(s Spec) (*os.File, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("socket %s: %w", s, err)
	}
	f, err := open(s)
	if err != nil {
		return nil, fmt.Errorf("socket %s: %w", s, err)
	}
	return f, nil
}

// open dispatches on the network; Open adds the spec to errors.
func open(s Spec) (*os.File, error) {
	switch {
	case s.Network == "fifo":
		return openFIFO(s)
	case s.isUnix():
		return openUnix(s)
	}
	lc := net.ListenConfig{Control: s.control}
	var f *os.File
	var err error
	if s.isStream() {
		ln, lerr := lc.Listen(context.Background(), s.Network, s.Address)
		if lerr != nil {
			return nil, lerr
		}
		f, err = detach(ln.(syscall.Conn), ln, s)
	} else {
		pc, lerr := lc.ListenPacket(context.Background(), s.Network, s.Address)
		if lerr != nil {
			return nil, lerr
		}
		f, err = detach(pc.(syscall.Conn), pc, s)
	}
	if err != nil {
		return nil, err
	}
	if err := s.applyBacklog(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// control is the ListenConfig hook that runs between socket(2) and bind(2): it sets
// SO_REUSEADDR on tcp sockets (Go already does this for listeners; doing it here states the
// contract and keeps it if Go ever changes), then the spec's options.
func (s Spec) control(network, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		if strings.HasPrefix(network, "tcp") {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
				serr = fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
				return
			}
		}
		serr = s.Options.apply(int(fd))
	})
	return errors.Join(err, serr)
}

// applyBacklog gives a listening socket the spec's backlog. Go listens with the kernel's
// somaxconn; listen(2) again on a listening socket only changes its backlog (Linux), and no
// process holds the socket yet.
func (s Spec) applyBacklog(f *os.File) error {
	if s.Backlog == 0 {
		return nil
	}
	fd, err := RawFd(f)
	if err != nil {
		return err
	}
	defer keepAlive(f)
	if err := unix.Listen(fd, s.Backlog); err != nil {
		return fmt.Errorf("option backlog=%d: listen: %w", s.Backlog, err)
	}
	return nil
}

// detach takes the socket out of Go's network poller: it duplicates the fd
// (close-on-exec, number 3 or above), closes the net listener or conn (which
// removes its fd from epoll; the description lives on in the duplicate),
// puts the description in blocking mode and wraps the duplicate with
// os.NewFile. c and closer are the same object seen through two interfaces.
func detach(c syscall.Conn, closer interface{ Close() error }, s Spec) (*os.File, error) {
	fd, err := dupConn(c)
	cerr := closer.Close()
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		unix.Close(fd)
		return nil, cerr
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("set blocking: %w", err)
	}
	return os.NewFile(uintptr(fd), s.String()), nil
}

// dupConn duplicates the fd behind c with F_DUPFD_CLOEXEC, at 3 or above so
// that it never lands on a closed stdin, stdout or stderr.
func dupConn(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	err = rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 3)
	})
	if err == nil && derr != nil {
		err = fmt.Errorf("dup: %w", derr)
	}
	return nfd, err
}

// RawFd returns the fd number of f without side effects. It exists because
// f.Fd() may put a non-blocking file description into blocking mode (for
// files made by net's File methods), which changes it for every process
// that shares it. The number is valid only while f stays open: keep f
// reachable (runtime.KeepAlive) while using it.
func RawFd(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("fd of %s: %w", f.Name(), err)
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, fmt.Errorf("fd of %s: %w", f.Name(), err)
	}
	return fd, nil
}
