package control

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"time"
)

// Defaults of the Server's tunables.
const (
	DefaultRequestTimeout = 5 * time.Second
	DefaultWriteTimeout   = 10 * time.Second
	DefaultMaxConns       = 128
)

// errFinished is what emit returns once the handler has returned.
var errFinished = errors.New("control: response already finished")

// Server serves control requests on unix listeners until Close.
//
// For every connection it checks the peer's credentials (SO_PEERCRED: the
// same uid as god, or root; anyone else gets "permission denied: uid N" and
// is logged), reads one request line of at most MaxRequestSize bytes within
// RequestTimeout (a total deadline, so a client trickling one byte a second
// is cut off too), answers malformed, oversized, truncated, late or invalid
// requests with a result error, and runs valid ones on Handler in the
// connection's own goroutine. At most MaxConns connections are served at once;
// further ones get a "busy" result and are closed. Every write has a deadline
// of WriteTimeout, so a client that stops reading cannot block god: its
// request's ctx is cancelled (a "logs -f" stream ends) and it is dropped.
//
// The zero value with Handler set is ready to use. Do not change fields after
// the first Serve.
type Server struct {
	Handler Handler      // runs valid requests; required
	Logger  *slog.Logger // refused peers, bad requests, commands; nil means slog.Default()

	RequestTimeout time.Duration // time to receive the request line; 0 means DefaultRequestTimeout
	WriteTimeout   time.Duration // deadline of each write to a client; 0 means DefaultWriteTimeout
	MaxConns       int           // connections served at once; 0 means DefaultMaxConns

	mu        sync.Mutex
	started   bool
	closed    bool
	ctx       context.Context // cancelled by Close; parent of every request's ctx
	cancel    context.CancelFunc
	listeners map[*net.UnixListener]struct{}
	active    int
	conns     sync.WaitGroup // connection goroutines
	serving   sync.WaitGroup // Serve loops
}

// initLocked sets up the server's context on first use; s.mu must be held.
func (s *Server) initLocked() {
	if !s.started {
		s.started = true
		s.ctx, s.cancel = context.WithCancel(context.Background())
		s.listeners = make(map[*net.UnixListener]struct{})
	}
}

// Serve accepts connections on ln and serves each in its own goroutine. It
// returns nil after Close (also when called after Close, closing ln), and an
// error when accepting fails for another reason. Serve may be called for
// several listeners at once.
func (s *Server) Serve(ln *net.UnixListener) error {
	if s.Handler == nil {
		return errors.New("control: Server.Handler is nil")
	}
	s.mu.Lock()
	s.initLocked()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.serving.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		s.serving.Done()
	}()

	var backoff time.Duration
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if !transientAcceptError(err) {
				return fmt.Errorf("control: accept on %s: %w", ln.Addr(), err)
			}
			// Out of fds or memory: wait for it to pass, like net/http.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("control: accept failed; retrying", "addr", ln.Addr().String(), "err", err, "delay", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
				return nil
			}
			continue
		}
		backoff = 0

		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		if s.active >= s.maxConns() {
			s.mu.Unlock()
			s.refuseBusy(conn)
			continue
		}
		s.active++
		s.conns.Add(1)
		s.mu.Unlock()
		go s.serveConn(conn)
	}
}

// Close stops accepting (closing the listeners, which removes their socket
// files unless SetUnlinkOnClose(false) was called on them), cancels the ctx
// of every request in flight and waits until their handlers have returned
// and their connections are closed. It returns the first error from closing
// a listener.
func (s *Server) Close() error {
	s.mu.Lock()
	s.initLocked()
	var err error
	if !s.closed {
		s.closed = true
		for ln := range s.listeners {
			if cerr := ln.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}
		s.cancel()
	}
	s.mu.Unlock()
	s.serving.Wait()
	s.conns.Wait()
	return err
}

// isClosed reports whether Close was called.
func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Server) maxConns() int {
	if s.MaxConns > 0 {
		return s.MaxConns
	}
	return DefaultMaxConns
}

