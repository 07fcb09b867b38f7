package loader

import (
	"errors"
	"fmt"
	"io"
)

// Handler answers god's requests on the loader side.
type Handler interface {
	// Jobs names the jobs the loader defines, for the handshake.
	Jobs() []string
	// Answer returns the reply to [job, prop, args...]; nil means []
	// ("not defined here"). It is called for unknown jobs and properties too.
	Answer(job, prop string, args []string) []string
}

// Serve is a loader's main loop: it writes the handshake for h.Jobs(), then
// answers each request read from r by calling h, in order, until r ends.
// It returns nil at the end of r. A malformed request (not a JSON array of
// strings, or fewer than two elements) is answered with [] and is not fatal;
// an invalid or repeated job name from h, a line over the 1 MiB limit of a
// message and a write error are.
func Serve(r io.Reader, w io.Writer, h Handler) error {
	jobs := h.Jobs()
	hs := append(Message{Version}, jobs...)
	if _, err := parseHandshake(hs); err != nil {
		return err // names the bad job
	}
	if err := writeMessage(w, hs); err != nil {
		return fmt.Errorf("loader: serve: write handshake: %w", err)
	}
	rd := newMessageReader(r)
	for {
		m, err := rd.Read()
		var fe *frameError
		switch {
		case err == nil:
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil
		case errors.As(err, &fe):
			m = nil
		default:
			return fmt.Errorf("loader: serve: read request: %w", err)
		}
		var reply []string
		if len(m) >= 2 {
			reply = h.Answer(m[0], m[1], m[2:])
		}
		if err := writeMessage(w, reply); err != nil {
			return fmt.Errorf("loader: serve: write reply: %w", err)
		}
	}
}
