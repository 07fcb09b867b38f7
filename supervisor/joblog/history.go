package joblog

import (
	"iter"
	"time"
)

// HistoryQuery says which past lines History gives.
type HistoryQuery struct {
	Jobs   []string                // the jobs, each once (the caller expands "every job")
	Since  time.Time               // lines read at or after this; zero: everything kept
	Stream string                  // StreamStdout or StreamStderr; "": both
	Format func(job string) Format // how to parse a job's records from its file (its log property); nil: text
}

// History yields the past lines of q.Jobs read at or after q.Since, merged by time, oldest
// first: for each job what only its log files still hold, then its ring.
//
// The files and the ring hold the same lines (the ring the newest of them), so a job's lines
// are taken from its files up to the oldest line its ring keeps and from the ring from there
// on. Records carry the time to the microsecond: of the records stamped with the same
// microsecond as the ring's oldest line, the ring holds the last ones (as many as it has lines
// of that microsecond), the files give the others. Lines the ring keeps that are not on disk yet
// (the writer waits up to 0.2 s) thus come from the ring, and none comes twice. god's own
// records in the files (stream god) are not job output and are left out.
//
// Without log files (SetFiles) History is the ring alone. An error reading a job's files is
// yielded once, and that job goes on with its ring.
func (h *Hub) History(q HistoryQuery) iter.Seq2[Line, error] {
	seqs := make([]iter.Seq2[Line, error], 0, len(q.Jobs))
	for _, job := range q.Jobs {
		f := FormatText
		if q.Format != nil {
			f = q.Format(job)
		}
		seqs = append(seqs, h.jobHistory(job, q, f))
	}
	if len(seqs) == 1 {
		return seqs[0]
	}
	return mergeByTime(seqs)
}

// keeps reports whether l is asked for by q: its stream and its time.
func (q *HistoryQuery) keeps(l *Line) bool {
	return (q.Stream == "" || l.Stream == q.Stream) && !l.Time.Before(q.Since)
}

// jobHistory is History for one job: its files up to its ring's oldest line, then its ring. The
// ring is copied when the sequence starts.
func (h *Hub) jobHistory(job string, q HistoryQuery, format Format) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		var ring []Line
		for _, l := range h.Tail([]string{job}, 0) {
			if l.Stream != StreamGod {
				ring = append(ring, l)
			}
		}
		if h.files != nil {
			var t0 time.Time
			inRing := 0 // ring lines stamped t0
			if len(ring) > 0 {
				t0 = ring[0].Time.Truncate(time.Microsecond)
				for _, l := range ring {
					if !l.Time.Truncate(time.Microsecond).Equal(t0) {
						break
					}
					inRing++
				}
			}
			var atT0 []Line // file records stamped t0, in file order
			for l, err := range ReadRecords(h.files.Dir(), job, q.Since) {
				if err != nil {
					if !yield(Line{}, err) {
						return
					}
					break
				}
				if l.Stream == StreamGod {
					continue
				}
				if len(ring) > 0 {
					if l.Time.After(t0) {
						continue // the ring has it
					}
					if l.Time.Equal(t0) {
						atT0 = append(atT0, l)
						continue
					}
				}
				if q.keeps(&l) && !yield(parseRecordText(l, format), nil) {
					return
				}
			}
			if n := len(atT0) - inRing; n > 0 {
				for _, l := range atT0[:n] {
					if q.keeps(&l) && !yield(parseRecordText(l, format), nil) {
						return
					}
				}
			}
		}
		for _, l := range ring {
			if q.keeps(&l) && !yield(l, nil) {
				return
			}
		}
	}
}

// parseRecordText fills Level, Msg and Attrs of a record read back from a file, as the relay
// did when the line came.
func parseRecordText(l Line, format Format) Line {
	l.Level, l.OwnLevel, l.Msg, l.Attrs = parseOwn(format, l.Msg)
	return l
}

// mergeByTime merges sequences that are each in time order into one, oldest first; of lines with
// the same time the earlier sequence's comes first. An error is passed on as it comes.
func mergeByTime(seqs []iter.Seq2[Line, error]) iter.Seq2[Line, error] {
	return func(yield func(Line, error) bool) {
		type head struct {
			next func() (Line, error, bool)
			l    Line
			ok   bool
		}
		heads := make([]head, len(seqs))
		for i, s := range seqs {
			next, stop := iter.Pull2(s)
			defer stop()
			heads[i].next = next
		}
		// pull moves heads[i] to its next line, passing errors on; false when the caller stopped.
		pull := func(i int) bool {
			for {
				l, err, ok := heads[i].next()
				if !ok {
					heads[i].ok = false
					return true
				}
				if err != nil {
					if !yield(Line{}, err) {
						return false
					}
					continue
				}
				heads[i].l, heads[i].ok = l, true
				return true
			}
		}
		for i := range heads {
			if !pull(i) {
				return
			}
		}
		for {
			best := -1
			for i := range heads {
				if heads[i].ok && (best < 0 || heads[i].l.Time.Before(heads[best].l.Time)) {
					best = i
				}
			}
			if best < 0 {
				return
			}
			if !yield(heads[best].l, nil) || !pull(best) {
				return
			}
		}
	}
}
