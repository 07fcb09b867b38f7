package joblog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// ErrMuxClosed is the end of a pipe that was still registered when its Mux
// closed (its unfinished line is dropped), and the error of Add after Close.
var ErrMuxClosed = errors.New("joblog: relay mux closed")

// muxBufSize is the one read buffer a Mux shares among its pipes, and the most
// it reads from one pipe per round: a pipe's kernel buffer (64 KiB by
// default) in one read, and no more, so that a flooding job cannot keep the
// others waiting.
const muxBufSize = 64 << 10

// muxEvents is how many ready pipes one epoll_wait returns at most. More wait
// for the next round: level-triggered epoll moves a pipe that stays readable
// to the back of its ready list, so every pipe gets its turn.
const muxEvents = 256

// wakeID is the epoll key of the Mux's eventfd; pipes get keys from 1.
const wakeID = 0

// Pipe is one output pipe of a job, as a Mux relays it.
type Pipe struct {
	// Fd is the pipe's read end. Add takes it over: the Mux closes it, once, when the
	// pipe ends, when the Mux closes, or when Add fails (adding an fd the Mux already
	// relays is such a failure: the caller gave away what it did not own). Pause hands it
	// back open.
	Fd     int
	Meta   Line   // Job, Generation, Pid and Stream of every line
	Format Format // how lines are parsed
	// Rest and Cut are the unfinished line (see Splitter.Rest): on Add, the start of a line a
	// paused relay left (its bytes come first); from Pause, where this relay stopped.
	Rest []byte
	Cut  bool
	// Deliver gets each line, on the Mux's goroutine, one at a time.
	Deliver func(Line)
	// DeliverLines, when not nil, is used instead of Deliver: it gets the lines of each read
	// at once, as a batch Splitter hands them (see NewBatchSplitter).
	DeliverLines func([]Line)
	// Done, when not nil, is called once on the Mux's goroutine when the pipe ended: nil at end
	// of file (every writer closed it), the read error, or ErrMuxClosed. Every line of the
	// pipe was delivered, and flushed, before. It is not called for a pipe that Pause handed
	// back.
	//
	// Deliver and Done may call Add but not Pause or Close, which wait for the Mux's goroutine.
	Done func(error)
}

// Mux relays the output of many pipes with one goroutine: the kernel (an epoll
// set, level-triggered) says which pipes are readable; one buffer serves every
// read; each pipe keeps only its unfinished line (Splitter). Where a relay per
// pipe costs a goroutine and a buffer per pipe, a thousand idle jobs cost a
// Mux a thousand small records.
//
// Each round, the Mux reads every ready pipe once (at most muxBufSize bytes,
// a second read only to see the end of a pipe no one writes to any more),
// delivers the lines, then calls flush once: the moment for a sink that holds
// lines (Hub.AddHeld) to write them out, a few writes per round rather than
// one per line. Then it reports the pipes that ended (Done) and serves Pause
// and Close.
//
// A Mux is safe for concurrent use.
type Mux struct {
	epfd   int
	wakefd int // an eventfd: Pause and Close wake the loop through it
	flush  func()

	// Owned by the loop goroutine.
	buf    []byte
	batch  []Line // the batch Splitters' lines, lent to one at a time; after a flood it keeps room for up to maxBatchKept (1.6 MB for a read of seq's lines)
	events []unix.EpollEvent
	ready  []readyPipe

	mu      sync.Mutex
	pipes   map[int32]*muxPipe // registered, by epoll key
	lastID  int32
	pauses  []chan []Pipe // Pause calls waiting for the loop
	closing bool          // set by Close or a failed epoll_wait; epfd and wakefd stay open until the loop ends, under mu
	ended   chan struct{} // closed when the loop returned
}

// muxPipe is a registered pipe: its description and where its unfinished line stands.
type muxPipe struct {
	Pipe
	id    int32
	split *Splitter
}

// readyPipe is a pipe epoll reported, with the events it reported.
type readyPipe struct {
	p      *muxPipe
	events uint32
}

// endedPipe is a pipe that reached its end in this round, reported after the flush.
type endedPipe struct {
	p   *muxPipe
	err error
}

