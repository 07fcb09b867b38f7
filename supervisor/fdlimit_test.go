package supervisor

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

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
