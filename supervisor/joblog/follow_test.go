package joblog

import (
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// recv takes one line from ch, failing the test after a deadline instead of
// hanging.
func recv(t *testing.T, ch <-chan Line) Line {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatal("follow channel closed")
		}
		return l
	case <-time.After(5 * time.Second):
		t.Fatal("no line within 5s")
	}
	return Line{}
}

func TestFollowFilters(t *testing.T) {
	h := NewHub(nil, 10)
	h.Add(Line{Job: "a", Msg: "before"})
	chA, cancelA := h.Follow([]string{"a"}, 0)
	chAll, cancelAll := h.Follow(nil, 0)
	defer cancelAll()
	h.Add(Line{Job: "b", Msg: "b1"})
	h.Add(Line{Job: "a", Msg: "a1"})

	if l := recv(t, chA); l.Msg != "a1" || l.Seq != 3 {
		t.Errorf("follower of a got %q seq %d, want a1 seq 3", l.Msg, l.Seq)
	}
	if l := recv(t, chAll); l.Msg != "b1" {
		t.Errorf("follower of all got %q first, want b1", l.Msg)
	}
	if l := recv(t, chAll); l.Msg != "a1" {
		t.Errorf("follower of all got %q second, want a1", l.Msg)
	}

	cancelA()
	cancelA() // idempotent
	if _, ok := <-chA; ok {
		t.Error("channel still open after cancel")
	}
	h.Add(Line{Job: "a", Msg: "after cancel"}) // must not panic on the closed channel
	if l := recv(t, chAll); l.Msg != "after cancel" {
		t.Errorf("got %q", l.Msg)
	}
}

func TestFollowSlowFollowerDrops(t *testing.T) {
	h := NewHub(nil, 1000)
	slow, cancelSlow := h.Follow(nil, 4)
	defer cancelSlow()
	fast, cancelFast := h.Follow(nil, 1000)
	defer cancelFast()

	done := make(chan struct{})
	go func() { // Add must not block although nobody reads slow
		defer close(done)
		for i := 1; i <= 100; i++ {
			h.Add(Line{Job: "j", Msg: fmt.Sprint(i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Add blocked on a slow follower")
	}
	if len(fast) != 100 {
		t.Errorf("fast follower has %d lines, want 100", len(fast))
	}
	for i := 1; i <= 4; i++ {
		if l := recv(t, slow); l.Msg != fmt.Sprint(i) {
			t.Fatalf("slow line %d = %q", i, l.Msg)
		}
	}
	h.Add(Line{Job: "j", Msg: "101"})
	n := recv(t, slow)
	if n.Stream != StreamGod || n.Msg != "96 lines dropped" || n.Job != "j" || n.Level != slog.LevelWarn || n.Seq != 100 {
		t.Errorf("notice = %+v, want god/j warn \"96 lines dropped\" seq 100", n)
	}
	if l := recv(t, slow); l.Msg != "101" || l.Seq != 101 {
		t.Errorf("after notice got %q seq %d, want 101", l.Msg, l.Seq)
	}
	if len(slow) != 0 {
		t.Errorf("%d unexpected lines left", len(slow))
	}
}

func TestFollowDropNoticeSeveralJobs(t *testing.T) {
	h := NewHub(nil, 10)
	ch, cancel := h.Follow(nil, 1) // raised to 2
	defer cancel()
	for _, j := range []string{"a", "b", "c", "d"} {
		h.Add(Line{Job: j, Msg: j})
	}
	<-ch
	<-ch
	h.Add(Line{Job: "e", Msg: "e"})
	if n := recv(t, ch); n.Msg != "2 lines dropped" || n.Job != "" {
		t.Errorf("notice = %q job %q, want \"2 lines dropped\" with no job", n.Msg, n.Job)
	}
	if l := recv(t, ch); l.Msg != "e" {
		t.Errorf("got %q, want e", l.Msg)
	}
}
