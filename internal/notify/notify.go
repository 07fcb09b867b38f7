package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Limits of the sd_notify protocol as god enforces them.
const (
	notifyMaxPayload = 64 << 10 // bytes in one datagram
	notifyMaxValue   = 4 << 10  // bytes in one value
	notifyMaxFds     = 253      // SCM_MAX_FD: the kernel's limit of fds in one message
	notifyMaxFdName  = 255      // systemd's FDNAME limit
)

// Message is one datagram from a job process, parsed.
//
// The typed fields are set only from the exact values systemd understands:
// READY=0 sets nothing, WATCHDOG=trigger sets WatchdogTrigger, not Watchdog.
// When a key appears twice, the last line wins, as in an environment.
type Message struct {
	Pid int // sender's pid from SCM_CREDENTIALS, never from the payload

	// READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1, FDSTORE=1, WATCHDOG=trigger.
	Ready, Reloading, Stopping, Watchdog, FdStore, WatchdogTrigger bool

	Status        string            // STATUS=
	MainPid       int               // MAINPID=
	FdName        string            // FDNAME= (with FDSTORE=1)
	MonotonicUsec uint64            // MONOTONIC_USEC=
	Errno         int               // ERRNO=
	ExtendUsec    uint64            // EXTEND_TIMEOUT_USEC=: push the running start, reload or stop timeout to now+N µs
	FdStoreRemove bool              // FDSTOREREMOVE=1: drop the stored fds named FDNAME=
	FdNoPoll      bool              // FDPOLL=0 (with FDSTORE=1): keep the fds even once they hang up
	Fields        map[string]string // every KEY=VALUE, including unknown ones
	Files         []*os.File        // fds sent with FDSTORE=1 (the receiver owns them); empty otherwise
}

// Parse parses the payload of a notify datagram: KEY=VALUE lines
// separated by '\n', with one trailing newline tolerated. Keys are systemd's:
// 1 or more of A-Z 0-9 _, not starting with a digit. The payload is refused
// when it is empty, longer than 64 KiB or holds a NUL byte; a line is refused
// when it has no '=', an invalid key, a value over 4 KiB, or a value that
// does not fit its known key (MAINPID, MONOTONIC_USEC and ERRNO are
// decimal, EXTEND_TIMEOUT_USEC too, STATUS is UTF-8, FDNAME follows systemd's fd name rules). One bad
// line makes the whole message an error that names the line: a job that
// speaks the protocol wrongly learns nothing from a half-applied message.
// Pid and Files are left for the receiver to fill in.
func Parse(payload []byte) (Message, error) {
	var m Message
	if len(payload) == 0 {
		return m, errors.New("notify: empty message")
	}
	if len(payload) > notifyMaxPayload {
		return m, fmt.Errorf("notify: message of %d bytes exceeds %d", len(payload), notifyMaxPayload)
	}
	if i := bytes.IndexByte(payload, 0); i >= 0 {
		return m, fmt.Errorf("notify: NUL byte at offset %d", i)
	}
	payload = bytes.TrimSuffix(payload, []byte{'\n'})
	m.Fields = make(map[string]string)
	for n, line := range bytes.Split(payload, []byte{'\n'}) {
		if err := m.set(line); err != nil {
			return Message{}, fmt.Errorf("notify: line %d %.40q: %w", n+1, line, err)
		}
	}
	return m, nil
}