// NewMux starts a Mux. flush, when not nil, is called on the Mux's goroutine
// after each round that delivered lines. Close it to stop its goroutine and
// close its pipes.
func NewMux(flush func()) (*Mux, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("joblog: relay mux: epoll_create1: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("joblog: relay mux: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: wakeID}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return nil, fmt.Errorf("joblog: relay mux: epoll_ctl eventfd: %w", err)
	}
	m := &Mux{
		epfd:   epfd,
		wakefd: wakefd,
		flush:  flush,
		buf:    make([]byte, muxBufSize),
		events: make([]unix.EpollEvent, muxEvents),
		pipes:  make(map[int32]*muxPipe),
		ended:  make(chan struct{}),
	}
	go m.loop()
	return m, nil
}

// Add relays p until it ends, is paused or the Mux closes. It takes p.Fd over
// (and closes it if it fails) and switches it to non-blocking mode; p.Rest is
// copied. Lines already in the pipe are read in the next round.
func (m *Mux) Add(p Pipe) error {
	if p.Deliver == nil {
		p.Deliver = func(Line) {}
	}
	mp := &muxPipe{Pipe: p}
	if p.DeliverLines != nil {
		mp.split = NewBatchSplitter(p.Meta, p.Format, p.DeliverLines)
		mp.split.lines = &m.batch // only the loop feeds the Splitters, one at a time
	} else {
		mp.split = NewSplitter(p.Meta, p.Format, p.Deliver)
	}
	mp.split.Carry(p.Rest, p.Cut)
	mp.Rest, mp.Cut = nil, false
	if err := unix.SetNonblock(p.Fd, true); err != nil {
		unix.Close(p.Fd)
		return mp.errorf("non-blocking: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		unix.Close(p.Fd)
		return mp.errorf("%w", ErrMuxClosed)
	}
	mp.id = m.newIDLocked()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: mp.id}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_ADD, p.Fd, &ev); err != nil {
		unix.Close(p.Fd)
		return mp.errorf("epoll_ctl: %w", err)
	}
	m.pipes[mp.id] = mp
	return nil
}

// newIDLocked returns an epoll key no registered pipe has. Keys are not fd numbers: an fd
// closed and reused while its event is on its way cannot be mistaken for the new pipe.
func (m *Mux) newIDLocked() int32 {
	for {
		m.lastID++
		if m.lastID <= wakeID {
			m.lastID = wakeID + 1
		}
		if m.pipes[m.lastID] == nil {
			return m.lastID
		}
	}
}

// Pause stops relaying every pipe at a line boundary (between two rounds, the
// lines read so far delivered and flushed) and hands them back: Fd still open
// and now the caller's, Rest and Cut the unfinished line, in the order they
// were added. Relaying goes on by passing them to Add, of this Mux or of
// another, without losing or repeating a byte. Pipes added after Pause are
// relayed as usual. On a closed Mux, Pause returns nil.
func (m *Mux) Pause() []Pipe {
	reply := make(chan []Pipe, 1)
	m.mu.Lock()
	if m.closing {
		m.mu.Unlock()
		return nil
	}
	m.pauses = append(m.pauses, reply)
	m.wakeLocked()
	m.mu.Unlock()
	return <-reply
}

// Close stops the Mux: pipes still registered are closed, their unfinished
// lines dropped and their Done called with ErrMuxClosed. It waits for the
// Mux's goroutine to return; Add fails from then on. Pause first to keep the
// pipes. Close is idempotent.
func (m *Mux) Close() error {
	m.mu.Lock()
	if !m.closing {
		m.closing = true
		m.wakeLocked()
	}
	m.mu.Unlock()
	<-m.ended
	return nil
}

// wakeLocked makes the loop's epoll_wait return. m.mu is held and closing was false when it
// was taken, so wakefd is open.
func (m *Mux) wakeLocked() {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	// EAGAIN would mean the counter is full: the loop is woken already.
	_, _ = unix.Write(m.wakefd, one[:])
}

// loop is the Mux's goroutine: rounds of epoll_wait, reads, one flush, Done, Pause and Close.
func (m *Mux) loop() {
	defer close(m.ended)
	var ended []endedPipe
	for {
		n, err := unix.EpollWait(m.epfd, m.events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			m.shutdown(fmt.Errorf("joblog: relay mux: epoll_wait: %w", err))
			return
		}
		woken := m.lookup(m.events[:n])
		lines := 0
		for _, r := range m.ready {
			k, end, err := m.read(r.p, r.events)
			lines += k
			if end {
				m.remove(r.p)
				ended = append(ended, endedPipe{r.p, err})
			}
		}
		clear(m.ready)
		m.ready = m.ready[:0]
		if lines > 0 && m.flush != nil {
			m.flush()
		}
		for _, e := range ended {
			if e.p.Done != nil {
				e.p.Done(e.err)
			}
		}
		clear(ended)
		ended = ended[:0]
		if woken && m.serve() {
			return
		}
	}
}

