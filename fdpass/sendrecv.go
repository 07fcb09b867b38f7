package fdpass

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// MaxData is the most data bytes Receive reads in one call.
const MaxData = 64 << 10

// Send sends data and files in one message: the files as one SCM_RIGHTS
// control message of at most MaxFDs fds. It exists to get the rules of fd
// passing right once.
//
// On a stream socket at least one byte is sent, since the kernel attaches
// fds to data: empty data is sent as a single 0 byte (which the receiver
// sees as data). On a stream socket, data the kernel does not take at once
// is written after the fds. The files stay open in the sender; their
// numbers are read without Fd(), so no file's blocking mode changes.
func Send(c *net.UnixConn, data []byte, files ...*os.File) error {
	if len(files) > MaxFDs {
		return fmt.Errorf("fdpass: send %d fds: at most %d fit one message", len(files), MaxFDs)
	}
	fds := make([]int, len(files))
	for i, f := range files {
		fd, err := RawFd(f)
		if err != nil {
			return fmt.Errorf("fdpass: send: %w", err)
		}
		fds[i] = fd
	}
	defer runtime.KeepAlive(files)
	stream, err := isStreamConn(c)
	if err != nil {
		return fmt.Errorf("fdpass: send: %w", err)
	}
	if stream && len(data) == 0 {
		data = []byte{0}
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(data, oob, nil)
	if err != nil {
		return fmt.Errorf("fdpass: send %d bytes and %d fds: %w", len(data), len(fds), err)
	}
	if oobn != len(oob) {
		return fmt.Errorf("fdpass: send %d fds: only %d of %d control bytes sent", len(fds), oobn, len(oob))
	}
	if n < len(data) {
		if !stream {
			return fmt.Errorf("fdpass: send: %d of %d bytes sent", n, len(data))
		}
		if _, err := c.Write(data[n:]); err != nil {
			return fmt.Errorf("fdpass: send: the rest of %d bytes: %w", len(data), err)
		}
	}
	return nil
}

// Receive reads one message with at most max fds (0 to MaxFDs) and at most
// MaxData bytes of data. It exists to get the rules of fd passing right
// once: the control buffer is sized for max fds, and every fd the kernel
// installed is either returned or closed.
//
// The fds arrive close-on-exec (MSG_CMSG_CLOEXEC) and are wrapped with
// os.NewFile, which keeps their blocking mode (the sender's description is
// shared). Errors: more fds than max were sent (MSG_CTRUNC, or more fds
// than max fitting the aligned buffer), malformed control data, or a
// datagram longer than MaxData (MSG_TRUNC); in every error case no fd is
// left open. On a stream socket message boundaries are not kept: data is
// whatever is there, up to MaxData bytes, with the fds sent with its first
// byte; the end of the stream is an error matching io.EOF (errors.Is). On a
// datagram socket an empty message is valid.
func Receive(c *net.UnixConn, max int) (data []byte, files []*os.File, err error) {
	if max < 0 || max > MaxFDs {
		return nil, nil, fmt.Errorf("fdpass: receive: max %d fds out of range 0..%d", max, MaxFDs)
	}
	stream, err := isStreamConn(c)
	if err != nil {
		return nil, nil, fmt.Errorf("fdpass: receive: %w", err)
	}
	buf := make([]byte, MaxData)
	var oob []byte
	if max > 0 {
		oob = make([]byte, RightsSpace(max))
	}
	n, oobn, flags, _, rerr := c.ReadMsgUnix(buf, oob)
	fds, perr := ParseRights(oob[:oobn])
	fail := func(err error) ([]byte, []*os.File, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, nil, fmt.Errorf("fdpass: receive: %w", err)
	}
	switch {
	case rerr != nil:
		return fail(rerr)
	case flags&unix.MSG_CTRUNC != 0:
		return fail(fmt.Errorf("control data truncated: more than %d fds sent (all closed)", max))
	case perr != nil:
		return fail(perr)
	case len(fds) > max:
		return fail(fmt.Errorf("%d fds sent, at most %d expected (all closed)", len(fds), max))
	case flags&unix.MSG_TRUNC != 0:
		return fail(fmt.Errorf("message longer than %d bytes", MaxData))
	case stream && n == 0:
		return fail(io.EOF)
	}
	for _, fd := range fds {
		files = append(files, os.NewFile(uintptr(fd), "fdpass-received-"+strconv.Itoa(fd)))
	}
	return append([]byte{}, buf[:n]...), files, nil
}

// isStreamConn reports whether c is a SOCK_STREAM socket, from the kernel
// rather than from c's address, which is empty for socketpairs.
func isStreamConn(c *net.UnixConn) (bool, error) {
	if c == nil {
		return false, errors.New("nil connection")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return false, err
	}
	var typ int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		typ, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
	}); err != nil {
		return false, err
	}
	if serr != nil {
		return false, fmt.Errorf("socket type: %w", serr)
	}
	return typ == unix.SOCK_STREAM, nil
}
