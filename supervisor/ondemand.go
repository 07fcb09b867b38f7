package supervisor

import (
	"sync"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/sockwatch"
)

// idleExitEnv tells a job's process how long it may stay idle before it exits 0 (the job's
// idle-exit property, as a Go duration: "30s"); watchgod.ServeHTTP reads it. god never passes on
// its own.
const idleExitEnv = "GOD_IDLE_EXIT"

// sockWatcher is god's one sockwatch.Watcher, made when the first on-demand job listens: a god
// without such jobs runs no goroutine for them.
type sockWatcher struct {
	mu     sync.Mutex
	w      *sockwatch.Watcher
	closed bool
}

// get returns the Watcher, making it on first use.
func (sw *sockWatcher) get() (*sockwatch.Watcher, error) {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.closed {
		return nil, sockwatch.ErrClosed
	}
	if sw.w == nil {
		w, err := sockwatch.New()
		if err != nil {
			return nil, err
		}
		sw.w = w
	}
	return sw.w, nil
}

// close ends every watch; god is done.
func (sw *sockWatcher) close() {
	sw.mu.Lock()
	w := sw.w
	sw.closed, sw.w = true, nil
	sw.mu.Unlock()
	if w != nil {
		w.Close()
	}
}

// watchSockets runs the machine's WatchSockets: on, it watches the job's sockets (replacing a
// watch of sockets that may have changed) and reports the first readable one as
// jobstate.Readable; off, it ends the watch. It only reports: the machine decides to start.
func (j *job) watchSockets(on bool) {
	if j.unwatch != nil {
		j.unwatch()
		j.unwatch = nil
	}
	if !on {
		return
	}
	if def := j.m.Def(); j.sockErr != nil || len(j.socks) < len(def.Listen) {
		j.openSockets() // a socket that could not be opened before: try again
	}
	fds, _ := j.socketFiles()
	if len(fds) == 0 {
		j.log.Warn("on-demand job has no open socket to watch: it starts only on god start")
		return
	}
	w, err := j.sup.sockWatch.get()
	if err != nil {
		j.log.Error("cannot watch the sockets of an on-demand job", "err", err)
		return
	}
	ints := make([]int, len(fds))
	for i, fd := range fds {
		ints[i] = int(fd)
	}
	// fire runs on the watcher's goroutine, which must never wait for a job.
	cancel, err := w.Watch(ints, func() { go send(j, j.events, jobstate.Event(jobstate.Readable{})) })
	if err != nil {
		j.log.Error("cannot watch the sockets of an on-demand job", "err", err)
		return
	}
	j.unwatch = cancel
}
