package supervisor

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/testutil"
)

// TestUnitTagReadDuringExec: a daemon that execs just as its parent dies is attributed to its
// job. Reading /proc/PID/environ across the process's exec returns nothing for a moment (the old
// memory is gone, the new one holds no environment yet); unitTagOf must read through that moment
// rather than take the daemon for a stranger, which left it unattributed for good.
func TestUnitTagReadDuringExec(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "chain")
	last := script + ".last"
	// Each link execs the next, so the process is in an exec much of its life; the last link
	// says so and execs sleep (a process that exits shows no environment, rightly).
	testutil.WriteExecutable(t, dir, "chain", []byte("#!/bin/sh\n[ \"$1\" -gt 0 ] && exec \"$0\" $(( $1 - 1 ))\n: > \"$0.last\"\nexec sleep 60\n"))
	cmd := exec.Command(script, "300")
	cmd.Env = append(os.Environ(), envUnit+"=42")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() { cmd.Process.Kill(); <-done }()
	// An exec that outlasts procfs.Environ's wait (a loaded machine: a run with load 16 on 2 cores
	// saw one in 30 000) is reported as transient, and scan looks again later (rescanLater): not
	// a miss.
	reads, misses, transients := 0, 0, 0
	for {
		_, err := os.Stat(last)
		select {
		case <-done:
			t.Fatal("the chain ended before its last link")
		default:
		}
		if err == nil {
			if reads < 100 {
				t.Fatalf("only %d reads before the chain ended", reads)
			}
			if misses > 0 {
				t.Fatalf("GOD_UNIT not read in %d of %d reads of a live process", misses, reads)
			}
			t.Logf("%d reads, all found GOD_UNIT=42 (%d more said to look again later)", reads, transients)
			return
		}
		tag, ok, transient := unitTagOf(cmd.Process.Pid)
		if transient {
			transients++
			continue
		}
		reads++
		if !ok || tag != 42 {
			misses++
		}
	}
}

// TestEscapeeAdoptedAsMainPid: a process found first as one that left its job's group (its
// parent, the job's main process, exited before god read its MAINPID=, as tableflip's upgrade
// does under load) can still be adopted as the job's new main process, and its exit reaches
// the job.
func TestEscapeeAdoptedAsMainPid(t *testing.T) {
	r := reaper.New(nil)
	t.Cleanup(r.Close)
	c := newContainment(nil, r, slog.New(slog.DiscardHandler))
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer syscall.Kill(pid, syscall.SIGKILL)
	// What scan does when it finds the escapee.
	c.units[4242] = &unit{tag: 7, job: "web", pgid: 4242, escaped: map[int]bool{pid: true}}
	c.byTag[7] = c.units[4242]
	if !r.Watch(pid, func(e jobstate.Exit) { c.escapedExit(7, e.Pid) }) {
		t.Fatal("escapee not watched")
	}
	c.release(pid)
	got := make(chan jobstate.Exit, 1)
	if err := r.Adopt(pid, pid, func(e jobstate.Exit) { got <- e }); err != nil {
		t.Fatalf("adopting the escapee as MAINPID: %v", err)
	}
	if len(c.escapedOf(4242)) != 0 {
		t.Errorf("still listed as escaped: %v", c.escapedOf(4242))
	}
	syscall.Kill(pid, syscall.SIGKILL)
	if e := testutil.Receive(t, got, 20*time.Second, "the adopted process's exit"); e.Pid != pid {
		t.Errorf("exit of %d, want %d", e.Pid, pid)
	}
}

// TestScanLeavesAdoptingPidAlone: a job that adopts an escaped process as its MAINPID gets it,
// even when the reaper's scan notes the process between the job's release of it and its
// adoption (the scan had read its tag before: a process in an exec is read slowly). Under load a
// tableflip reload failed that way ("MAINPID: cannot follow: already watched").
func TestScanLeavesAdoptingPidAlone(t *testing.T) {
	r := reaper.New(nil)
	t.Cleanup(r.Close)
	c := newContainment(nil, r, slog.New(slog.DiscardHandler))
	cmd := exec.Command("sleep", "1000")
	cmd.Env = append(os.Environ(), envUnit+"=7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer syscall.Kill(pid, syscall.SIGKILL)
	c.mu.Lock()
	c.units[4242] = &unit{tag: 7, job: "web", pgid: 4242}
	c.byTag[7] = c.units[4242]
	c.mu.Unlock()
	c.release(pid) // the job's adoption begins
	c.scan()       // the scan notes what it read before
	err := r.Adopt(pid, pid, func(jobstate.Exit) {})
	c.adopted(pid)
	if err != nil {
		t.Fatalf("adopting the escapee as MAINPID after a scan: %v", err)
	}
	if len(c.escapedOf(4242)) != 0 {
		t.Errorf("listed as escaped although its job adopted it: %v", c.escapedOf(4242))
	}
}
