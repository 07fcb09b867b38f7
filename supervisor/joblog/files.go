package joblog

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Defaults of FilesConfig.
const (
	DefaultFileSize   = 10 << 20               // rotate current past 10 MiB
	DefaultFileKeep   = 10                     // old files kept per job
	DefaultFileFlush  = 200 * time.Millisecond // the most a line waits in memory, and what kill -9 may lose
	fileFlushAt       = 64 << 10               // a job's buffer this full is written without waiting for the timer
	fileMaxPending    = 4 << 20                // past this a job's lines are dropped (and counted) until the writer catches up
	fileBlock         = 64 << 10               // records are formatted into blocks of this size (newBlock)
	fileRetry         = time.Second            // a failing file is not retried more often
	fileErrorInterval = time.Minute            // a failing file is reported at most this often
	fileCurrent       = "current"
	fileStampFormat   = "20060102T150405.000000Z"
	lineTimeFormat    = "2006-01-02T15:04:05.000000Z"
)

// FilesConfig says where and how Files keeps the log files of jobs.
type FilesConfig struct {
	Dir   string        // DIR: each job writes DIR/JOB/current
	Size  int64         // current is rotated before it would exceed Size bytes (DefaultFileSize when <= 0)
	Keep  int           // rotated files kept per job, the oldest removed (0 keeps none, < 0 DefaultFileKeep)
	Flush time.Duration // how long lines may wait in memory (DefaultFileFlush when <= 0)
	// Logger is told, at most once a minute per job, that a job's file cannot be written, and
	// when it can be again. nil: slog.Default().
	Logger *slog.Logger
}

// Files writes every job's output lines to DIR/JOB/current, one record per line (see
// AppendRecord), rotating current to DIR/JOB/@TIMESTAMP.log by size and keeping the newest Keep
// of those.
//
// Write formats the line into the job's buffer in memory and returns: one writer goroutine does
// all disk work (writes, rotation, reopening), at most Flush after a line came, or at once when a
// job's buffer holds 64 KiB or WriteNow asks (a relay that delivered what it read: Hub.Flush).
// While the writer writes, the next lines gather in the buffer, so a flooding job costs one
// write per 64 KiB block of records, and a quiet one a write per read. The relay thus never
// waits for a slow disk; a job whose buffer reaches 4 MiB because the disk does not keep up
// loses lines, counted and noted in its file.
//
// The cost per line is kept low for jobs that write a lot (BenchmarkFiles): records are
// formatted into pooled blocks of 64 KiB (a quiet job holds none), the time's text is made once
// per second with only its microseconds written per line, and a relay's lines come in batches
// (WriteLines) under one lock.
//
// A file that cannot be written (disk full, directory removed, permissions) is reported through
// Logger, its lines are dropped and counted, and it is tried again at most once a second; a
// current that was removed or renamed away is noticed at the next write and opened anew.
//
// A current that exists is appended to, so a god that re-executed itself (`god upgrade`) or was
// killed goes on with the same file; a last line cut short by a crash is ended first.
type Files struct {
	cfg FilesConfig
	log *slog.Logger

	mu     sync.Mutex
	jobs   map[string]*FileSink
	dirty  []*FileSink // sinks with lines to write, or to close
	closed bool
	last   atomic.Pointer[FileSink] // the sink of the latest Write (nil after Forget or Close)

	kick   chan struct{}      // a sink became dirty: the writer starts its timer
	urgent chan struct{}      // write now: a full buffer, a job that ended
	syncs  chan chan struct{} // Sync: write everything now and say when done
	stop   chan struct{}
	done   chan struct{}
}