// set applies one KEY=VALUE line to m.
func (m *Message) set(line []byte) error {
	k, v, ok := bytes.Cut(line, []byte{'='})
	if !ok {
		return errors.New("no '='")
	}
	key, val := string(k), string(v)
	if !notifyValidKey(key) {
		return errors.New("invalid key (want A-Z, 0-9, _, not starting with a digit)")
	}
	if len(val) > notifyMaxValue {
		return fmt.Errorf("value of %d bytes exceeds %d", len(val), notifyMaxValue)
	}
	m.Fields[key] = val
	var err error
	switch key {
	case "READY":
		m.Ready = val == "1"
	case "RELOADING":
		m.Reloading = val == "1"
	case "STOPPING":
		m.Stopping = val == "1"
	case "FDSTORE":
		m.FdStore = val == "1"
	case "FDSTOREREMOVE":
		m.FdStoreRemove = val == "1"
	case "FDPOLL":
		m.FdNoPoll = val == "0"
	case "EXTEND_TIMEOUT_USEC":
		if m.ExtendUsec, err = strconv.ParseUint(val, 10, 64); err != nil {
			err = errors.New("not a decimal number of microseconds")
		}
	case "WATCHDOG":
		m.Watchdog = val == "1"
		m.WatchdogTrigger = val == "trigger"
	case "STATUS":
		if !utf8.ValidString(val) {
			return errors.New("STATUS is not UTF-8")
		}
		m.Status = val
	case "MAINPID":
		m.MainPid, err = notifyDecimal(val, 1, 1<<22) // PID_MAX_LIMIT
	case "ERRNO":
		m.Errno, err = notifyDecimal(val, 0, 4095) // MAX_ERRNO
	case "MONOTONIC_USEC":
		if m.MonotonicUsec, err = strconv.ParseUint(val, 10, 64); err != nil {
			err = errors.New("not a decimal number of microseconds")
		}
	case "FDNAME":
		if !notifyValidFdName(val) {
			return errors.New("FDNAME must be 1 to 255 printable ASCII bytes without ':'")
		}
		m.FdName = val
	}
	return err
}

// notifyDecimal parses a plain decimal (no sign, no spaces) in [lo, hi].
func notifyDecimal(s string, lo, hi int) (int, error) {
	if s == "" || len(s) > 10 {
		return 0, fmt.Errorf("not a decimal number in %d..%d", lo, hi)
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("not a decimal number in %d..%d", lo, hi)
		}
		n = n*10 + int(s[i]-'0')
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is not in %d..%d", n, lo, hi)
	}
	return n, nil
}