func (s *Server) requestTimeout() time.Duration {
	if s.RequestTimeout > 0 {
		return s.RequestTimeout
	}
	return DefaultRequestTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

// transientAcceptError says whether an accept error may pass by itself
// (resource exhaustion, a connection aborted before accept), so that Serve
// retries instead of giving up.
func transientAcceptError(err error) bool {
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// refuseBusy answers a connection over the MaxConns limit and closes it. It
// runs in the accept loop: the write goes to a fresh socket's empty send
// buffer, and its short deadline bounds it anyway.
func (s *Server) refuseBusy(conn *net.UnixConn) {
	defer conn.Close()
	s.logger().Warn("control: too many connections; refusing one", "max", s.maxConns())
	line, _ := EncodeResponse(Response{Type: TypeResult, Error: fmt.Sprintf("busy: god is serving %d control connections; try again", s.maxConns())})
	conn.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	conn.Write(line)
}

// writeResult writes a final error line to a connection that will not reach
// a handler; failures are ignored because the connection is closed next.
func (s *Server) writeResult(conn *net.UnixConn, res Response) {
	res.Type = TypeResult
	line, err := EncodeResponse(res)
	if err != nil {
		return
	}
	conn.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	conn.Write(line)
}

// serveConn runs one connection from credentials check to closing.
func (s *Server) serveConn(conn *net.UnixConn) {
	defer func() {
		conn.Close()
		s.mu.Lock()
		s.active--
		s.mu.Unlock()
		s.conns.Done()
	}()
	log := s.logger()

	peer, err := peerOf(conn)
	if err != nil {
		log.Warn("control: refusing connection", "err", err)
		s.writeResult(conn, Response{Error: err.Error()})
		return
	}
	if !allowed(peer) {
		log.Warn("control: permission denied", "pid", peer.Pid, "uid", peer.UID, "gid", peer.GID)
		s.writeResult(conn, Response{Error: fmt.Sprintf("permission denied: uid %d", peer.UID)})
		return
	}

	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()

	br := bufio.NewReader(conn)
	req, err := s.readRequest(ctx, conn, br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			// Connected and left without a word: a liveness probe.
			log.Debug("control: client left without a request", "pid", peer.Pid, "uid", peer.UID)
			return
		}
		log.Info("control: bad request", "pid", peer.Pid, "uid", peer.UID, "err", err)
		s.writeResult(conn, Response{Error: err.Error()})
		return
	}

	// One request per connection: anything the client does next (closing,
	// or sending more) means it is gone or broken, and ends the request.
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var buf [512]byte
		br.Read(buf[:])
		cancel()
	}()
	defer func() {
		conn.Close() // unblocks the watcher
		<-watched
	}()

	level := slog.LevelInfo
	switch req.Cmd {
	case CmdStatus, CmdLogs, CmdVersion, CmdMetrics: // reads; metrics comes at every scrape
		level = slog.LevelDebug
	}
	log.Log(ctx, level, "control: request", "cmd", req.Cmd, "jobs", req.Jobs, "pid", peer.Pid, "uid", peer.UID)

	w := &responseWriter{conn: conn, timeout: s.writeTimeout(), cancel: cancel}
	res, handled := s.run(ctx, peer, req, conn, w.emit)
	if !res.OK {
		if res.Error == "" {
			res.Error = req.Cmd + ": failed (no reason given)"
		}
		log.Info("control: request failed", "cmd", req.Cmd, "jobs", req.Jobs, "pid", peer.Pid, "err", res.Error)
	}
	if handled {
		w.finish()
		return
	}
	if err := w.result(res); err != nil {
		log.Debug("control: result not delivered", "cmd", req.Cmd, "pid", peer.Pid, "err", err)
	}
}

// readRequest reads and decodes the request line within the request timeout;
// Close cuts the wait short. A client that connected and closed without
// sending a byte gives io.EOF.
func (s *Server) readRequest(ctx context.Context, conn *net.UnixConn, br *bufio.Reader) (Request, error) {
	timeout := s.requestTimeout()
	conn.SetReadDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	line, err := readLine(br, MaxRequestSize)
	stop()
	conn.SetReadDeadline(time.Time{})
	var nerr net.Error
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		return Request{}, io.EOF
	case errors.Is(err, errLineTooLong):
		return Request{}, fmt.Errorf("request too large: more than %d bytes", MaxRequestSize)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Request{}, errors.New("request truncated: connection closed before the end of the line")
	case ctx.Err() != nil:
		return Request{}, errors.New("god is shutting down")
	case errors.As(err, &nerr) && nerr.Timeout():
		return Request{}, fmt.Errorf("request not received within %v", timeout)
	default:
		return Request{}, fmt.Errorf("reading request: %w", err)
	}
	req, err := DecodeRequest(line)
	if err != nil {
		return Request{}, fmt.Errorf("bad request: %w", err)
	}
	return req, nil
}