// FileSink is one job's log file: its buffer (filled by Write, under mu) and its open current
// (used by the writer goroutine only).
type FileSink struct {
	job, dir, path string

	mu      sync.Mutex
	pend    [][]byte     // records not written yet, whole records in blocks (newBlock), the last one filling
	pendLen int          // bytes in pend
	format  recordFormat // formats the records into pend
	dropped int          // lines dropped since the last write because pend was full
	queued  bool         // in Files.dirty
	forget  bool         // the job is gone: close once written
	setSize int64        // SetLimits: the job's own size and keep; 0 and -1: the Files' own
	setKeep int

	// The writer goroutine's.
	maxSize   int64    // rotate before current would exceed this (setSize, or FilesConfig.Size)
	keep      int      // rotated files kept (setKeep, or FilesConfig.Keep)
	out       [][]byte // the blocks being written; swapped with pend
	f         *os.File
	size      int64
	failing   error     // why the file cannot be written, nil when it can
	lost      int       // lines lost while failing (or dropped), reported on recovery
	retryAt   time.Time // when to try a failing file again
	loggedAt  time.Time // when the failure was last reported
	lastStamp time.Time // of the newest rotated file this god made
}

// NewFiles starts the writer of cfg.Dir. The directory is created (0750) when needed, job
// directories and files as lines come (0750, 0640). Close it to write what is buffered and stop.
func NewFiles(cfg FilesConfig) (*Files, error) {
	if cfg.Dir == "" {
		return nil, errors.New("joblog: log files: no directory")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("joblog: log files: %w", err)
	}
	cfg.Dir = dir
	if cfg.Size <= 0 {
		cfg.Size = DefaultFileSize
	}
	if cfg.Keep < 0 {
		cfg.Keep = DefaultFileKeep
	}
	if cfg.Flush <= 0 {
		cfg.Flush = DefaultFileFlush
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("joblog: log files: %w", err)
	}
	fs := &Files{
		cfg:    cfg,
		log:    cfg.Logger,
		jobs:   make(map[string]*FileSink),
		kick:   make(chan struct{}, 1),
		urgent: make(chan struct{}, 1),
		syncs:  make(chan chan struct{}),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	if fs.log == nil {
		fs.log = slog.Default()
	}
	go fs.loop()
	return fs, nil
}

// Path is the current file of job: where its newest lines are.
func (fs *Files) Path(job string) string {
	return filepath.Join(fs.cfg.Dir, job, fileCurrent)
}

// Write queues l for its job's file. It never waits for the disk. A job name that is not a
// plain file name (godv1 names always are) is not written.
func (fs *Files) Write(l *Line) {
	fs.WriteLines(l.Job, unsafe.Slice(l, 1))
}

// WriteLines is Write for lines of job (their Job is not looked at), under one lock: what a
// relay read at once.
func (fs *Files) WriteLines(job string, lines []Line) {
	if len(lines) == 0 {
		return
	}
	// A flooding job writes batch after batch: its sink is found without fs.mu and the map.
	s := fs.last.Load()
	if s == nil || s.job != job {
		if s = fs.sink(job); s == nil {
			return
		}
		fs.last.Store(s)
	}
	s.mu.Lock()
	if s.forget { // Forget came after the lookup: a job of that name is a new sink
		s.mu.Unlock()
		if s = fs.sink(job); s == nil {
			return
		}
		fs.last.Store(s)
		s.mu.Lock()
	}
	for i := range lines {
		if s.pendLen >= fileMaxPending {
			s.dropped++
		} else {
			s.appendRecord(&lines[i])
		}
	}
	full := s.pendLen >= fileFlushAt
	first := !s.queued
	s.queued = true
	s.mu.Unlock()
	if first {
		fs.mu.Lock()
		fs.dirty = append(fs.dirty, s)
		fs.mu.Unlock()
		signal(fs.kick)
	}
	if full {
		signal(fs.urgent)
	}
}

// appendRecord formats l's record into the last block of s.pend, or into a new block when it
// might not fit: a record is never split between blocks, and a block never grows (a line of up
// to MaxLine escaped fits a block of its own). s.mu is held.
func (s *FileSink) appendRecord(l *Line) {
	// The most a record takes: time, fields (stream, two ints), the text escaped (a byte
	// becomes at most 4: \x1b), newline.
	most := len(lineTimeFormat) + len(l.Stream) + 2*len(" pid=-9223372036854775808") + 2 + 4*len(l.Text()) + 1
	n := len(s.pend)
	if n == 0 || cap(s.pend[n-1])-len(s.pend[n-1]) < most {
		s.pend = append(s.pend, newBlock(most))
		n++
	}
	b := s.pend[n-1]
	k := len(b)
	s.pend[n-1] = s.format.append(b, l)
	s.pendLen += len(s.pend[n-1]) - k
}

// blocks is the pool of fileBlock-sized blocks that records are formatted into: a flood of lines
// cycles through a few of them, and a quiet job holds none once its lines are written.
var blocks = sync.Pool{New: func() any { return new([fileBlock]byte) }}

// newBlock returns an empty block with room for at least most bytes.
func newBlock(most int) []byte {
	if most > fileBlock {
		return make([]byte, 0, most)
	}
	return blocks.Get().(*[fileBlock]byte)[:0]
}

// freeBlock gives a block that was written back to the pool.
func freeBlock(b []byte) {
	if cap(b) == fileBlock {
		blocks.Put((*[fileBlock]byte)(b[:fileBlock]))
	}
}

// Note writes a record of god's own about job to its file (stream god): started, exited with
// its status, reload steps, failures, so that the file tells why its lines stop and start.
// args are slog's key-value pairs; "pid" and "gen" fill the record's fields, the others follow
// the message as key=value. Levels below Info are left out.
func (fs *Files) Note(job string, t time.Time, level slog.Level, msg string, args ...any) {
	if level < slog.LevelInfo {
		return
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.Add(args...)
	l := Line{Time: t, Job: job, Stream: StreamGod}
	b := []byte(msg)
	if level != slog.LevelInfo {
		b = append(append(b, " level="...), level.String()...)
	}
	r.Attrs(func(a slog.Attr) bool {
		v := a.Value.Resolve()
		switch {
		case a.Key == "pid" && v.Kind() == slog.KindInt64:
			l.Pid = int(v.Int64())
		case a.Key == "gen" && v.Kind() == slog.KindInt64:
			l.Generation = int(v.Int64())
		default:
			b = append(append(append(b, ' '), a.Key...), '=')
			s := v.String()
			if s == "" || strings.ContainsAny(s, " \"=") {
				b = strconv.AppendQuote(b, s)
			} else {
				b = append(b, s...)
			}
		}
		return true
	})
	l.Msg = string(b)
	fs.Write(&l)
}

// SetLimits gives job a rotation size and a count of rotated files of its own (the job
// properties log-size and log-keep); size <= 0 and keep < 0 take the Files' own. They apply
// from the next write on: a current already larger is rotated then.
func (fs *Files) SetLimits(job string, size int64, keep int) {
	s := fs.sink(job)
	if s == nil {
		return
	}
	s.mu.Lock()
	s.setSize, s.setKeep = size, keep
	s.mu.Unlock()
}

// signal wakes the writer without waiting: one pending wake-up is enough.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sink returns job's FileSink, made on its first line; nil for a name that is not a file name
// or after Close.
func (fs *Files) sink(job string) *FileSink {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.closed {
		return nil
	}
	if s := fs.jobs[job]; s != nil {
		return s
	}
	if !validFileName(job) {
		return nil
	}
	dir := filepath.Join(fs.cfg.Dir, job)
	s := &FileSink{job: job, dir: dir, path: filepath.Join(dir, fileCurrent), setKeep: -1}
	fs.jobs[job] = s
	return s
}

// validFileName guards the directory layout against a name that is not godv1's (the loader
// checks job names; this is a second line of defence, not the rule).
func validFileName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= 255 && !strings.ContainsAny(s, "/\x00")
}

// WriteNow asks the writer to write what is buffered without waiting for its timer, and returns
// at once: a relay's lines, and the last lines of a job that ended, are on disk promptly.
func (fs *Files) WriteNow() { signal(fs.urgent) }

// Sync writes everything buffered and returns when it is written, or after timeout (a disk
// that hangs must not hang god): before god re-executes itself.
func (fs *Files) Sync(timeout time.Duration) {
	done := make(chan struct{})
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case fs.syncs <- done:
	case <-fs.done:
		return
	case <-t.C:
		return
	}
	select {
	case <-done:
	case <-t.C:
	}
}

