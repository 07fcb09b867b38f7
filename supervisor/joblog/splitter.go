package joblog

import (
	"bytes"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line a relay delivers whole. A longer line is split
// into pieces of at most MaxLine bytes, each delivered as its own Line, so a
// job that writes without newlines cannot make god buffer without bound.
const MaxLine = 64 << 10

// Splitter cuts the bytes of one output stream into Lines. It owns no read
// buffer: Feed takes the bytes as they were read, delivers every line they
// complete straight from them, and keeps a copy of the unfinished line only.
// A stream with nothing pending holds no memory beyond the Splitter itself,
// which is what lets one reader (Mux) serve thousands of quiet pipes.
//
// The rules, the same whatever the chunks the bytes arrive in:
//   - "\n" ends a line; one trailing "\r" is trimmed ("\r\n" line ends).
//   - A line that reaches MaxLine bytes without a newline is cut there, moved
//     back so as not to tear a UTF-8 sequence or a "\r\n" in two (see
//     splitPoint); the piece is delivered and the line goes on. When what
//     follows the last piece is empty (the line's newline came right after
//     the cut), no empty line is delivered for it.
//   - Level, Msg and Attrs come from [Parse] with the Splitter's format; Job,
//     Generation, Pid and Stream from its meta; Time is the time of the read
//     that completed the line; Seq is zero (the Hub numbers lines).
//
// A Splitter is not safe for concurrent use.
type Splitter struct {
	meta    Line
	format  Format
	deliver func(Line)
	// NewBatchSplitter's: the lines of one Feed or End go out together, in *lines (a Mux lends
	// all its Splitters one slice: a pipe that flooded once keeps no batch). A text line that
	// lies whole in the bytes fed is a slice of chunk, those bytes as one string, rather than a
	// string of its own.
	batch func([]Line)
	lines *[]Line
	chunk string
	now   time.Time
	// pending is the start of a line not finished yet, nil when there is none. Feed keeps it
	// shorter than MaxLine and free of "\n"; only Carry may break that (dirty), and the next Feed
	// or End mends it.
	pending []byte
	dirty   bool
	// cut is set once a piece of a long line went out: if the rest of that line turns out
	// empty (its end was the newline, or "\r\n"), there is no further piece to deliver.
	cut bool
}

// NewSplitter returns a Splitter that hands each line of the stream meta
// describes to deliver, parsed in format. deliver is called from Feed and End,
// in order, one line at a time.
func NewSplitter(meta Line, format Format, deliver func(Line)) *Splitter {
	return &Splitter{meta: meta, format: format, deliver: deliver}
}

// NewBatchSplitter is NewSplitter for a sink that takes lines in batches: each Feed and End
// hands the lines it completed to deliver in one call (none when it completed none). The
// slice is the Splitter's again once deliver returns, and deliver may change its lines. Msg
// of text lines that were read in one piece are slices of one string per Feed: a sink that
// keeps a few of them should copy those (strings.Clone), or it keeps the whole read.
func NewBatchSplitter(meta Line, format Format, deliver func([]Line)) *Splitter {
	return &Splitter{meta: meta, format: format, batch: deliver, lines: new([]Line)}
}

// Carry makes rest the start of the line the Splitter is in, as if it had
// read it: rest and cut are what Rest returned from a Splitter of the same
// stream that was stopped (god handing a pipe to its new image, or resuming a
// paused relay). Call it before Feed. rest is copied. A rest that is not what
// Rest can return (MaxLine bytes or more, or holding a newline) loses nothing:
// its lines are delivered by the next Feed or End.
func (s *Splitter) Carry(rest []byte, cut bool) {
	s.pending = nil
	if len(rest) > 0 {
		s.pending = append([]byte(nil), rest...)
	}
	s.cut = cut
	s.dirty = len(rest) >= MaxLine || bytes.IndexByte(rest, '\n') >= 0
}

// Rest returns the start of the line not finished yet (nil when the last byte
// fed ended a line) and whether that line already had a piece cut off at
// MaxLine: what a Splitter that takes the stream over needs (Carry). The slice
// stays valid after later calls; appending to it does not disturb the Splitter.
func (s *Splitter) Rest() (rest []byte, cut bool) {
	return s.pending[:len(s.pending):len(s.pending)], s.cut
}

// Feed splits b, read at now, delivering each line it completes; it returns
// how many lines it delivered. b is not kept: the caller may reuse it.
func (s *Splitter) Feed(b []byte, now time.Time) int {
	s.now = now
	if s.dirty {
		// A carried rest that breaks pending's rules goes through as bytes read now.
		b = append(s.pending, b...)
		s.pending, s.dirty = nil, false
	}
	if s.batch != nil {
		defer s.flushBatch()
		if s.format == FormatText && len(b) > 0 && bytes.IndexByte(b, '\n') >= 0 {
			s.chunk = string(b) // one copy for every line that lies whole in b
		}
	}
	off := 0 // where b starts in what was fed (s.chunk)
	n := 0
	for len(b) > 0 {
		if len(s.pending) > 0 {
			// The line began in an earlier read: end it, grow it, or cut it at MaxLine.
			room := MaxLine - len(s.pending)
			if i := bytes.IndexByte(b[:min(len(b), room)], '\n'); i >= 0 {
				line := append(s.pending, b[:i]...)
				s.pending = nil
				n += s.emit(line)
				b = b[i+1:]
				off += i + 1
				continue
			}
			if len(b) < room {
				s.pending = append(s.pending, b...)
				return n
			}
			line := append(s.pending, b[:room]...)
			cut := splitPoint(line)
			n += s.emit(line[:cut])
			s.cut = true
			s.pending = nil
			if cut < len(line) {
				s.pending = append([]byte(nil), line[cut:]...) // a few bytes: a rune's start or a "\r"
			}
			b = b[room:]
			off += room
			continue
		}
		// The line begins in b: deliver it from b, without a copy.
		if i := bytes.IndexByte(b[:min(len(b), MaxLine)], '\n'); i >= 0 {
			n += s.emitAt(b[:i], off)
			b = b[i+1:]
			off += i + 1
			continue
		}
		if len(b) < MaxLine {
			s.pending = append([]byte(nil), b...)
			return n
		}
		cut := splitPoint(b[:MaxLine])
		n += s.emitAt(b[:cut], off)
		s.cut = true
		b = b[cut:]
		off += cut
	}
	return n
}

// maxBatchKept is the most lines a batch slice keeps room for between Feeds: a read of
// seq-like lines fits (about 9 000 of 64 KiB), a read of empty lines (64 Ki of them, 11 MiB of
// Lines) is not kept.
const maxBatchKept = 16 << 10

// flushBatch hands the lines of one Feed or End to the batch sink and forgets them.
func (s *Splitter) flushBatch() {
	s.chunk = ""
	lines := *s.lines
	if len(lines) == 0 {
		return
	}
	s.batch(lines)
	clear(lines) // their strings are not kept alive by the Splitter
	if cap(lines) > maxBatchKept {
		lines = nil
	}
	*s.lines = lines[:0]
}

// End delivers the unfinished line, if any, as the stream's last (a final
// line without a newline), read at now; it returns how many lines it
// delivered. The Splitter is then empty.
func (s *Splitter) End(now time.Time) int {
	n := 0
	if s.dirty {
		n = s.Feed(nil, now)
	}
	if s.batch != nil {
		defer s.flushBatch()
	}
	s.now = now
	if len(s.pending) > 0 {
		n += s.emit(s.pending)
	}
	s.pending, s.cut = nil, false
	return n
}

// emit delivers one line (without its "\n") and returns 1, or 0 for the empty
// rest of a line already cut at MaxLine.
func (s *Splitter) emit(b []byte) int { return s.emitAt(b, -1) }

// emitAt is emit for a line that is s.chunk[off:off+len(b)] when s.chunk holds what Feed was
// given (off >= 0): its text is then a slice of s.chunk, not a copy of its own.
func (s *Splitter) emitAt(b []byte, off int) int {
	if len(b) > 0 && b[len(b)-1] == '\r' {
		b = b[:len(b)-1]
	}
	if s.cut && len(b) == 0 {
		s.cut = false
		return 0
	}
	s.cut = false
	var raw string
	if off >= 0 && s.chunk != "" {
		raw = s.chunk[off : off+len(b)]
	} else {
		raw = string(b)
	}
	if s.batch != nil {
		lines := append(*s.lines, s.meta)
		*s.lines = lines
		s.fill(&lines[len(lines)-1], raw)
		return 1
	}
	l := s.meta
	s.fill(&l, raw)
	s.deliver(l)
	return 1
}

// fill makes l the line raw read at s.now: l holds s.meta.
func (s *Splitter) fill(l *Line, raw string) {
	l.Time = s.now
	l.Level, l.OwnLevel, l.Msg, l.Attrs = parseOwn(s.format, raw)
	if s.format == FormatJSON || s.format == FormatLogfmt {
		l.Raw = raw // for the log files; the same string, no copy
	}
	l.Seq = 0
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
