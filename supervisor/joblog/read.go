package joblog

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ParseRecord reads one record of a log file (see AppendRecord), without its newline: the time,
// stream, pid and generation go to the Line's fields, the rest to Msg, as the file holds it
// (escaped by Clean; a json or logfmt line is not parsed here). ok is false for anything that
// is not a record: a line cut short by a crash, a file someone else wrote. It never panics and
// takes time linear in len(b).
func ParseRecord(b []byte) (l Line, ok bool) {
	ts, rest, ok := bytes.Cut(b, []byte{' '})
	if !ok || len(ts) != len(lineTimeFormat) {
		return Line{}, false
	}
	t, err := time.Parse(lineTimeFormat, string(ts))
	if err != nil {
		return Line{}, false
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		return Line{}, false
	}
	switch string(stream) {
	case StreamStdout:
		l.Stream = StreamStdout
	case StreamStderr:
		l.Stream = StreamStderr
	case StreamGod:
		l.Stream = StreamGod
	default:
		return Line{}, false
	}
	pid, rest, ok := recordInt(rest, "pid=")
	if !ok {
		return Line{}, false
	}
	gen, rest, ok := recordInt(rest, "gen=")
	if !ok {
		return Line{}, false
	}
	l.Time, l.Pid, l.Generation, l.Msg = t, pid, gen, string(rest)
	return l, true
}

// recordInt reads "KEYdigits " at the start of b: the pid and gen fields of a record.
func recordInt(b []byte, key string) (int, []byte, bool) {
	if !bytes.HasPrefix(b, []byte(key)) {
		return 0, nil, false
	}
	field, rest, ok := bytes.Cut(b[len(key):], []byte{' '})
	if !ok || len(field) == 0 || len(field) > 10 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(field))
	if err != nil || n < 0 {
		return 0, nil, false
	}
	return n, rest, true
}

// Dir is the directory the files are written in (absolute).
func (fs *Files) Dir() string { return fs.cfg.Dir }

// ReadRecords yields the records of job's files in dir that were read at or after since,
// oldest first: the rotated @….log files in name order, then current. It reads while god writes:
// current is opened before the rotated files are listed, so a rotation in between shows the
// renamed file once (it is recognised by its inode); what is written to a new current after
// that is not read (the caller has it in the ring). A rotated file named before since is not
// opened (its records were all read before its rotation); a line that is not a record (a last
// line cut short) is skipped. An error reading a file ends the sequence with it.
func ReadRecords(dir, job string, since time.Time) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		if !validFileName(job) {
			yield(Line{}, fmt.Errorf("joblog: log files of job %q: not a file name", job))
			return
		}
		jdir := filepath.Join(dir, job)
		cur, err := os.Open(filepath.Join(jdir, fileCurrent))
		switch {
		case errors.Is(err, os.ErrNotExist):
			cur = nil
		case err != nil:
			yield(Line{}, fmt.Errorf("joblog: log files of job %s: %w", job, err))
			return
		}
		if cur != nil {
			defer cur.Close()
		}
		var curStat unix.Stat_t
		if cur != nil {
			if err := unix.Fstat(int(cur.Fd()), &curStat); err != nil {
				yield(Line{}, fmt.Errorf("joblog: log files of job %s: %w", job, err))
				return
			}
		}
		ents, err := os.ReadDir(jdir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			yield(Line{}, fmt.Errorf("joblog: log files of job %s: %w", job, err))
			return
		}
		var old []string
		for _, e := range ents {
			n := e.Name()
			if !strings.HasPrefix(n, "@") || !strings.HasSuffix(n, ".log") {
				continue
			}
			if t, err := time.Parse(fileStampFormat, n[1:len(n)-4]); err == nil && t.Before(since) {
				continue // rotated before since: every record in it is older
			}
			old = append(old, n)
		}
		slices.Sort(old)
		for _, n := range old {
			f, err := os.Open(filepath.Join(jdir, n))
			if errors.Is(err, os.ErrNotExist) {
				continue // pruned meanwhile
			}
			if err != nil {
				yield(Line{}, fmt.Errorf("joblog: log files of job %s: %w", job, err))
				return
			}
			var st unix.Stat_t
			if cur != nil && unix.Fstat(int(f.Fd()), &st) == nil && st.Dev == curStat.Dev && st.Ino == curStat.Ino {
				f.Close() // current, rotated since it was opened: read once, last
				continue
			}
			more := readRecords(f, job, since, yield)
			f.Close()
			if !more {
				return
			}
		}
		if cur != nil {
			readRecords(cur, job, since, yield)
		}
	}
}

// readRecords yields the records of one file at or after since; false when the caller stopped
// or the file could not be read.
func readRecords(f *os.File, job string, since time.Time, yield func(Line, error) bool) bool {
	r := bufio.NewReaderSize(f, 64<<10)
	for {
		b, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A record longer than the buffer (a 64 KiB line escaped): read it whole.
			long := append([]byte(nil), b...)
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = r.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if err == io.EOF {
			return true // a last line without its newline is being written, or was cut: skipped
		}
		if err != nil {
			return yield(Line{}, fmt.Errorf("joblog: log files of job %s: %s: %w", job, f.Name(), err))
		}
		l, ok := ParseRecord(b[:len(b)-1])
		if !ok || l.Time.Before(since) {
			continue
		}
		l.Job = job
		if !yield(l, nil) {
			return false
		}
	}
}