// Forget closes job's file once its buffered lines are written: the job was removed.
func (fs *Files) Forget(job string) {
	fs.mu.Lock()
	s := fs.jobs[job]
	delete(fs.jobs, job)
	fs.mu.Unlock()
	if s == nil {
		return
	}
	fs.last.CompareAndSwap(s, nil)
	s.mu.Lock()
	s.forget = true
	first := !s.queued
	s.queued = true
	s.mu.Unlock()
	if first {
		fs.mu.Lock()
		fs.dirty = append(fs.dirty, s)
		fs.mu.Unlock()
	}
	signal(fs.urgent)
}

// fileCloseWait bounds Close: a disk that hangs must not keep god from exiting.
const fileCloseWait = 10 * time.Second

// Close writes what is buffered, closes every file and stops the writer. Lines written after
// Close are dropped. When the writer is stuck in a write for fileCloseWait, Close gives up on
// it and says so.
func (fs *Files) Close() error {
	fs.mu.Lock()
	if !fs.closed {
		fs.closed = true
		fs.last.Store(nil)
		close(fs.stop)
	}
	fs.mu.Unlock()
	t := time.NewTimer(fileCloseWait)
	defer t.Stop()
	select {
	case <-fs.done:
		return nil
	case <-t.C:
		return fmt.Errorf("joblog: log files in %s: a write has not returned in %s; lines still buffered are lost", fs.cfg.Dir, fileCloseWait)
	}
}

