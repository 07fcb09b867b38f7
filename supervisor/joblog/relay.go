package joblog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line Relay delivers whole. A longer line is split
// into pieces of at most MaxLine bytes, each delivered as its own Line, so a
// job that writes without newlines cannot make god buffer without bound.
const MaxLine = 64 << 10

// relayStartSize is the buffer a relay starts with.
const relayStartSize = 4 << 10

// maxEmptyReads bounds how often a reader may return no data and no error in
// a row before Relay gives up on it (io.ErrNoProgress), as bufio does.
const maxEmptyReads = 100

// Relay reads r line by line until EOF, calling add for each line with Time
// set to the time it was read and Level, Msg and Attrs parsed by [Parse];
// meta supplies Job, Generation, Pid and Stream. It returns nil at EOF, else
// the read error, after delivering what it had read.
//
// Lines end at "\n"; a trailing "\r" is trimmed. A final line without a
// newline is delivered. Lines longer than MaxLine are split into pieces; a
// split never cuts a UTF-8 sequence or a "\r\n" in two. add is called from
// Relay's goroutine, one line at a time.
func Relay(r io.Reader, meta Line, format Format, add func(Line)) error {
	_, err := relay(r, nil, meta, format, add, nil)
	return err
}

// ErrPaused is returned by RelayPausable when the read deadline of its file passed: the relay
// stopped at a line boundary and handed back the bytes of the line it had not finished.
var ErrPaused = errors.New("joblog: relay paused")

// RelayPausable is Relay on a pollable file (a pipe from os.Pipe) that can be stopped without
// losing a byte: setting the file's read deadline in the past makes it return ErrPaused and rest,
// the start of a line not yet delivered. Whoever resumes the relay (god after re-executing
// itself) passes rest as prefix. Without a deadline it behaves like Relay.
//
// flush, when not nil, is called each time the relay has delivered every whole line of what it
// read, before it reads again, and before it returns: the moment for a sink that batches the
// lines (Hub.AddHeld) to write them out.
func RelayPausable(f *os.File, prefix []byte, meta Line, format Format, add func(Line), flush func()) (rest []byte, err error) {
	return relay(f, prefix, meta, format, add, flush)
}

func relay(r io.Reader, prefix []byte, meta Line, format Format, add func(Line), flush func()) ([]byte, error) {
	// pending is set when lines went out since the last flush; flushPending runs before each
	// read (which may block) and on return.
	pending := false
	flushPending := func() {
		if pending && flush != nil {
			flush()
		}
		pending = false
	}
	defer flushPending()
	// The buffer starts small and doubles up to MaxLine only for a line that does not fit: a
	// thousand quiet jobs must not cost two 64 KiB buffers each.
	if len(prefix) > MaxLine-1 {
		prefix = prefix[len(prefix)-(MaxLine-1):]
	}
	size := relayStartSize
	for size <= len(prefix) {
		size *= 2
	}
	buf := make([]byte, min(size, MaxLine))
	start, end, empty := 0, 0, 0
	end = copy(buf, prefix)
	// afterSplit is set once a piece of a long line went out: if the rest
	// of that line is empty (its end was the newline, or "\r\n"), there is
	// no further piece to deliver.
	afterSplit := false
	// now is the time of the read that brought the lines being delivered: one clock read per
	// read, not per line, as the lines of one read arrived together.
	var now time.Time
	deliver := func(b []byte) {
		b = bytes.TrimSuffix(b, []byte{'\r'})
		if afterSplit && len(b) == 0 {
			afterSplit = false
			return
		}
		afterSplit = false
		l := meta
		l.Time = now
		l.Level, l.Msg, l.Attrs = Parse(format, string(b))
		l.Seq = 0
		add(l)
		pending = true
	}
	for {
		flushPending()
		n, err := r.Read(buf[end:])
		now = time.Now()
		end += n
		for {
			i := bytes.IndexByte(buf[start:end], '\n')
			if i < 0 {
				break
			}
			deliver(buf[start : start+i])
			start += i + 1
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return append([]byte(nil), buf[start:end]...), ErrPaused
			}
			if start < end {
				deliver(buf[start:end])
			}
			if err == io.EOF {
				return nil, nil
			}
			return nil, fmt.Errorf("joblog: relay of job %s %s (pid %d): %w", meta.Job, meta.Stream, meta.Pid, err)
		}
		if start == 0 && end == len(buf) && len(buf) < MaxLine {
			bigger := make([]byte, min(2*len(buf), MaxLine))
			copy(bigger, buf[:end])
			buf = bigger
		} else if start == 0 && end == len(buf) {
			cut := splitPoint(buf)
			deliver(buf[:cut])
			afterSplit = true
			start = cut
		}
		if start > 0 {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if n > 0 {
			empty = 0
		} else if empty++; empty >= maxEmptyReads {
			return nil, fmt.Errorf("joblog: relay of job %s %s (pid %d): %w", meta.Job, meta.Stream, meta.Pid, io.ErrNoProgress)
		}
	}
}

// splitPoint picks where to cut a full buffer that holds no newline: at the
// end, moved back before an incomplete UTF-8 sequence and before a "\r" that
// may start a "\r\n", so that neither is torn into two lines.
func splitPoint(b []byte) int {
	cut := len(b)
	// A rune starts at most utf8.UTFMax-1 bytes before the end and is cut
	// only if it is not complete.
	for i := cut - 1; i >= 0 && i >= cut-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:cut]) {
				cut = i
			}
			break
		}
	}
	if cut > 1 && b[cut-1] == '\r' {
		cut--
	}
	return cut
}
