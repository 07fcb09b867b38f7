package forkserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnavailable is returned by Spawn when the request never reached a server (it is closed or
// gone, or the request is one it does not take): no child was started, and the caller may fork
// the child itself.
var ErrUnavailable = errors.New("fork server unavailable")

// Attr is a child to start: the fields of the reaper's Attr that a fork server can carry.
type Attr struct {
	Path       string
	Argv       []string
	Env        []string
	Dir        string
	Files      []uintptr // the child's fds 0, 1, 2, 3...; each must be an open fd
	Setpgid    bool
	CgroupFD   int // > 0: start the child in that cgroup
	Credential *syscall.Credential
}

// Client is god's side of a fork server. It is safe for concurrent use: requests are answered
// in any order, each to its caller.
type Client struct {
	conn *net.UnixConn
	wmu  sync.Mutex // one request (message and fds) at a time on the socket

	mu      sync.Mutex
	pending map[uint64]chan reply
	nextID  uint64
	down    error // set once the server is gone or the client closed
}

// Pair returns a new socketpair for a server: god keeps the first end (close-on-exec), and passes
// the second as fd 3 of the server it starts with Env set, then closes its copy.
func Pair() (god, server *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("fork server: socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "forkserver"), os.NewFile(uintptr(fds[1]), "forkserver"), nil
}

// NewClient talks to the server at the other end of end (Pair's first), which it takes over.
func NewClient(end *os.File) (*Client, error) {
	fc, err := net.FileConn(end)
	end.Close()
	if err != nil {
		return nil, fmt.Errorf("fork server: %w", err)
	}
	conn, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, errors.New("fork server: not a unix socket")
	}
	c := &Client{conn: conn, pending: make(map[uint64]chan reply)}
	go c.read()
	return c, nil
}

// Spawn forks and execs a as a child of god through the server and returns its pid. An error
// that wraps ErrUnavailable means nothing was started; an exec that failed comes back as its
// syscall.Errno.
func (c *Client) Spawn(a Attr) (int, error) {
	if len(a.Files) > maxFiles {
		return 0, fmt.Errorf("%w: %d files", ErrUnavailable, len(a.Files))
	}
	req := request{Path: a.Path, Argv: a.Argv, Env: a.Env, Dir: a.Dir, Setpgid: a.Setpgid, Files: len(a.Files)}
	fds := make([]int, 0, len(a.Files)+1)
	for _, f := range a.Files {
		if int(f) < 0 {
			return 0, fmt.Errorf("%w: a closed file", ErrUnavailable)
		}
		fds = append(fds, int(f))
	}
	if a.CgroupFD > 0 {
		req.Cgroup = true
		fds = append(fds, a.CgroupFD)
	}
	if cr := a.Credential; cr != nil {
		req.Cred = &cred{Uid: cr.Uid, Gid: cr.Gid, Groups: cr.Groups, NoSetGroups: cr.NoSetGroups}
	}
	done := make(chan reply, 1)
	c.mu.Lock()
	if c.down != nil {
		c.mu.Unlock()
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, c.down)
	}
	c.nextID++
	req.ID = c.nextID
	c.pending[req.ID] = done
	c.mu.Unlock()
	b, err := json.Marshal(req)
	if err == nil && len(b) > maxRequest {
		err = fmt.Errorf("request of %d bytes", len(b))
	}
	if err == nil {
		c.wmu.Lock()
		_, _, err = c.conn.WriteMsgUnix(b, unix.UnixRights(fds...), nil)
		c.wmu.Unlock()
	}
	if err != nil {
		c.forget(req.ID)
		return 0, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r, ok := <-done
	if !ok {
		// Sent, but the server went away before it answered: whether the child was started
		// is not known. Its exit, if there is one, reaches god's reaper as an unknown child's.
		return 0, fmt.Errorf("fork server gone before it answered: %w", c.err())
	}
	if err := r.errorOf(); err != nil {
		return 0, err
	}
	return r.Pid, nil
}

// Close closes god's end: the server exits once it has answered what it was asked. Spawns
// waiting for an answer get an error.
func (c *Client) Close() error {
	c.fail(net.ErrClosed)
	return c.conn.Close()
}

// read hands each reply to its caller until the server is gone.
func (c *Client) read() {
	buf := make([]byte, 4096)
	for {
		n, err := c.conn.Read(buf)
		if err != nil || n == 0 {
			if err == nil {
				err = errors.New("fork server exited")
			}
			c.fail(err)
			return
		}
		var r reply
		if err := json.Unmarshal(buf[:n], &r); err != nil || r.ID == 0 {
			// Not an answer to anything asked: the two ends no longer agree.
			c.fail(fmt.Errorf("fork server: bad reply %q", buf[:n]))
			c.conn.Close()
			return
		}
		c.mu.Lock()
		done := c.pending[r.ID]
		delete(c.pending, r.ID)
		c.mu.Unlock()
		if done != nil {
			done <- r
		}
	}
}

// fail marks the server gone and ends every Spawn that waits.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down == nil {
		c.down = err
	}
	for id, done := range c.pending {
		close(done)
		delete(c.pending, id)
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.down
}

// Down reports whether the server is gone or the client closed: a new one is needed.
func (c *Client) Down() bool { return c.err() != nil }
