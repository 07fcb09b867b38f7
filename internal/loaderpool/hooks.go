package loaderpool

import (
	"context"
	"slices"
	"time"

	"github.com/emielm/watchgod/loader"
)

// The on<State> notifications (hooks) of a loader's jobs go through one queue per loader file.
// A job only appends to it, so a state change never waits for the loader. One goroutine at a
// time (started when the queue fills, gone when it is empty) sends the queue in order, in
// pipelined batches on one instance: every hook of a job reaches the loader in the order the job
// entered its states, and thousands of hooks cost a few round trips instead of thousands. Each
// reply gets LoaderTimeout from when the loader could read its request (see loader.AskAll), so
// a healthy loader is never killed because god sent many hooks at once (with 5000 jobs, hooks
// timed from when they were queued killed a loader that answered each at once).
//
// The queue is bounded: a loader too slow for its hooks loses the newest ones past the bound
// rather than god holding ever more of them. They are counted and said in one log record per
// burst (when the queue has drained again, or every hookLogEvery while it has not), never one
// per hook.

const (
	// minHookQueue and hooksPerJob bound a loader's hook queue: 1024, or 4 per job it defines
	// when that is more (a start of every job is wait, start and run: three hooks each).
	minHookQueue = 1024
	hooksPerJob  = 4
	// hookBatch is how many hooks one turn on an instance sends; between turns other requests
	// (checks, stops) get the instance.
	hookBatch = 256
	// hookLogEvery is how often a burst of dropped hooks that does not end is said.
	hookLogEvery = 30 * time.Second
)

// hookQueue is a Pool's queue of hooks, guarded by the pool's mu.
type hookQueue struct {
	pending  []loader.Message // [job, on<State>, args...], oldest first
	sending  bool             // a sendHooks goroutine runs
	jobs     int              // jobs the loader defined at its last load: the bound grows with them
	min      int              // the bound's floor (minHookQueue; lower in tests)
	dropped  int              // dropped in this burst, not yet logged
	burstAt  time.Time        // when the burst's first hook was dropped
	total    uint64           // dropped since god started
	lastSaid time.Time        // when a burst was last logged
}

// limit is how many hooks may wait.
func (q *hookQueue) limit() int { return max(q.min, hooksPerJob*q.jobs) }

// Hook queues [job, on<State>, args...] for the loader and returns at once: the reply is not
// used. A full queue drops it (counted, see sendHooks); a closed pool ignores it.
func (p *Pool) Hook(job string, args []string) {
	req := append(loader.Message{job}, args...)
	p.mu.Lock()
	defer p.mu.Unlock()
	q := &p.hooks
	if p.closed {
		return
	}
	if len(q.pending) >= q.limit() {
		if q.dropped == 0 {
			q.burstAt = time.Now()
		}
		q.dropped++
		q.total++
		return
	}
	q.pending = append(q.pending, req)
	if !q.sending {
		q.sending = true
		go p.sendHooks()
	}
}

// sendHooks sends the queued hooks, a batch at a time, until the queue is empty.
func (p *Pool) sendHooks() {
	for {
		p.mu.Lock()
		q := &p.hooks
		if p.closed {
			q.pending = nil
		}
		p.sayDroppedLocked(len(q.pending) == 0)
		if len(q.pending) == 0 {
			q.pending = nil // let a burst's backing array go
			q.sending = false
			p.mu.Unlock()
			return
		}
		n := min(len(q.pending), hookBatch)
		batch := slices.Clone(q.pending[:n])
		clear(q.pending[:n])
		q.pending = q.pending[n:]
		p.mu.Unlock()
		p.deliverHooks(batch)
	}
}

// sayDroppedLocked logs the hooks dropped in this burst once it has ended (the queue drained),
// or once it has lasted hookLogEvery.
func (p *Pool) sayDroppedLocked(drained bool) {
	q := &p.hooks
	if q.dropped == 0 || (!drained && time.Since(q.burstAt) < hookLogEvery) {
		return
	}
	p.log.Warn("loader too slow for its jobs' on<State> notifications: dropped those past the queue's bound",
		"dropped", q.dropped, "bound", q.limit(), "since", q.burstAt.Format(time.RFC3339Nano), "dropped_total", q.total)
	q.dropped = 0
	q.lastSaid = time.Now()
}

// deliverHooks sends one batch on one instance, pipelined. The replies are not used; a loader
// that breaks the protocol or answers late is killed as for any request. Hooks that find no
// instance (the loader backs off after a failure, or the pool closed) are lost: that failure is
// logged where it happened.
func (p *Pool) deliverHooks(batch []loader.Message) {
	inst, err := p.acquire(context.Background(), true)
	if err != nil {
		p.log.Debug("loader not available: on<State> notifications not sent", "hooks", len(batch), "err", err)
		return
	}
	if _, err := inst.client.AskAll(context.Background(), p.cfg.Timeout, batch); err != nil {
		if inst.client.Broken() != nil {
			p.fail(inst, &loaderError{path: p.path, err: err}, true)
			return
		}
		p.release(inst, false)
		return
	}
	p.release(inst, true)
}

// hookJobs sets how many jobs the loader defines, which scales its hook queue's bound.
func (p *Pool) hookJobs(n int) {
	p.mu.Lock()
	p.hooks.jobs = n
	p.mu.Unlock()
}
