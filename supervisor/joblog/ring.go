package joblog

// ring keeps the last cap lines of one job. It grows by append up to its
// bound, so that a job that writes little costs little, and then overwrites
// the oldest line. It is not safe for concurrent use: the Hub's lock guards it.
type ring struct {
	lines []Line
	next  int // index of the oldest line once full
	max   int
}

// newRing exists so the bound is set once, at the job's first line.
func newRing(max int) *ring {
	return &ring{max: max}
}

// add keeps l, dropping the oldest line when the ring is full.
func (r *ring) add(l Line) {
	if len(r.lines) < r.max {
		r.lines = append(r.lines, l)
		return
	}
	r.lines[r.next] = l
	r.next++
	if r.next == r.max {
		r.next = 0
	}
}

// appendLast appends the last n lines (all when n <= 0 or n exceeds what is
// kept) to dst, oldest first.
func (r *ring) appendLast(dst []Line, n int) []Line {
	if n <= 0 || n > len(r.lines) {
		n = len(r.lines)
	}
	// Lines in age order are lines[next:] then lines[:next].
	skip := len(r.lines) - n
	older, newer := r.lines[r.next:], r.lines[:r.next]
	if skip < len(older) {
		dst = append(dst, older[skip:]...)
		skip = 0
	} else {
		skip -= len(older)
	}
	return append(dst, newer[skip:]...)
}
