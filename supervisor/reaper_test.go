package supervisor

import (
	"sync"
	"testing"
	"time"
)

// TestReaperParallelStartsLoseNoExit starts many children that exit at once from several
// goroutines: forks run in parallel, yet the reaper must never reap a child before its Start has
// registered it (the exit would go to the orphans and its waiter would wait forever).
func TestReaperParallelStartsLoseNoExit(t *testing.T) {
	const workers, each = 8, 40
	r := NewReaper(nil)
	t.Cleanup(r.Close)
	type started struct {
		pid  int
		exit <-chan Exit
	}
	var (
		mu   sync.Mutex
		kids []started
		wg   sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for range each {
				pid, exit, err := r.Start(procAttr{Path: "/bin/sh", Argv: []string{"sh", "-c", "exit 0"}, Setpgid: true})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				kids = append(kids, started{pid, exit})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Start: %v", err)
	}
	deadline := time.After(20 * time.Second)
	for _, k := range kids {
		select {
		case e := <-k.exit:
			if e.Pid != k.pid || !e.Success() {
				t.Errorf("pid %d: exit %+v, want its own clean exit", k.pid, e)
			}
		case <-deadline:
			t.Fatalf("pid %d: no exit delivered within 20 s (reaped before it was registered?)", k.pid)
		}
	}
	// Freeze holds back starts as well as reaping; Thaw lets them go on.
	r.Freeze()
	r.Thaw()
	pid, exit, err := r.Start(procAttr{Path: "/bin/sh", Argv: []string{"sh", "-c", "exit 3"}})
	if err != nil {
		t.Fatalf("Start after Thaw: %v", err)
	}
	select {
	case e := <-exit:
		if e.Pid != pid || e.Code() != 3 {
			t.Fatalf("exit %+v, want pid %d code 3", e, pid)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after Thaw")
	}
}