// loop is the writer goroutine: it sleeps until a line comes, waits up to Flush for more (or
// less when asked), and writes every dirty sink.
func (fs *Files) loop() {
	defer close(fs.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	for {
		var reply chan struct{}
		select {
		case <-fs.kick:
			if !armed {
				timer.Reset(fs.cfg.Flush)
				armed = true
			}
			continue
		case <-timer.C:
			armed = false
		case <-fs.urgent:
		case reply = <-fs.syncs:
		case <-fs.stop:
			fs.writeDirty()
			fs.mu.Lock()
			all := make([]*FileSink, 0, len(fs.jobs))
			for _, s := range fs.jobs {
				all = append(all, s)
			}
			fs.mu.Unlock()
			for _, s := range all {
				s.closeFile()
			}
			return
		}
		fs.writeDirty()
		if reply != nil {
			close(reply)
		}
	}
}

// writeDirty writes the lines of every sink that has some.
func (fs *Files) writeDirty() {
	fs.mu.Lock()
	list := fs.dirty
	fs.dirty = nil
	fs.mu.Unlock()
	now := time.Now()
	for _, s := range list {
		s.mu.Lock()
		s.out, s.pend = s.pend, s.out[:0]
		s.pendLen = 0
		dropped, forget := s.dropped, s.forget
		s.dropped, s.queued = 0, false
		s.maxSize, s.keep = fs.cfg.Size, fs.cfg.Keep
		if s.setSize > 0 {
			s.maxSize = s.setSize
		}
		if s.setKeep >= 0 {
			s.keep = s.setKeep
		}
		s.mu.Unlock()
		if dropped > 0 {
			if s.failing == nil {
				s.out = append(s.out, appendGodRecord(nil, now, fmt.Sprintf("%d lines dropped: the disk did not keep up", dropped)))
			} else {
				s.lost += dropped
			}
		}
		for i, b := range s.out {
			fs.write(s, b, now)
			freeBlock(b)
			s.out[i] = nil
		}
		s.out = s.out[:0]
		if forget {
			s.closeFile()
		}
	}
}

// write puts records (whole lines) into s's current, rotating it where a line would make it
// exceed Size; a line is never split between two files. A failure drops the records, counted.
func (fs *Files) write(s *FileSink, recs []byte, now time.Time) {
	if len(recs) == 0 {
		return
	}
	if err := fs.ready(s, now); err != nil {
		s.lost += bytes.Count(recs, []byte{'\n'})
		return
	}
	max := s.maxSize
	for len(recs) > 0 {
		n := len(recs)
		if int64(n) > max-s.size {
			// Write the lines that fit; a line longer than Size goes alone into a fresh file.
			room := max - s.size
			n = 0
			if room > 0 {
				n = bytes.LastIndexByte(recs[:room], '\n') + 1
			}
			if n == 0 {
				if s.size > 0 {
					if err := fs.rotate(s); err != nil {
						fs.fail(s, err, now)
						s.lost += bytes.Count(recs, []byte{'\n'})
						return
					}
					continue
				}
				n = bytes.IndexByte(recs, '\n') + 1
				if n == 0 {
					n = len(recs)
				}
			}
		}
		w, err := s.f.Write(recs[:n])
		s.size += int64(w)
		if err != nil {
			fs.fail(s, fmt.Errorf("write: %w", err), now)
			s.lost += bytes.Count(recs[w:], []byte{'\n'})
			return
		}
		recs = recs[n:]
	}
}

// ready makes sure s has its current open: it reopens one that was removed, and one that failed
// once its retry time came. After a failure it notes in the file how many lines were lost.
func (fs *Files) ready(s *FileSink, now time.Time) error {
	if s.f != nil {
		var st unix.Stat_t
		if err := unix.Fstat(int(s.f.Fd()), &st); err == nil && st.Nlink > 0 {
			s.size = st.Size // someone may have truncated it (copytruncate)
			return nil
		}
		// Removed (or its directory was): lines written on would vanish with it.
		s.closeFile()
	}
	if s.failing != nil && now.Before(s.retryAt) {
		return s.failing
	}
	if err := s.open(); err != nil {
		fs.fail(s, err, now)
		return err
	}
	if s.failing != nil || s.lost > 0 {
		msg := fmt.Sprintf("%d lines lost", s.lost)
		if s.failing != nil {
			msg += " while the file could not be written: " + s.failing.Error()
			fs.log.Info("log file: writing again", "job", s.job, "path", s.path, "lines_lost", s.lost)
		}
		rec := appendGodRecord(nil, now, msg)
		if w, err := s.f.Write(rec); err != nil {
			s.size += int64(w)
			fs.fail(s, fmt.Errorf("write: %w", err), now)
			return err
		}
		s.size += int64(len(rec))
		s.failing, s.lost = nil, 0
	}
	return nil
}

// open opens (creating) s's current for appending, and ends a last line that a crash cut short.
func (s *FileSink) open() error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return err
	}
	f, err := os.OpenFile(s.path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	s.f, s.size = f, fi.Size()
	if s.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, s.size-1); err == nil && last[0] != '\n' {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				s.closeFile()
				return err
			}
			s.size++
		}
	}
	return nil
}

