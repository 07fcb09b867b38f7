package loader

import (
	"context"
	"fmt"
	"time"
)

// pipelineBytes bounds the requests written before their replies are read. A loader that answers
// in order reads its stdin and writes its stdout in turn; with more unread requests than a pipe
// holds, god's write and the loader's reply could each wait for the other. One page is the least
// a Linux pipe holds (even past pipe-user-pages-soft), so a batch this size never blocks on a
// loader that keeps reading.
const pipelineBytes = 4096

// AskAll sends every request of reqs (each [job, prop, args...]) and returns the replies, in
// order. The loader answers in order, so the requests are pipelined: written in batches of up
// to 4 KiB, then the batch's replies read, which costs one round trip per batch instead of one
// per request. ctx bounds the whole set; each, when positive, bounds every single reply (from
// the write of its batch or the reply before it), so that a long set from a slow but steady
// loader is not cut off while a hung one still is. Errors are those of [Client.Ask] and name the
// request whose reply failed (a late reply wraps context.DeadlineExceeded); any error after a
// request was sent breaks the Client. An empty reqs returns nil at once.
func (c *Client) AskAll(ctx context.Context, each time.Duration, reqs []Message) ([]Message, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	for i, r := range reqs {
		if len(r) < 2 {
			return nil, fmt.Errorf("loader: ask all: request %d has %d elements, want job and property", i, len(r))
		}
	}
	first := reqs[0]
	if err := c.acquire(ctx); err != nil {
		return nil, fmt.Errorf("loader: ask %s %s: %w", first[0], first[1], err)
	}
	defer c.release()
	c.mu.Lock()
	ok := c.handshaken
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("loader: ask %s %s: before the handshake", first[0], first[1])
	}
	if err := c.unsolicited(); err != nil {
		return nil, c.fail(fmt.Errorf("loader: ask %s %s: %w", first[0], first[1], err))
	}
	var late <-chan time.Time
	var timer *time.Timer
	if each > 0 {
		timer = time.NewTimer(each)
		defer timer.Stop()
		late = timer.C
	}
	replies := make([]Message, 0, len(reqs))
	var batch []byte
	for start := 0; start < len(reqs); {
		// One batch: requests up to pipelineBytes (at least one, however long).
		batch = batch[:0]
		end := start
		for end < len(reqs) {
			b, err := appendMessage(batch, reqs[end])
			if err != nil { // nothing of this batch was sent: the stream is in step
				return nil, fmt.Errorf("loader: ask %s %s: %w", reqs[end][0], reqs[end][1], err)
			}
			if end > start && len(b) > pipelineBytes {
				break
			}
			batch = b
			end++
		}
		if err := c.writeWithin(ctx, each, batch); err != nil {
			return nil, c.fail(fmt.Errorf("loader: ask %s %s: write request: %w", reqs[start][0], reqs[start][1], err))
		}
		for i := start; i < end; i++ {
			if timer != nil {
				timer.Reset(each) // Go 1.23 timers: no stale value is left in C
			}
			m, err := c.receiveBy(ctx, late, each)
			if err != nil {
				return nil, c.fail(fmt.Errorf("loader: ask %s %s: %w", reqs[i][0], reqs[i][1], err))
			}
			replies = append(replies, m)
		}
		start = end
	}
	return replies, nil
}

// writeWithin is write bounded by each as well as ctx (each <= 0: by ctx alone): a loader that
// stops reading its stdin fails in the time it has for a reply.
func (c *Client) writeWithin(ctx context.Context, each time.Duration, b []byte) error {
	if each <= 0 {
		return c.write(ctx, b)
	}
	wctx, cancel := context.WithTimeout(ctx, each)
	defer cancel()
	return c.write(wctx, b)
}

// unsolicited reports a message that waits before a request was sent: the stream is off.
func (c *Client) unsolicited() error {
	select {
	case f := <-c.frames:
		if f.err != nil {
			return f.err
		}
		return fmt.Errorf("unsolicited message %.80q", []string(f.m))
	default:
		return nil
	}
}
