package joblog

import (
	"fmt"
	"io"
	"time"
)

// relayBufSize is the read buffer of Relay. Lines are not limited by it: a
// line longer than one read waits in the Splitter, up to MaxLine.
const relayBufSize = 16 << 10

// maxEmptyReads bounds how often a reader may return no data and no error in
// a row before Relay gives up on it (io.ErrNoProgress), as bufio does.
const maxEmptyReads = 100

// Relay reads r line by line until EOF, calling add for each line with Time
// set to the time it was read and Level, Msg and Attrs parsed by [Parse];
// meta supplies Job, Generation, Pid and Stream. It returns nil at EOF, else
// the read error, after delivering what it had read (the unfinished line too).
//
// Lines are cut as a [Splitter] cuts them: at "\n", a trailing "\r" trimmed,
// a final line without a newline delivered, lines longer than MaxLine split
// into pieces without tearing a UTF-8 sequence or a "\r\n". add is called from
// Relay's goroutine, one line at a time.
//
// Relay blocks a goroutine per stream; god relays its jobs' pipes with a [Mux].
func Relay(r io.Reader, meta Line, format Format, add func(Line)) error {
	sp := NewSplitter(meta, format, add)
	buf := make([]byte, relayBufSize)
	empty := 0
	for {
		n, err := r.Read(buf)
		now := time.Now()
		if n > 0 {
			sp.Feed(buf[:n], now)
			empty = 0
		}
		if err == io.EOF {
			sp.End(now)
			return nil
		}
		if err != nil {
			sp.End(now)
			return fmt.Errorf("joblog: relay of job %s %s (pid %d): %w", meta.Job, meta.Stream, meta.Pid, err)
		}
		if n == 0 {
			if empty++; empty >= maxEmptyReads {
				sp.End(now)
				return fmt.Errorf("joblog: relay of job %s %s (pid %d): %w", meta.Job, meta.Stream, meta.Pid, io.ErrNoProgress)
			}
		}
	}
}
