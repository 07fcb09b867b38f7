package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// ErrUnreachable is wrapped by the errors of Dial (and of Do when it has to
// connect again) when no god answers at the socket path: no such file, no
// listener (ECONNREFUSED), no permission to connect (EACCES), a path too long.
var ErrUnreachable = errors.New("cannot reach god")

// maxResponseLine bounds one response line the client accepts; a status of
// thousands of jobs fits many times over.
const maxResponseLine = 32 << 20

// Client talks to a god daemon over its control socket. Every request uses a
// connection of its own (the protocol has one request per connection): Dial
// opens the first, to report an unreachable god early; Do opens the next ones
// as needed. Do calls must not overlap; Close may be called at any time, also
// while Do runs, and makes Do return.
type Client struct {
	path string

	mu     sync.Mutex
	conn   *net.UnixConn // unused connection from Dial or the one Do is using
	closed bool
}

// Dial connects to the god listening at path. Its error wraps ErrUnreachable
// and reads "cannot reach god at PATH: connect: REASON".
func Dial(path string) (*Client, error) {
	conn, err := dial(path)
	if err != nil {
		return nil, err
	}
	return &Client{path: path, conn: conn}, nil
}

// dial connects to path and words a failure for the user.
func dial(path string) (*net.UnixConn, error) {
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		var cause error = err
		var se *os.SyscallError
		if errors.As(err, &se) {
			cause = se
		}
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, path, cause)
	}
	return conn, nil
}

// Do sends req (V set to Version) and calls onLine, if not nil, for every
// progress or log line, in order, from the calling goroutine; it returns the
// result line. A result with OK false is not an error of Do: its Error field
// says what failed. A connection closed before the result line, a malformed
// line, or ctx ending (which closes the connection, so a "logs -f" stream
// ends) is an error.
func (c *Client) Do(ctx context.Context, req Request, onLine func(Response)) (Response, error) {
	res, _, err := c.do(ctx, req, onLine, false)
	return res, err
}

// DoRaw is Do for a caller that prints a status result's jobs as JSON: their array is returned
// as god sent it (compact JSON; nil when it sent none, or null) and res.Jobs stays nil.
// Decoding thousands of jobs into JobStatus values only to encode them again was most of
// `god status --json`'s time in the client. A jobs value that is not an array is an error, as
// it is for Do.
func (c *Client) DoRaw(ctx context.Context, req Request, onLine func(Response)) (res Response, jobs json.RawMessage, err error) {
	return c.do(ctx, req, onLine, true)
}

// rawResult is a response line whose jobs are kept as JSON: its Jobs field, less deep than the
// embedded Response's, is the one encoding/json decodes "jobs" into.
type rawResult struct {
	Response
	Jobs json.RawMessage `json:"jobs,omitempty"`
}

// do sends req on a connection of its own and reads the response stream (see Do); with raw,
// the result's jobs are returned as JSON (see DoRaw).
func (c *Client) do(ctx context.Context, req Request, onLine func(Response), raw bool) (Response, json.RawMessage, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Response{}, nil, errors.New("control: client is closed")
	}
	conn := c.conn
	c.mu.Unlock()
	if conn == nil {
		var err error
		if conn, err = dial(c.path); err != nil {
			return Response{}, nil, err
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			conn.Close()
			return Response{}, nil, errors.New("control: client is closed")
		}
		c.conn = conn
		c.mu.Unlock()
	}
	defer func() {
		c.mu.Lock()
		if c.conn == conn {
			c.conn = nil
		}
		c.mu.Unlock()
		conn.Close()
	}()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	req.V = Version
	line, err := json.Marshal(req)
	if err != nil {
		return Response{}, nil, fmt.Errorf("control: encode request: %w", err)
	}
	_, werr := conn.Write(append(line, '\n'))
	// Read even when the write failed: a server that refused us (permission,
	// busy) has answered and closed before reading our request.
	// A status of thousands of jobs is one line of megabytes: read it in large pieces.
	br := bufio.NewReaderSize(conn, 64<<10)
	for {
		line, err := readLine(br, maxResponseLine)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return Response{}, nil, ctx.Err()
			case c.isClosed():
				return Response{}, nil, errors.New("control: client closed during the request")
			case werr != nil:
				return Response{}, nil, fmt.Errorf("control %s: sending %s request: %w", c.path, req.Cmd, werr)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
				return Response{}, nil, fmt.Errorf("control %s: god closed the connection before the result of %s", c.path, req.Cmd)
			default:
				return Response{}, nil, fmt.Errorf("control %s: reading response to %s: %w", c.path, req.Cmd, err)
			}
		}
		var res Response
		var jobs json.RawMessage
		if raw {
			var rr rawResult
			err = json.Unmarshal(line, &rr)
			res, jobs = rr.Response, rr.Jobs
			if err == nil && len(jobs) > 0 && jobs[0] != '[' && string(jobs) != "null" {
				err = fmt.Errorf("jobs is not an array: %.20s", jobs)
			}
		} else {
			err = json.Unmarshal(line, &res)
		}
		if err != nil {
			return Response{}, nil, fmt.Errorf("control %s: malformed response line: %w", c.path, err)
		}
		if res.Type == TypeResult {
			if string(jobs) == "null" {
				jobs = nil
			}
			return res, jobs, nil
		}
		if onLine != nil {
			// More tells a caller that buffers its output whether to flush now.
			res.More = br.Buffered() > 0
			onLine(res)
		}
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Close closes the client's connection, ending a Do in progress.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.conn != nil {
		err := c.conn.Close()
		c.conn = nil
		return err
	}
	return nil
}