// run calls the handler (ConnHandler first when implemented), turning a
// panic into an error result so one bad request cannot take god down.
func (s *Server) run(ctx context.Context, peer Peer, req Request, conn *net.UnixConn, emit func(Response) error) (res Response, handled bool) {
	defer func() {
		if p := recover(); p != nil {
			s.logger().Error("control: handler panic", "cmd", req.Cmd, "panic", p, "stack", string(debug.Stack()))
			res, handled = Response{Error: fmt.Sprintf("%s: internal error in god (see its log)", req.Cmd)}, false
		}
	}()
	if ch, ok := s.Handler.(ConnHandler); ok {
		// A ConnHandler writes to conn itself after its emits: none of them may wait in the buffer.
		emitNow := func(r Response) error {
			r.More = false
			return emit(r)
		}
		if res, handled := ch.HandleConn(ctx, peer, req, conn, emitNow); handled {
			return res, true
		}
	}
	return s.Handler.Handle(ctx, peer, req, emit), false
}

// jobLineBytes is about what a job takes in a status line (a running job with one process and a
// loader path of 20 bytes: 260), to size the buffer for a status of thousands of jobs.
const jobLineBytes = 300

// maxPending is how many bytes of lines marked More a responseWriter keeps before it writes
// them anyway.
const maxPending = 64 << 10

// responseWriter serialises the lines written to one client and gives every
// write a deadline. The first failed write cancels the request: the client
// is gone or has stopped reading. Lines marked More wait in buf until a line
// without More, the result, or maxPending bytes: a burst of log lines for a
// "logs -f" reader goes out in a few writes instead of one per line.
type responseWriter struct {
	conn    *net.UnixConn
	timeout time.Duration
	cancel  context.CancelFunc

	mu       sync.Mutex
	finished bool
	err      error
	buf      []byte // lines not yet written
}

// emit is the function handlers get to send progress and log lines.
func (w *responseWriter) emit(r Response) error {
	switch r.Type {
	case TypeResult:
		return errors.New("control: emit: the result line is the handler's return value")
	case "":
		r.Type = TypeProgress
		if r.Log != nil {
			r.Type = TypeLog
		}
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.finished {
		return errFinished
	}
	return w.writeLocked(r)
}

// result writes the result line and makes further emits fail.
func (w *responseWriter) result(r Response) error {
	r.V, r.Type = Version, TypeResult
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished = true
	return w.writeLocked(r)
}

// finish makes further emits fail; lines still buffered are written (a ConnHandler's emits
// never set More, so there are none when it has written to conn itself).
func (w *responseWriter) finish() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.finished = true
	_ = w.sendLocked()
}

// writeLocked encodes r into the buffer (as EncodeResponse does) and sends the buffer unless
// r says more lines follow and the buffer is still small.
func (w *responseWriter) writeLocked(r Response) error {
	if w.err != nil {
		return w.err
	}
	if n := len(r.Jobs); n > 0 {
		// A status: room for the whole line at once, not a doubling for every 2^k bytes of it.
		w.buf = slices.Grow(w.buf, n*jobLineBytes)
	}
	buf, err := appendResponse(w.buf, r)
	w.buf = buf // on an error, without the line
	if err != nil {
		return fmt.Errorf("encode %s line: %w", r.Type, err)
	}
	if r.More && r.Type != TypeResult && len(w.buf) < maxPending {
		return nil
	}
	return w.sendLocked()
}

// sendLocked writes the buffered lines.
func (w *responseWriter) sendLocked() error {
	if w.err != nil || len(w.buf) == 0 {
		return w.err
	}
	w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(w.buf)
	w.buf = w.buf[:0]
	if cap(w.buf) > 4*maxPending {
		w.buf = nil // one huge status must not keep its buffer for a long follow
	}
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = fmt.Errorf("client stopped reading for %v", w.timeout)
		}
		w.err = fmt.Errorf("control: client gone: %w", err)
		w.cancel()
		return w.err
	}
	return nil
}
