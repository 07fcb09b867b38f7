package joblog

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultPerJob is the ring size per job when NewHub is given perJob <= 0.
const DefaultPerJob = 1000

// Hub collects the output lines of all jobs. It keeps the last lines of each
// job in a ring (for `god logs`), writes every line to god's logger as a
// record, and hands new lines to followers (for `god logs -f`).
//
// A Hub is safe for concurrent use. Add never waits for a follower: a
// follower that does not keep up loses lines and is told how many.
type Hub struct {
	logger   *slog.Logger
	handler  slog.Handler     // logger's, looked up once
	buffered *bufferedHandler // handler when it is NewLogger's: AddHeld holds records in it
	perJob   int

	files   *Files   // SetFiles: every line is written to its job's log file too
	journal *Journal // SetJournal: job lines go to the journal instead of the logger

	mu        sync.Mutex
	seq       uint64
	rings     map[string]*ring
	followers []*follower
}

// NewHub returns a Hub that keeps perJob lines per job (DefaultPerJob when
// perJob <= 0) and writes every line to logger; a nil logger writes nothing.
func NewHub(logger *slog.Logger, perJob int) *Hub {
	if perJob <= 0 {
		perJob = DefaultPerJob
	}
	h := &Hub{logger: logger, perJob: perJob, rings: make(map[string]*ring)}
	if logger != nil {
		h.handler = logger.Handler()
		h.buffered, _ = h.handler.(*bufferedHandler)
	}
	return h
}

// Add records one line: it sets l.Seq, keeps l in its job's ring, offers it
// to the followers of its job and writes it to the logger. The logger is
// called outside the Hub's lock, so a slow log sink delays only the caller
// (the job's relay), never Tail or Follow; records of different jobs may thus
// reach the logger slightly out of Seq order.
func (h *Hub) Add(l Line) { h.add(l, false) }

// AddHeld is Add for a caller that adds lines in bursts, a relay reading a job's pipe: when the
// Hub's logger comes from NewLogger, the record may wait in its buffer, so that a burst costs a
// few writes rather than one per line. The caller must call Flush once it has added what it
// had (before it waits for more). With any other logger AddHeld is Add.
func (h *Hub) AddHeld(l Line) { h.add(l, true) }

// AddHeldLines is AddHeld for lines of one job that a relay read at once (a batch Splitter's):
// the Hub's lock is taken once, and of a batch longer than the ring only the lines the ring
// can keep are put in it. The Hub may change the lines (their Seq, Raw); it copies the strings
// of the lines it keeps (ring, followers), so they may be slices of a larger string.
func (h *Hub) AddHeldLines(lines []Line) {
	if len(lines) == 0 {
		return
	}
	job := lines[0].Job
	if h.files != nil && lines[0].Stream != StreamGod {
		h.files.WriteLines(job, lines)
	}
	h.mu.Lock()
	var fols []*follower
	for _, f := range h.followers {
		if f.wants(job) {
			fols = append(fols, f)
		}
	}
	keepFrom := max(0, len(lines)-h.perJob) // older lines would leave the ring in this batch
	r := h.ringLocked(job)
	for i := range lines {
		l := &lines[i]
		l.Raw = "" // the ring and followers show Msg and Attrs; the raw text goes no further
		h.seq++
		l.Seq = h.seq
		if i < keepFrom && len(fols) == 0 {
			continue
		}
		kept := *l
		kept.Msg = strings.Clone(kept.Msg)
		if i >= keepFrom {
			r.add(kept)
		}
		for _, f := range fols {
			f.offer(kept)
		}
	}
	h.mu.Unlock()
	if h.logger == nil {
		return
	}
	// Most batches are of one level: Enabled is asked again only when it changes.
	ctx := context.Background()
	level, enabled := lines[0].Level, h.handler.Enabled(ctx, lines[0].Level)
	for i := range lines {
		if l := &lines[i]; l.Level != level || enabled || h.journal != nil {
			h.emit(l, true)
		}
	}
}

// Flush writes out the records AddHeld left in the logger's buffer (of every caller), and has
// the log files write what the lines added so far left in their buffers: a relay that added
// what it read gets its lines to disk now, as one write per job, not after the files' timer.
func (h *Hub) Flush() error {
	if h.files != nil {
		h.files.WriteNow()
	}
	if h.buffered == nil {
		return nil
	}
	return h.buffered.Flush()
}

