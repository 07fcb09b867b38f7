package supervisor

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/loader"
)

// TestJobNofile: until god raised its own hard limit, jobs need nothing (Go restores the limit
// god was started with); after, a job without limit nofile= gets that limit through the shim,
// and one with its own keeps it.
func TestJobNofile(t *testing.T) {
	defer nofileRaised.Store(nofileRaised.Load())
	core := loader.Limit{Resource: unix.RLIMIT_CORE, Soft: 0, Hard: 0}
	own := loader.Limit{Resource: unix.RLIMIT_NOFILE, Soft: 10, Hard: 20}

	nofileRaised.Store(false)
	if got := jobNofile([]loader.Limit{core}); !reflect.DeepEqual(got, []loader.Limit{core}) {
		t.Errorf("before a raise: %v", got)
	}
	nofileRaised.Store(true)
	start := loader.Limit{Resource: unix.RLIMIT_NOFILE, Soft: startNofile.Cur, Hard: startNofile.Max}
	limits := []loader.Limit{core}
	if got := jobNofile(limits); !reflect.DeepEqual(got, []loader.Limit{core, start}) {
		t.Errorf("after a raise: %v, want %v", got, []loader.Limit{core, start})
	}
	if len(limits) != 1 {
		t.Errorf("the job's own limits were changed: %v", limits)
	}
	if got := jobNofile([]loader.Limit{own}); !reflect.DeepEqual(got, []loader.Limit{own}) {
		t.Errorf("a job's own nofile: %v", got)
	}
}

// TestFDShortageSaidOnce: jobs that cannot start for want of fds are said in one record, with
// how many wait, however often they try; once they all started, that is said, and a later
// shortage is said again. A job that stopped trying (stopped while it waited) does not keep
// the next shortage quiet.
func TestFDShortageSaidOnce(t *testing.T) {
	log, recs := testutil.NewLogger()
	s := &Supervisor{log: log}
	short := func(r slog.Record) bool { return strings.HasPrefix(r.Message, "out of file descriptors") }
	over := func(r slog.Record) bool { return strings.HasPrefix(r.Message, "file descriptors free again") }
	for range 3 {
		for _, j := range []string{"a", "b", "c"} {
			s.noteNoFDs(j)
		}
	}
	recs.Wait(t, 10*time.Second, 1, "the shortage said", short)
	s.noteNoFDs("a")
	s.fdStarted("a")
	s.fdStarted("b")
	s.fdStarted("c")
	recs.Wait(t, 10*time.Second, 1, "its end said", over)
	var waiting []string
	recs.Count(func(r slog.Record) bool {
		if short(r) {
			waiting = append(waiting, testutil.Attr(r, "jobs_waiting"))
		}
		return false
	})
	if !reflect.DeepEqual(waiting, []string{"3"}) {
		t.Errorf("shortage records with jobs_waiting %v, want one with 3", waiting)
	}

	// A new shortage whose only job was then stopped: the next one is said all the same.
	s.noteNoFDs("d")
	recs.Wait(t, 10*time.Second, 2, "the second shortage said", short)
	s.fdShort.mu.Lock()
	s.fdShort.waiting["d"] = time.Now().Add(-2 * staleWait) // d was stopped: it tries no more
	s.fdShort.mu.Unlock()
	s.noteNoFDs("e")
	recs.Wait(t, 10*time.Second, 3, "the third shortage said", short)
	if n := recs.Count(over); n != 1 {
		t.Errorf("%d records of the end, want 1", n)
	}
}

// TestJobFDs: a job holds an fd in god (the read end) for each output pipe of each process it
// may run: two for a process with its own stderr pipe, one when its stderr shares stdout's pipe
// or goes to /dev/null; an accept job's connection processes have no stdout pipe (their stdout
// is the connection).
func TestJobFDs(t *testing.T) {
	for _, c := range []struct {
		def  loader.Definition
		want int
	}{
		{loader.Definition{Instances: 1}, 2},
		{loader.Definition{}, 2},
		{loader.Definition{Instances: 1, Stderr: loader.StderrStdout}, 1},
		{loader.Definition{Instances: 1, Stderr: loader.StderrNull}, 1},
		{loader.Definition{Instances: 3}, 6},
		{loader.Definition{Instances: 3, Stderr: loader.StderrStdout}, 3},
		{loader.Definition{Instances: 1, Accept: true, MaxConnections: 64}, 64},
		{loader.Definition{Instances: 1, Accept: true, MaxConnections: 64, Stderr: loader.StderrStdout}, 0},
	} {
		if got := jobFDs(&c.def); got != c.want {
			t.Errorf("jobFDs(instances %d, accept %v/%d, stderr %s) = %d, want %d",
				c.def.Instances, c.def.Accept, c.def.MaxConnections, c.def.Stderr, got, c.want)
		}
	}
}