// lookup turns the events of one epoll_wait into m.ready and reports whether the eventfd
// was among them. Only the loop removes pipes, so those it finds stay registered while it
// reads them.
func (m *Mux) lookup(events []unix.EpollEvent) (woken bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range events {
		if ev.Fd == wakeID {
			woken = true
			continue
		}
		if p := m.pipes[ev.Fd]; p != nil {
			m.ready = append(m.ready, readyPipe{p, ev.Events})
		}
	}
	return woken
}

// read reads what p holds, up to one buffer: one read, and a second only when the kernel
// said no one writes to the pipe any more (EPOLLHUP), to see its end. A pipe with more left
// is reported again next round. It returns the lines delivered and whether p ended (with
// the error, nil at end of file), its last line delivered.
func (m *Mux) read(p *muxPipe, events uint32) (lines int, end bool, err error) {
	budget := len(m.buf)
	for budget > 0 {
		n, err := unix.Read(p.Fd, m.buf[:budget])
		now := time.Now()
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return lines, false, nil
		case err != nil:
			return lines + p.split.End(now), true, p.errorf("%w", err)
		case n == 0:
			return lines + p.split.End(now), true, nil
		}
		lines += p.split.Feed(m.buf[:n], now)
		budget -= n
		if events&(unix.EPOLLHUP|unix.EPOLLERR) == 0 {
			break
		}
	}
	return lines, false, nil
}

// remove deregisters p and closes its fd: p ended.
func (m *Mux) remove(p *muxPipe) {
	m.mu.Lock()
	delete(m.pipes, p.id)
	_ = unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, p.Fd, nil)
	m.mu.Unlock()
	unix.Close(p.Fd)
}

// serve answers Pause calls and, when the Mux is closing, shuts it down; it reports whether
// the loop must return. It runs between rounds: no read is half done.
func (m *Mux) serve() (stop bool) {
	var one [8]byte
	_, _ = unix.Read(m.wakefd, one[:]) // reset the eventfd: every request is served below
	m.mu.Lock()
	pauses, closing := m.pauses, m.closing
	m.pauses = nil
	m.mu.Unlock()
	for _, reply := range pauses {
		reply <- m.pauseAll()
	}
	if closing {
		m.shutdown(ErrMuxClosed)
	}
	return closing
}

// pauseAll deregisters every pipe and returns them, open, with their unfinished lines.
func (m *Mux) pauseAll() []Pipe {
	m.mu.Lock()
	list := make([]*muxPipe, 0, len(m.pipes))
	for id, p := range m.pipes {
		list = append(list, p)
		_ = unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, p.Fd, nil)
		delete(m.pipes, id)
	}
	m.mu.Unlock()
	// Keys grow with each Add, but wrap: order by when the pipe was added, as far as we know.
	slices.SortFunc(list, func(a, b *muxPipe) int { return int(a.id) - int(b.id) })
	out := make([]Pipe, len(list))
	for i, p := range list {
		out[i] = p.Pipe
		out[i].Rest, out[i].Cut = p.split.Rest()
	}
	return out
}

// shutdown ends the Mux: Pause calls still waiting get their pipes, the other pipes are closed
// and told err, and epfd and wakefd are closed (under mu, which wakers hold).
func (m *Mux) shutdown(err error) {
	m.mu.Lock()
	m.closing = true
	pauses := m.pauses
	m.pauses = nil
	m.mu.Unlock()
	for _, reply := range pauses {
		reply <- m.pauseAll()
	}
	m.mu.Lock()
	list := make([]*muxPipe, 0, len(m.pipes))
	for id, p := range m.pipes {
		list = append(list, p)
		delete(m.pipes, id)
	}
	unix.Close(m.epfd)
	unix.Close(m.wakefd)
	m.mu.Unlock()
	for _, p := range list {
		unix.Close(p.Fd)
		if p.Done != nil {
			if errors.Is(err, ErrMuxClosed) {
				p.Done(p.errorf("%w", err))
			} else {
				p.Done(err)
			}
		}
	}
}

// errorf is an error about p's relay, naming its job, stream and process.
func (p *muxPipe) errorf(format string, args ...any) error {
	return fmt.Errorf("joblog: relay of job %s %s (pid %d): "+format,
		append([]any{p.Meta.Job, p.Meta.Stream, p.Meta.Pid}, args...)...)
}