// SetFiles makes the Hub write every job line to its job's file in fs too (god --log-dir). Call
// it before the first line.
func (h *Hub) SetFiles(fs *Files) { h.files = fs }

// SetJournal sends every job line to the journal as an entry of its own (JournalEntry) rather
// than through the logger; a line the journal refuses still goes to the logger. Call it before
// the first line.
func (h *Hub) SetJournal(j *Journal) { h.journal = j }

// Files is the log files the Hub writes to, nil when none.
func (h *Hub) Files() *Files { return h.files }

// Ended is told that a pipe of job ended: the job's last lines go to its file without waiting
// for the writer's timer.
func (h *Hub) Ended(job string) {
	if h.files != nil {
		h.files.WriteNow()
	}
}

// Note is a record god logged about job (started, exited...): with log files, it goes into the
// job's file too. args are slog's key-value pairs.
func (h *Hub) Note(job string, level slog.Level, msg string, args ...any) {
	if h.files != nil {
		h.files.Note(job, time.Now(), level, msg, args...)
	}
}

func (h *Hub) add(l Line, held bool) {
	if h.files != nil && l.Stream != StreamGod {
		h.files.Write(&l)
	}
	l.Raw = "" // the ring and followers show Msg and Attrs; the raw text goes no further
	h.mu.Lock()
	l = h.keepLocked(l)
	for _, f := range h.followers {
		if f.wants(l.Job) {
			f.offer(l)
		}
	}
	h.mu.Unlock()
	h.emit(&l, held)
}

// emit writes l to the logger as a record with attrs job, gen, pid, stream
// and then the line's own attrs. It checks Enabled first so that filtered
// lines cost nothing more.
func (h *Hub) emit(l *Line, held bool) {
	if h.logger == nil {
		return
	}
	ctx := context.Background()
	hd := h.handler
	if h.journal != nil && l.Stream != StreamGod {
		if !hd.Enabled(ctx, h.journal.level(l)) {
			return
		}
		if h.journal.Send(l) == nil {
			return
		}
	}
	if !hd.Enabled(ctx, l.Level) {
		return
	}
	r := slog.NewRecord(l.Time, l.Level, l.Msg, 0)
	r.AddAttrs(
		slog.String("job", l.Job),
		slog.Int("gen", l.Generation),
		slog.Int("pid", l.Pid),
		slog.String("stream", l.Stream),
	)
	r.AddAttrs(l.Attrs...)
	// A failing log sink must not stop the job's relay: errors are dropped.
	if held && h.buffered != nil {
		_ = h.buffered.handleHeld(ctx, r)
		return
	}
	_ = hd.Handle(ctx, r)
}

// Tail returns the last n lines of the named jobs (of all jobs when jobs is
// empty) merged in Seq order; n <= 0 returns everything kept. Unknown job
// names are skipped.
func (h *Hub) Tail(jobs []string, n int) []Line {
	h.mu.Lock()
	var out []Line
	if len(jobs) == 0 {
		for _, r := range h.rings {
			out = r.appendLast(out, n)
		}
	} else {
		for i, j := range jobs {
			if r := h.rings[j]; r != nil && !slices.Contains(jobs[:i], j) {
				out = r.appendLast(out, n)
			}
		}
	}
	h.mu.Unlock()
	slices.SortFunc(out, func(a, b Line) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	if n > 0 && len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// Forget drops the ring of a job that was removed, so its lines no longer
// count against memory or show in Tail. Followers stay: a job of the same
// name that comes back is followed again.
func (h *Hub) Forget(job string) {
	h.mu.Lock()
	delete(h.rings, job)
	h.mu.Unlock()
	if h.files != nil {
		h.files.Forget(job)
	}
}

// Restore puts lines back into the rings without logging them again: the recent output a god
// carried across its own re-exec, so `god logs` still shows it. Lines are taken in order.
func (h *Hub) Restore(lines []Line) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range lines {
		h.keepLocked(l)
	}
}

// keepLocked numbers l and puts it in its job's ring; h.mu is held.
func (h *Hub) keepLocked(l Line) Line {
	h.seq++
	l.Seq = h.seq
	h.ringLocked(l.Job).add(l)
	return l
}

// ringLocked is job's ring, made at its first line; h.mu is held.
func (h *Hub) ringLocked(job string) *ring {
	r := h.rings[job]
	if r == nil {
		r = newRing(h.perJob)
		h.rings[job] = r
	}
	return r
}
