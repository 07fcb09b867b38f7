package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// errBroken is wrapped by every call on a Client that failed before.
var errBroken = errors.New("loader: client is broken")

// Client is god's side of one running loader instance: it reads the loader's
// stdout and writes its stdin. Requests are sent one at a time and each is
// answered in order; concurrent callers wait their turn (honouring their ctx
// while they wait). [Client.AskAll] pipelines a set of requests in one turn.
//
// A Client breaks for good on the first error that may have desynchronised
// the stream: a reply that did not come in time, a read error, a malformed or
// unsolicited message. [Client.Broken] then reports the cause, every later call
// fails at once, and the caller should kill the loader process (which also
// ends the Client's reader goroutine).
type Client struct {
	r *messageReader
	w io.Writer

	turn chan struct{} // a one-slot semaphore: who may talk to the loader

	startOnce sync.Once
	frames    chan frame    // from the reader goroutine, one at a time
	done      chan struct{} // closed when the Client breaks

	mu          sync.Mutex
	broken      error
	handshaken  bool
	handshaking bool
}

// frame is what the reader goroutine hands over: a message or why there is none.
type frame struct {
	m   Message
	err error
}

// NewClient returns a Client for a loader whose stdout is r and stdin is w.
// If w has SetWriteDeadline (an *os.File pipe, exec.Cmd.StdinPipe), a write
// stuck on a loader that does not read is cut off by the deadline; otherwise
// the write runs in a goroutine that Ask abandons.
func NewClient(r io.Reader, w io.Writer) *Client {
	return &Client{
		r:      newMessageReader(r),
		w:      w,
		turn:   make(chan struct{}, 1),
		frames: make(chan frame, 1),
		done:   make(chan struct{}),
	}
}

// Broken returns why the Client is unusable, or nil while it is usable.
func (c *Client) Broken() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.broken
}

// Close breaks the Client on purpose, so that its reader goroutine exits as
// soon as the loader's stdout ends. It closes neither r nor w.
func (c *Client) Close() error {
	c.fail(errors.New("loader: client closed"))
	return nil
}

// Handshake reads the loader's first message and returns the jobs it
// defines. A first message that is not a valid handshake, or no message
// before ctx ends, gives an error wrapping ErrNotGodv1 (and ctx's error);
// an EOF or read error gives an error that does not. Any error breaks the
// Client. Handshake must be called once, before Ask.
func (c *Client) Handshake(ctx context.Context) ([]string, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, fmt.Errorf("loader: handshake: %w", err)
	}
	defer c.release()
	c.mu.Lock()
	again := c.handshaken || c.handshaking
	c.handshaking = true
	c.mu.Unlock()
	if again {
		return nil, errors.New("loader: handshake: already done")
	}
	m, err := c.receive(ctx)
	var fe *frameError
	switch {
	case err == nil:
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		return nil, c.fail(fmt.Errorf("%w: no handshake in time (%w)", ErrNotGodv1, err))
	case errors.As(err, &fe), errors.Is(err, errTooLong):
		return nil, c.fail(fmt.Errorf("%w: first line: %w", ErrNotGodv1, err))
	default:
		return nil, c.fail(fmt.Errorf("loader: handshake: %w", err))
	}
	jobs, err := parseHandshake(m)
	if err != nil {
		if !errors.Is(err, ErrNotGodv1) {
			err = fmt.Errorf("%w: %w", ErrNotGodv1, err)
		}
		return nil, c.fail(err)
	}
	c.mu.Lock()
	c.handshaken = true
	c.mu.Unlock()
	return jobs, nil
}

// Ask sends [job, prop, args...] and returns the loader's reply. If ctx ends
// before the reply, the error wraps ctx's error and the Client is broken: a
// late reply would be taken for the answer to the next request. If ctx ends
// while Ask waits for its turn, nothing was sent and the Client stays usable.
func (c *Client) Ask(ctx context.Context, job, prop string, args ...string) (Message, error) {
	return c.AskWithin(ctx, 0, job, prop, args...)
}

