package loader

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Version is the protocol name: the first element of the handshake and the
// argument god runs a loader with.
const Version = "godv1"

// maxMessage bounds one message in bytes, its newline excluded.
const maxMessage = 1 << 20

// Message is one godv1 frame: a JSON array of strings on one line.
type Message []string

// errTooLong is returned by messageReader.Read for a line longer than maxMessage.
// The stream cannot be resynchronised after it: the messageReader stays failed.
var errTooLong = fmt.Errorf("loader: message longer than %d bytes", maxMessage)

// frameError reports a line that is not a JSON array of strings. It is not
// fatal to a messageReader: the next line can still be read.
type frameError struct {
	Line string // the first 200 bytes of the line, for the log
	Err  error  // what is wrong with it
}

// Error quotes the start of the offending line so that a log names it.
func (e *frameError) Error() string {
	return fmt.Sprintf("loader: bad message %q: %v", e.Line, e.Err)
}

// Unwrap gives the underlying reason (a JSON syntax error, for instance).
func (e *frameError) Unwrap() error { return e.Err }

// frameLogMax is how much of a bad line a frameError keeps.
const frameLogMax = 200

// readBufSize is the bufio size: most messages fit, longer ones are
// accumulated in messageReader.line up to maxMessage.
const readBufSize = 64 << 10

// messageReader reads godv1 frames from a stream. It never holds more than
// maxMessage bytes of one line: a peer that floods without a newline gets
// errTooLong instead of making the reader allocate without bound.
// A messageReader is not safe for concurrent use.
type messageReader struct {
	br   *bufio.Reader
	line []byte // the line being assembled, reused between reads
	err  error  // sticky: EOF, errTooLong or a read error
}

// newMessageReader returns a messageReader that reads frames from r.
func newMessageReader(r io.Reader) *messageReader {
	return &messageReader{br: bufio.NewReaderSize(r, readBufSize)}
}

// Read returns the next message. It returns io.EOF at a clean end of stream,
// io.ErrUnexpectedEOF when the stream ends inside a line, errTooLong for a
// line over maxMessage and *frameError for a line that is not a JSON array of
// strings (null elements, numbers, objects and trailing data are errors;
// "[]" is an empty message, and so is a line that is only "null", v0.1's
// answer for a nil list). All errors but *frameError are permanent.
func (r *messageReader) Read() (Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	line, err := r.readLine()
	if err != nil {
		r.err = err
		return nil, err
	}
	m, err := parseFrame(line)
	if cap(r.line) > readBufSize {
		r.line = nil // do not keep a large buffer for a rare large message
	}
	return m, err
}

// readLine assembles one line without its newline, bounded at maxMessage.
func (r *messageReader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		n := len(chunk)
		if err == nil {
			n-- // the newline is not part of the message
		}
		if len(r.line)+n > maxMessage {
			return nil, errTooLong
		}
		r.line = append(r.line, chunk[:n]...)
		switch {
		case err == nil:
			return r.line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.line) == 0 {
				return nil, io.EOF
			}
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// parseFrame decodes one line strictly: encoding/json alone would turn
// [null] into [""]. The one exception is a line that is only null, read as
// the empty message: v0.1's watchgod package answered a func() []string that
// returned nil with null, and such a loader must still work (its property or
// hook reply takes the default).
func parseFrame(line []byte) (Message, error) {
	bad := func(err error) (Message, error) {
		return nil, &frameError{Line: string(line[:min(len(line), frameLogMax)]), Err: err}
	}
	if string(bytes.Trim(line, " \t\r")) == "null" {
		return Message{}, nil
	}
	if t := bytes.TrimLeft(line, " \t\r"); len(t) == 0 || t[0] != '[' {
		return bad(errors.New("not a JSON array"))
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(line, &raw); err != nil {
		return bad(err)
	}
	m := make(Message, len(raw))
	for i, e := range raw {
		if len(e) == 0 || e[0] != '"' {
			return bad(fmt.Errorf("element %d is %s, not a string", i, e[:min(len(e), 20)]))
		}
		if err := json.Unmarshal(e, &m[i]); err != nil {
			return bad(fmt.Errorf("element %d: %w", i, err))
		}
	}
	return m, nil
}

// writeMessage writes m as one line of JSON with a single Write, so that a
// message is never interleaved with another writer's. A nil Message is
// written as [].
func writeMessage(w io.Writer, m Message) error {
	b, err := appendMessage(nil, m)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// appendMessage encodes m and its newline.
func appendMessage(b []byte, m Message) ([]byte, error) {
	if m == nil {
		m = Message{}
	}
	j, err := json.Marshal([]string(m))
	if err != nil {
		return nil, fmt.Errorf("loader: encode message: %w", err)
	}
	b = append(b, j...)
	return append(b, '\n'), nil
}
