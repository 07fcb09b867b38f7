// Package control is god's control protocol: how the god CLI (or any client)
// asks a running god daemon to report status, start, stop, restart and reload
// jobs, stream logs, rescan its loaders, shut down or upgrade itself, and how
// the metrics exporter asks it for a snapshot of its counters.
//
// # Transport
//
// The daemon listens on a unix stream socket (see [SocketPath] and [Listen]).
// A client connects, writes exactly one [Request] as one line of JSON ending in
// "\n", then reads [Response] lines: zero or more "progress" or "log" lines,
// then exactly one "result" line, after which the server closes the
// connection. One request per connection keeps both sides simple: there is no
// multiplexing, and a client that disconnects cancels its request.
//
// An exchange, one JSON value per line:
//
//	→ {"v":1,"cmd":"restart","jobs":["web"]}
//	← {"v":1,"type":"progress","time":"2024-05-06T07:08:09.01Z","job":"web","message":"stopping","ok":false}
//	← {"v":1,"type":"progress","time":"2024-05-06T07:08:09.52Z","job":"web","message":"running","ok":false}
//	← {"v":1,"type":"result","message":"restarted web","ok":true}
//
// # Versioning
//
// Every line carries "v" ([Version]). A server refuses a request with another
// version with a clear error. Unknown JSON fields are ignored on both sides,
// so fields can be added without a version bump; a new meaning of an existing
// field needs a new version.
//
// # Security
//
// The socket file is mode 0600 in a directory god owns, and the server also
// checks every connection's peer credentials (SO_PEERCRED): only the uid god
// runs as, and root, may talk to it. Requests are bounded in size (64 KiB) and
// in time (the request line must arrive within 5 s by default), and writes to
// a client have deadlines, so a misbehaving client cannot hold god up.
package control
