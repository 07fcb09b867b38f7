package supervisor

import "sync"

// mailbox hands values to one owner's select loop from goroutines that must never block: the
// reaper's loop (a job's exits), job actors and helper goroutines (the loop's inbox, while the
// loop may be sending one of them a command). put appends and leaves a token in ready; the owner,
// woken by the token, takes everything queued at once. It is unbounded, and costs no goroutine.
type mailbox[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{} // holds a token while items may be non-empty
}

func newMailbox[T any]() *mailbox[T] { return &mailbox[T]{ready: make(chan struct{}, 1)} }

// put queues v for the owner; it never blocks.
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
