package supervisor

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
