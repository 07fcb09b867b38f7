// Package loader implements godv1, the line-based protocol between god and its
// loaders, on both sides.
//
// A loader is an executable that god runs as "FILE godv1". It writes a
// handshake naming the jobs it defines, then answers god's requests, one JSON
// array of strings per line, in order:
//
//	loader → god   ["godv1","web","db"]
//	god → loader   ["web","exec"]
//	loader → god   ["/usr/bin/web","-v"]
//	god → loader   ["web","check","4242"]
//	loader → god   ["ok","500"]
//
// god's side is [Client] (with [Client.Define] for a job's static properties
// and the ParseX functions for typed replies); a loader's side is [Serve] with
// a [Handler]; both sides share the framing of frame.go.
// The protocol itself is documented in the project's docs/protocol.md.
package loader
