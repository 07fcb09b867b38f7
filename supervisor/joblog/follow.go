package joblog

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// DefaultFollowBuffer is the channel size Follow uses when buffer <= 0.
const DefaultFollowBuffer = 1024

// follower is one Follow call: the jobs it wants and its channel. The Hub's
// lock guards every field but once, and all sends happen under it, so a send
// never races with close.
type follower struct {
	jobs    []string // empty: all jobs
	ch      chan Line
	dropped uint64 // lines lost since the last delivered line
	lastSeq uint64 // Seq of the last lost line
	dropJob string // job of the lost lines; "" when they span several jobs
	once    sync.Once
}

// Follow returns a channel that receives every line added from now on for
// the named jobs (all jobs when jobs is empty), and a cancel func that stops
// following and closes the channel; cancel may be called more than once.
//
// The channel holds buffer lines (DefaultFollowBuffer when buffer <= 0, at
// least 2). When it is full the Hub drops lines for this follower instead of
// waiting. The next line that fits is preceded by a notice: a Line with
// Stream "god", Level Warn, Msg "N lines dropped", Seq of the last dropped
// line, and Job naming the job whose lines were lost ("" when several).
func (h *Hub) Follow(jobs []string, buffer int) (<-chan Line, func()) {
	if buffer <= 0 {
		buffer = DefaultFollowBuffer
	}
	// A notice and the line after it need two slots.
	buffer = max(buffer, 2)
	f := &follower{jobs: slices.Clone(jobs), ch: make(chan Line, buffer)}
	h.mu.Lock()
	h.followers = append(h.followers, f)
	h.mu.Unlock()
	cancel := func() {
		f.once.Do(func() {
			h.mu.Lock()
			if i := slices.Index(h.followers, f); i >= 0 {
				h.followers = slices.Delete(h.followers, i, i+1)
			}
			close(f.ch)
			h.mu.Unlock()
		})
	}
	return f.ch, cancel
}

// wants reports whether the follower follows job.
func (f *follower) wants(job string) bool {
	return len(f.jobs) == 0 || slices.Contains(f.jobs, job)
}

// offer delivers l without blocking, or counts it as dropped. It is called
// with the Hub's lock held; only the Hub sends, so the free room it sees can
// only grow before the sends below.
func (f *follower) offer(l Line) {
	free := cap(f.ch) - len(f.ch)
	if f.dropped > 0 {
		if free < 2 {
			f.drop(l)
			return
		}
		f.ch <- Line{
			Time:   time.Now(),
			Job:    f.dropJob,
			Stream: StreamGod,
			Level:  slog.LevelWarn,
			Msg:    fmt.Sprintf("%d lines dropped", f.dropped),
			Seq:    f.lastSeq,
		}
		f.dropped = 0
	} else if free < 1 {
		f.drop(l)
		return
	}
	f.ch <- l
}

// drop counts a line the follower had no room for.
func (f *follower) drop(l Line) {
	if f.dropped == 0 {
		f.dropJob = l.Job
	} else if f.dropJob != l.Job {
		f.dropJob = ""
	}
	f.dropped++
	f.lastSeq = l.Seq
}
