package control

import (
	"context"
	"net"
)

// Handler runs one validated request. emit sends progress and log lines to the
// client; it is safe for concurrent use, fills in V, Type ("log" when Log is
// set, else "progress") and Time (now) when they are zero, refuses a "result"
// line, and returns an error once the client is gone or the handler has
// returned. ctx is cancelled when the client disconnects, stops reading for
// the server's write timeout, or the server closes. A line with More set may
// wait in the server's buffer until the next line without it or the result:
// set it while further lines are ready at once. The returned Response is
// the result line: the server sets V and Type. A handler error message names
// the culprit ("job web: no such job").
type Handler interface {
	Handle(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, peer Peer, req Request, emit func(Response) error) Response {
	return f(ctx, peer, req, emit)
}

// ConnHandler is implemented by a Handler that needs the connection itself for
// some requests. The "fds" command is the case it exists for: its result
// carries descriptors (SCM_RIGHTS), which only conn.WriteMsgUnix can send.
//
// The server calls HandleConn first. When it returns handled == false the
// server goes on with Handle as usual. When handled is true, the handler has
// written the whole result line itself (use EncodeResponse, set a write
// deadline, and send at least the line's bytes with the descriptors), and the
// server writes nothing more: it only logs res and closes the connection.
// The handler must not read from conn (the server watches it to notice the
// client leaving) and must be done calling emit before it writes to conn.
type ConnHandler interface {
	HandleConn(ctx context.Context, peer Peer, req Request, conn *net.UnixConn, emit func(Response) error) (res Response, handled bool)
}
