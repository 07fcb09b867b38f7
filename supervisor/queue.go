package supervisor

import "sync"

// queue is an unbounded channel: push never blocks, so a job goroutine never waits on the
// supervisor's loop while the loop may be sending it a command.
type queue[T any] struct {
	in  chan T
	out chan T
}

func newQueue[T any]() *queue[T] {
	q := &queue[T]{in: make(chan T, 64), out: make(chan T)}
	go q.pump()
	return q
}

func (q *queue[T]) push(v T) { q.in <- v }

func (q *queue[T]) pump() {
	var buf []T
	for {
		if len(buf) == 0 {
			buf = append(buf, <-q.in)
		}
		select {
		case v := <-q.in:
			buf = append(buf, v)
		case q.out <- buf[0]:
			var zero T
			buf[0] = zero
			buf = buf[1:]
		}
	}
}

// mailbox hands values from a goroutine that must never block (the reaper's loop) to one owner's
// select loop, without a goroutine per value: put appends and leaves a token in ready; the owner,
// woken by the token, takes everything queued at once.
type mailbox[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{} // holds a token while items may be non-empty
}

func newMailbox[T any]() *mailbox[T] { return &mailbox[T]{ready: make(chan struct{}, 1)} }

func (m *mailbox[T]) put(v T) {
	m.mu.Lock()
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.ready <- struct{}{}:
	default:
	}
}

// take returns what was put since the last take, oldest first.
func (m *mailbox[T]) take() []T {
	m.mu.Lock()
	items := m.items
	m.items = nil
	m.mu.Unlock()
	return items
}
