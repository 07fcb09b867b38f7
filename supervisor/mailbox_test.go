package supervisor

import (
	"sync"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestMailbox: put never waits for the owner (10 000 values, nobody taking), a token says there
// is something to take, and take returns each producer's values in the order it put them, once.
func TestMailbox(t *testing.T) {
	m := newMailbox[[2]int]()
	const producers, each = 10, 1000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				m.put([2]int{p, i})
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(testutil.Slack(10 * time.Second)):
		t.Fatal("put waited for an owner that does not take")
	}
	<-m.ready
	next := make([]int, producers)
	for _, v := range m.take() {
		if v[1] != next[v[0]] {
			t.Fatalf("producer %d: got %d, want %d (out of order or twice)", v[0], v[1], next[v[0]])
		}
		next[v[0]]++
	}
	for p, n := range next {
		if n != each {
			t.Errorf("producer %d: took %d values, want %d", p, n, each)
		}
	}
	if rest := m.take(); len(rest) != 0 {
		t.Errorf("a second take returned %d values", len(rest))
	}
}
