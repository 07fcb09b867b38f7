package supervisor

import (
	"testing"

	"github.com/emielm/watchgod/internal/jobstate"
)

// TestShutdownBookkeeping follows allDown and nothingStopping, which a shutdown asks after every
// event, through the moves they must see without a pass over every job: jobs going down one by
// one, a job removed, a job started again while god shuts down (with or without an event of it
// yet), and a stop sent to a job that waited.
func TestShutdownBookkeeping(t *testing.T) {
	s := &Supervisor{jobs: map[string]*jobHandle{}, shutting: true}
	add := func(name string, st jobstate.State) *jobHandle {
		h := &jobHandle{j: &job{name: name, cmds: newMailbox[jobCmd]()}, state: st}
		s.jobs[name] = h
		return h
	}
	a := add("a", jobstate.StateRun)
	b := add("b", jobstate.StateRun)
	c := add("c", jobstate.StateStopped)
	event := func(h *jobHandle, st jobstate.State) { h.state = st; s.trackShutdown(h) }

	if s.allDown() {
		t.Fatal("allDown with a and b running")
	}
	if !s.nothingStopping() {
		t.Fatal("something stopping before any stop was sent")
	}
	s.shutdownStop(a)
	if s.nothingStopping() {
		t.Fatal("nothing stopping right after a's stop")
	}
	event(a, jobstate.StateStopped)
	if !s.nothingStopping() {
		t.Fatal("a is down, b was not sent a stop: nothing should be stopping")
	}
	if s.allDown() {
		t.Fatal("allDown with b running")
	}
	delete(s.jobs, b.j.name) // removed while god shuts down
	if !s.allDown() {
		t.Fatal("not allDown once a is down and b removed")
	}
	// c is started again (god start while god shuts down): no event of it yet, only startSent.
	c.startSent = true
	if s.allDown() {
		t.Fatal("allDown with c's start on its way")
	}
	event(c, jobstate.StateRun)
	c.startSent = false
	s.shutdownStop(c)
	if s.nothingStopping() || s.allDown() {
		t.Fatal("c runs and was sent its stop: it is stopping and not down")
	}
	event(c, jobstate.StateStopped)
	if !s.nothingStopping() || !s.allDown() {
		t.Fatal("every job down: nothing stopping and allDown")
	}
	if len(s.downWait) != 0 || len(s.stopping) != 0 {
		t.Errorf("left in the bookkeeping once all is down: %d waiting, %d stopping", len(s.downWait), len(s.stopping))
	}
}