// notifyValidKey reports whether k is a key systemd accepts in a notify
// message: uppercase letters, digits and '_', not starting with a digit.
func notifyValidKey(k string) bool {
	if k == "" || ('0' <= k[0] && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// notifyValidFdName mirrors systemd's fdname_is_valid, so a name god keeps can
// later be passed on in LISTEN_FDNAMES, which joins names with ':'.
func notifyValidFdName(s string) bool {
	if s == "" || len(s) > notifyMaxFdName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// Server receives sd_notify datagrams from job processes on one
// unixgram socket, the NOTIFY_SOCKET every job gets.
//
// The sender is identified by the kernel: the socket has SO_PASSCRED, so
// every datagram carries SCM_CREDENTIALS with the sender's real pid (a sender
// may only claim another pid with CAP_SYS_ADMIN). Which job that pid belongs
// to is for the caller of Serve to decide. A datagram is dropped and logged,
// and every fd that came with it closed, when it has no credentials, its data
// or control part was truncated, or its payload is not valid; fds that come
// with a valid message are kept only when it says FDSTORE=1.
//
// The socket must be reachable by every job (mode 0666), so any local user can
// write to it. Admit decides on the sender's credentials before anything else
// is done with a datagram: a stranger's datagram costs one recvmsg and a
// counter, never a parse, an allocation that lasts or a log line of its own.
// Drops are logged at most once a second per reason, with their count.
type Server struct {
	// Logger receives the lines about dropped datagrams; nil means
	// slog.Default(). Set it before Serve.
	Logger *slog.Logger
	// Admit, when set, is asked for every datagram's sender (its uid and pid
	// from SCM_CREDENTIALS) before the payload is looked at; anything but
	// Admitted drops it, logged with that reason. Set it before Serve.
	Admit func(uid, pid int) Admission
	drops *LogLimiter

	conn     *net.UnixConn
	path     string
	ino      notifyInode // the socket file we bound, so Close removes only ours
	abstract bool        // no socket file: path starts with '@'
	oobSize  int         // control buffer size; tests shrink it to force MSG_CTRUNC

	mu     sync.Mutex
	closed bool
}

// Admission is Server.Admit's verdict on a datagram's sender.
type Admission int

const (
	Admitted    Admission = iota
	DropUser              // the sender's uid is none that god's jobs run as
	DropProcess           // the sender is no job's process, nor in a job's group, nor god's child
)

// notifyInode identifies a file across renames and re-binds.
type notifyInode struct{ dev, ino uint64 }

// Listen binds a unixgram socket at path for Serve.
//
// A socket file left at path by a process that is gone is removed first; a
// socket that still has a reader, or a file that is not a socket, is an
// error. The socket file gets mode 0666: jobs may run as other users than
// god, and connect(2) to a unix socket needs write permission on it. That is
// safe because god trusts no message for what it says about its sender: the
// pid comes from SCM_CREDENTIALS and the caller accepts it only for a process
// of the job, so a stranger that writes to the socket can affect nothing.
// Restrict access with the mode of the directory that holds path if needed.
//
// A path starting with '@' names a socket in the abstract namespace, as in
// NOTIFY_SOCKET: it has no file to clean up, set a mode on or remove, and any
// process in god's network namespace can reach it.
func Listen(path string) (*Server, error) {
	abstract := strings.HasPrefix(path, "@")
	if !abstract {
		if err := notifyRemoveStale(path); err != nil {
			return nil, err
		}
	}
	var sockErr error
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		// Before bind: no datagram can arrive without credentials.
		err := c.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
		if err != nil {
			return err
		}
		return sockErr
	}}
	pc, err := lc.ListenPacket(context.Background(), "unixgram", path)
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	s := newServer(pc.(*net.UnixConn), path)
	if abstract {
		return s, nil
	}
	if err := os.Chmod(path, 0o666); err != nil {
		s.conn.Close()
		os.Remove(path)
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	if s.ino, err = notifyInodeOf(path); err != nil {
		s.conn.Close()
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	return s, nil
}

// notifyRcvBuf is the receive buffer god asks for: the queue of a unixgram
// socket is short (net.unix.max_dgram_qlen datagrams, and SO_RCVBUF bytes),
// and a flood must not leave a job's READY=1 without room.
const notifyRcvBuf = 4 << 20

func newServer(conn *net.UnixConn, path string) *Server {
	s := &Server{
		conn:     conn,
		path:     path,
		abstract: strings.HasPrefix(path, "@"),
		oobSize:  unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(notifyMaxFds*4),
	}
	s.drops = NewLogLimiter(time.Second, s.logger)
	_ = conn.SetReadBuffer(notifyRcvBuf) // the kernel caps it at rmem_max: best effort
	return s
}

// notifyRemoveStale removes a socket file at path that nobody reads any more,
// which is what a god that was killed leaves behind.
func notifyRemoveStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("notify socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("notify socket %s: exists and is not a socket", path)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		c.Close()
		return fmt.Errorf("notify socket %s: in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("notify socket %s: probing the existing socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("notify socket %s: removing stale socket: %w", path, err)
	}
	return nil
}

// notifyInodeOf returns the identity of the file at path.
func notifyInodeOf(path string) (notifyInode, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return notifyInode{}, err
	}
	return notifyInode{dev: uint64(st.Dev), ino: st.Ino}, nil
}

// Path is the socket's path, the value for NOTIFY_SOCKET.
func (s *Server) Path() string { return s.path }

// Serve reads datagrams and calls deliver, on Serve's goroutine, for each
// valid one, until Close; it then returns nil. deliver owns msg.Files and must
// close the ones it does not keep. Call Serve once.
func (s *Server) Serve(deliver func(Message)) error {
	buf := make([]byte, notifyMaxPayload+1) // one more: a too-long payload shows as too long
	oob := make([]byte, s.oobSize)
	for {
		n, oobn, flags, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			if s.isClosed() {
				return nil
			}
			return fmt.Errorf("notify socket %s: %w", s.path, err)
		}
		if msg, ok := s.receive(buf[:n], oob[:oobn], flags); ok {
			deliver(msg)
		}
	}
}

// receive turns one datagram into a message, or drops it: it closes every fd
// the datagram carried and says why (at most once a second per reason).
func (s *Server) receive(payload, oob []byte, flags int) (Message, bool) {
	pid, uid, fds, cerr := notifyControl(oob)
	drop := func(why string, args ...any) (Message, bool) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		s.drops.Log(slog.LevelWarn, why, "notify: dropped message: "+why,
			append([]any{"socket", s.path, "pid", pid, "uid", uid, "bytes", len(payload), "fds", len(fds)}, args...)...)
		return Message{}, false
	}
	if s.Admit != nil && pid > 0 {
		// Before anything else: a stranger's flood costs god one recvmsg per datagram (and, for
		// a process of a user god's jobs run as, one read of its /proc stat).
		switch s.Admit(uid, pid) {
		case DropUser:
			return drop("sender is no user god's jobs run as")
		case DropProcess:
			return drop("sender is no job of god's")
		}
	}
	switch {
	case flags&unix.MSG_CTRUNC != 0:
		return drop("control data truncated (too many fds)")
	case flags&unix.MSG_TRUNC != 0:
		return drop(fmt.Sprintf("payload truncated (over %d bytes)", notifyMaxPayload))
	case cerr != nil:
		return drop("bad control data", "err", cerr)
	case pid <= 0:
		// No SCM_CREDENTIALS, or a sender outside god's pid namespace.
		return drop("no sender credentials")
	}
	msg, err := Parse(payload)
	if err != nil {
		return drop("invalid payload", "err", err)
	}
	msg.Pid = pid
	if !msg.FdStore {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return msg, true
	}
	name := "notify-fd"
	if msg.FdName != "" {
		name = msg.FdName
	}
	for _, fd := range fds {
		msg.Files = append(msg.Files, os.NewFile(uintptr(fd), name))
	}
	return msg, true
}

