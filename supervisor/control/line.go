package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
)

// errLineTooLong is returned by readLine for a line over its limit.
var errLineTooLong = errors.New("line too long")

// readLine reads one "\n"-terminated line of at most max bytes (without the
// newline) from r, and returns it without the newline. It exists because
// bufio's own line readers either cap lines at the buffer size or grow
// without bound. At a clean end of input it returns io.EOF; input that ends
// inside a line gives io.ErrUnexpectedEOF.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if cap(line)-len(line) < len(chunk) {
			// Double: append alone grows a long line by a quarter at a time, copying a
			// status of megabytes a dozen times over.
			line = slices.Grow(line, len(line)+len(chunk))
		}
		line = append(line, chunk...)
		switch {
		case err == nil:
			if len(line)-1 > max {
				return nil, errLineTooLong
			}
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			if len(line) > max {
				return nil, errLineTooLong
			}
		case errors.Is(err, io.EOF) && len(line) == 0:
			return nil, io.EOF
		case errors.Is(err, io.EOF) && len(line) > max:
			return nil, errLineTooLong
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// EncodeResponse returns r as one protocol line: JSON ending in "\n", with V
// set to Version when zero. A ConnHandler uses it to write a result line
// itself (for example with descriptors attached by WriteMsgUnix).
func EncodeResponse(r Response) ([]byte, error) {
	b, err := appendResponse(nil, r)
	if err != nil {
		return nil, fmt.Errorf("encode %s line: %w", r.Type, err)
	}
	return b, nil
}