// AskWithin is Ask with a time limit that counts from when the request goes to the loader, not
// from when the caller started waiting: within (when positive) bounds the write of the request
// and then its reply. A caller that queued behind others for its turn thus still gives the
// loader all of within to answer, and a loader is never taken for hung because requests piled
// up in god. ctx still bounds the wait for the turn and, when it ends, the exchange (which
// breaks the Client, as with Ask); pass a ctx without a deadline to let within alone decide.
// A late reply wraps context.DeadlineExceeded.
func (c *Client) AskWithin(ctx context.Context, within time.Duration, job, prop string, args ...string) (Message, error) {
	if err := c.acquire(ctx); err != nil {
		return nil, fmt.Errorf("loader: ask %s %s: %w", job, prop, err)
	}
	defer c.release()
	c.mu.Lock()
	ok := c.handshaken
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("loader: ask %s %s: before the handshake", job, prop)
	}
	wrap := func(err error) error { return fmt.Errorf("loader: ask %s %s: %w", job, prop, err) }

	// A message waiting now was sent without a request: the stream is off.
	if err := c.unsolicited(); err != nil {
		return nil, c.fail(wrap(err))
	}

	req, err := appendMessage(nil, append(Message{job, prop}, args...))
	if err != nil {
		return nil, wrap(err)
	}
	if err := c.writeWithin(ctx, within, req); err != nil {
		return nil, c.fail(wrap(fmt.Errorf("write request: %w", err)))
	}
	var late <-chan time.Time
	if within > 0 {
		// From the write: the loader could read the request from now on.
		t := time.NewTimer(within)
		defer t.Stop()
		late = t.C
	}
	m, err := c.receiveBy(ctx, late, within)
	if err != nil {
		return nil, c.fail(wrap(err))
	}
	return m, nil
}

// acquire waits for this caller's turn, or for ctx, or fails at once when the
// Client is broken.
func (c *Client) acquire(ctx context.Context) error {
	if err := c.Broken(); err != nil {
		return fmt.Errorf("%w: %w", errBroken, err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case c.turn <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return fmt.Errorf("%w: %w", errBroken, c.Broken())
	}
	if err := c.Broken(); err != nil {
		c.release()
		return fmt.Errorf("%w: %w", errBroken, err)
	}
	return nil
}

// release ends a turn.
func (c *Client) release() { <-c.turn }

// fail breaks the Client with err (the first cause wins) and returns err.
func (c *Client) fail(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.broken == nil {
		c.broken = err
		close(c.done)
	}
	return err
}

// receive waits for the next message or ctx. The reader goroutine starts on
// the first call, so a Client that is never used costs nothing.
func (c *Client) receive(ctx context.Context) (Message, error) {
	return c.receiveBy(ctx, nil, 0)
}

// receiveBy is receive that also gives up when late fires (nil: never); within is how long
// late was set for, for the error.
func (c *Client) receiveBy(ctx context.Context, late <-chan time.Time, within time.Duration) (Message, error) {
	c.startOnce.Do(func() { go c.readLoop() })
	select {
	case f := <-c.frames:
		return replyOf(f)
	case <-ctx.Done():
		return nil, fmt.Errorf("no reply: %w", ctx.Err())
	case <-late:
		// A reply that arrived as the time ran out is not late: select picks among ready cases
		// at random.
		select {
		case f := <-c.frames:
			return replyOf(f)
		default:
		}
		return nil, fmt.Errorf("no reply: %w (none within %s)", context.DeadlineExceeded, within)
	}
}

// replyOf is the reply a frame read from the loader carries, or why there is none.
func replyOf(f frame) (Message, error) {
	if f.err != nil {
		if errors.Is(f.err, os.ErrClosed) {
			// The caller closed the pipe because the loader exited: say that, not "read |0:
			// file already closed".
			return nil, fmt.Errorf("read reply: the loader's output was closed (it exited): %w", io.EOF)
		}
		return nil, fmt.Errorf("read reply: %w", f.err)
	}
	return f.m, nil
}

// readLoop is the one goroutine that reads r, so that receive can select on
// ctx. It ends after the first error, or once the Client is broken and the
// read in progress returns.
func (c *Client) readLoop() {
	for {
		m, err := c.r.Read()
		select {
		case c.frames <- frame{m, err}:
		case <-c.done:
			return
		}
		if err != nil {
			return
		}
	}
}

// writeDeadliner is implemented by pipes (*os.File and what
// exec.Cmd.StdinPipe returns).
type writeDeadliner interface {
	SetWriteDeadline(t time.Time) error
}

// write sends one request, giving up when ctx ends. It writes in the calling
// goroutine when w supports write deadlines and in a helper goroutine
// otherwise.
func (c *Client) write(ctx context.Context, b []byte) error {
	if dw, ok := c.w.(writeDeadliner); ok && dw.SetWriteDeadline(time.Time{}) == nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			defer close(fired)
			dw.SetWriteDeadline(time.Unix(1, 0)) // in the past: the write returns now
		})
		_, err := c.w.Write(b)
		if !stop() {
			<-fired
		}
		dw.SetWriteDeadline(time.Time{})
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return err
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.w.Write(b)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