// closeFile closes s's current, if open.
func (s *FileSink) closeFile() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
}

// rotate renames current to @TIMESTAMP.log (UTC, to the microsecond, so names sort by age),
// opens a new current and removes the oldest rotated files beyond Keep.
func (fs *Files) rotate(s *FileSink) error {
	s.closeFile()
	// Names must sort in the order of rotation, or prune removes a newer file: never a stamp at
	// or before the last one (several rotations in one batch, a clock stepped back).
	t := time.Now().UTC().Truncate(time.Microsecond)
	if !t.After(s.lastStamp) {
		t = s.lastStamp.Add(time.Microsecond)
	}
	var old string
	for {
		old = filepath.Join(s.dir, "@"+t.Format(fileStampFormat)+".log")
		if _, err := os.Lstat(old); errors.Is(err, os.ErrNotExist) {
			break
		}
		t = t.Add(time.Microsecond) // rotated twice within a microsecond: keep both, in order
	}
	if err := os.Rename(s.path, old); err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	s.lastStamp = t
	if err := s.open(); err != nil {
		return err
	}
	return fs.prune(s)
}

// prune removes the oldest rotated files of s beyond Keep.
func (fs *Files) prune(s *FileSink) error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("rotate: %w", err)
	}
	var old []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, "@") && strings.HasSuffix(n, ".log") {
			old = append(old, n)
		}
	}
	slices.Sort(old)
	for len(old) > s.keep {
		if err := os.Remove(filepath.Join(s.dir, old[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("rotate: %w", err)
		}
		old = old[1:]
	}
	return nil
}

// fail marks s failing: its file is closed, tried again after fileRetry, and the failure is
// reported (once a minute at most).
func (fs *Files) fail(s *FileSink, err error, now time.Time) {
	s.closeFile()
	if s.failing == nil || now.Sub(s.loggedAt) >= fileErrorInterval {
		fs.log.Error("log file: cannot write; the job's lines go on to god's log and god logs",
			"job", s.job, "path", s.path, "err", err)
		s.loggedAt = now
	}
	s.failing = err
	s.retryAt = now.Add(fileRetry)
}

// AppendRecord appends the record of l as the log files hold it, one line:
//
//	2026-12-07T14:39:25.123456Z stdout pid=4242 gen=3 the line as the job wrote it
//
// The time (UTC, microseconds) is when god read the line; the stream is stdout or stderr (god
// for god's own notes); then the process and its job's generation. The line is Clean: control
// characters are escaped, so one record is always one line.
func AppendRecord(dst []byte, l *Line) []byte {
	dst = l.Time.UTC().AppendFormat(dst, lineTimeFormat)
	dst = appendFields(dst, l)
	dst = AppendClean(dst, l.Text())
	return append(dst, '\n')
}

// appendFields appends what a record has between its time and its text: " STREAM pid=PID
// gen=GEN ".
func appendFields(dst []byte, l *Line) []byte {
	dst = append(dst, ' ')
	dst = append(dst, l.Stream...)
	dst = append(dst, " pid="...)
	dst = strconv.AppendInt(dst, int64(l.Pid), 10)
	dst = append(dst, " gen="...)
	dst = strconv.AppendInt(dst, int64(l.Generation), 10)
	return append(dst, ' ')
}

// recordFormat appends the same bytes as AppendRecord, faster for a run of records of one job:
// it keeps the record's start (time, stream, pid, generation) and copies it whole while it
// holds. The time's text is made once per second and only its microseconds are written anew
// when they change (a flooding job's lines share their second, and those of one read their
// time); the fields are made again only when stream, pid or generation change. The zero value
// is ready. It is not safe for concurrent use: each FileSink has its own, under its mu.
type recordFormat struct {
	prefix []byte // "TIME STREAM pid=PID gen=GEN " for the values below; nil before the first
	sec    int64  // the second of the time in prefix
	usec   int    // its microseconds
	stream string
	pid    int
	gen    int
}

// stampMicros is where the microseconds start in a time formatted as lineTimeFormat.
const stampMicros = len("2006-01-02T15:04:05.")

func (rf *recordFormat) append(dst []byte, l *Line) []byte {
	sec, usec := l.Time.Unix(), l.Time.Nanosecond()/1000
	switch {
	case rf.prefix == nil || sec != rf.sec || l.Stream != rf.stream || l.Pid != rf.pid || l.Generation != rf.gen:
		p := l.Time.UTC().AppendFormat(rf.prefix[:0], lineTimeFormat)
		if len(p) != len(lineTimeFormat) { // a year outside 0000-9999: not a layout to patch
			rf.prefix = nil
			return AppendRecord(dst, l)
		}
		rf.prefix = appendFields(p, l)
		rf.sec, rf.usec, rf.stream, rf.pid, rf.gen = sec, usec, l.Stream, l.Pid, l.Generation
	case usec != rf.usec:
		u := usec
		for i := stampMicros + 5; i >= stampMicros; i-- {
			rf.prefix[i] = byte('0' + u%10)
			u /= 10
		}
		rf.usec = usec
	}
	dst = append(dst, rf.prefix...)
	dst = AppendClean(dst, l.Text())
	return append(dst, '\n')
}

// appendGodRecord appends a record of god's own about the file (lines lost).
func appendGodRecord(dst []byte, now time.Time, msg string) []byte {
	return AppendRecord(dst, &Line{Time: now, Stream: StreamGod, Msg: msg})
}
