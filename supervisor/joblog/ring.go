package joblog

import "unsafe"

// RingBytes bounds the memory of one job's ring besides its line count: a job that writes long
// lines (a 64 KiB line is a few hundred KiB of memory by the time it is a Line, its attributes
// parsed) would otherwise keep up to --log-lines of them, hundreds of MiB for one chatty job.
// The newest line is always kept.
const RingBytes = 1 << 20

// ring keeps the last lines of one job: at most max lines and about RingBytes of them. It
// grows by append up to its bound, so that a job that writes little costs little, and then
// reuses its slots as a circular buffer, dropping the oldest lines. It is not safe for
// concurrent use: the Hub's lock guards it.
type ring struct {
	lines    []Line
	head     int // index of the oldest line
	n        int // lines kept
	max      int
	bytes    int // lineBytes of the lines kept
	maxBytes int
}

// newRing exists so the bound is set once, at the job's first line.
func newRing(max int) *ring {
	return &ring{max: max, maxBytes: RingBytes}
}

// lineBytes is what a line costs to keep, roughly: its strings and attributes.
func lineBytes(l Line) int {
	n := int(unsafe.Sizeof(l)) + len(l.Msg) + len(l.Job) + len(l.Stream)
	for _, a := range l.Attrs {
		n += int(unsafe.Sizeof(a)) + len(a.Key) + len(a.Value.String())
	}
	return n
}

// add keeps l, dropping the oldest lines while the ring is over a bound.
func (r *ring) add(l Line) {
	size := lineBytes(l)
	for r.n > 0 && (r.n >= r.max || r.bytes+size > r.maxBytes) {
		r.dropOldest()
	}
	if r.n == 0 {
		r.head = 0
	}
	if r.n == len(r.lines) { // every slot holds a line (and r.n < r.max): grow, oldest first
		if r.head != 0 {
			r.lines = append(r.lines[r.head:len(r.lines):len(r.lines)], r.lines[:r.head]...)
			r.head = 0
		}
		r.lines = append(r.lines, l)
	} else {
		r.lines[(r.head+r.n)%len(r.lines)] = l
	}
	r.n++
	r.bytes += size
}

// dropOldest forgets the oldest line (its slot is cleared so its strings can be collected).
func (r *ring) dropOldest() {
	r.bytes -= lineBytes(r.lines[r.head])
	r.lines[r.head] = Line{}
	r.head = (r.head + 1) % len(r.lines)
	r.n--
}

// at returns the i-th oldest line kept.
func (r *ring) at(i int) Line { return r.lines[(r.head+i)%len(r.lines)] }

// appendLast appends the last n lines (all when n <= 0 or n exceeds what is
// kept) to dst, oldest first.
func (r *ring) appendLast(dst []Line, n int) []Line {
	if n <= 0 || n > r.n {
		n = r.n
	}
	for i := r.n - n; i < r.n; i++ {
		dst = append(dst, r.at(i))
	}
	return dst
}
