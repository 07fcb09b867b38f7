package jobstate

import (
	"log/slog"
	"time"

	"github.com/emielm/watchgod/loader"
)

// An on-demand job (auto ["socket"]) has no process until a client comes: it waits in state
// listen while the actor watches its sockets (WatchSockets), and the first connection or datagram
// (Readable) starts it. The connection itself waits in the kernel's queue, which god never
// accepts from: the process the machine starts takes it. A process that exits 0 by itself (an
// idle exit) sends the job back to listen instead of restarting it.

// listen makes a job that waits or failed (the loader redefined it) wait for its first connection.
func (m *Machine) listen() {
	switch m.j.State {
	case StateWait, StateFailed:
		m.j.Fails = 0
		m.j.RetryAt = time.Time{}
		m.enter(StateListen, listenReason(&m.j.Def, ""))
	}
}

// readable starts a listening job: a client waits on one of its sockets.
func (m *Machine) readable() {
	if m.j.State != StateListen || m.spawning != nil {
		return
	}
	m.log(slog.LevelInfo, "a connection waits: starting on demand")
	m.j.Generation = m.nextGeneration()
	m.spawnMissing()
}

// listenReason is what `god status` says of a listening job.
func listenReason(def *loader.Definition, why string) string {
	msg := "waiting for a connection"
	if len(def.Listen) == 0 {
		msg = "auto socket without a listen socket: starts only on god start"
	}
	if why != "" {
		msg = why + "; " + msg
	}
	return msg
}