// notifyControl extracts the sender's pid and uid and the received fds from a
// control buffer. It returns every fd it found even when it also returns an
// error, so the caller can close them.
func notifyControl(oob []byte) (pid, uid int, fds []int, err error) {
	uid = -1
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, uid, nil, err
	}
	for _, c := range cmsgs {
		if c.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch c.Header.Type {
		case unix.SCM_RIGHTS:
			r, rerr := unix.ParseUnixRights(&c)
			fds = append(fds, r...)
			if rerr != nil && err == nil {
				err = rerr
			}
		case unix.SCM_CREDENTIALS:
			cred, cerr := unix.ParseUnixCredentials(&c)
			if cerr != nil {
				if err == nil {
					err = cerr
				}
				continue
			}
			pid, uid = int(cred.Pid), int(cred.Uid)
		}
	}
	return pid, uid, fds, err
}

// logger is where dropped messages are reported.
func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// isClosed reports whether Close was called.
func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops Serve and removes the socket file, unless another socket was
// bound at the path since (a newer god's): that one is left alone.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.drops.Stop()
	err := s.conn.Close()
	if !s.abstract {
		if ino, serr := notifyInodeOf(s.path); serr == nil && ino == s.ino {
			if rerr := os.Remove(s.path); rerr != nil && err == nil {
				err = rerr
			}
		}
	}
	if err != nil {
		return fmt.Errorf("notify socket %s: close: %w", s.path, err)
	}
	return nil
}

// FromFile takes over a notify socket that god had before it re-executed itself
// (the fd survived the exec): jobs keep sending to the same socket, nothing is lost in between.
// The socket must be a bound unixgram socket with SO_PASSCRED set (Listen's).
func FromFile(f *os.File, path string) (*Server, error) {
	pc, err := net.FilePacketConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	conn, ok := pc.(*net.UnixConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("notify socket %s: not a unix socket", path)
	}
	s := newServer(conn, path)
	if !s.abstract {
		s.ino, _ = notifyInodeOf(path)
	}
	return s, nil
}

// rawConn exposes the socket for handing it across god's re-exec.
func (s *Server) RawConn() (syscall.RawConn, error) { return s.conn.SyscallConn() }
