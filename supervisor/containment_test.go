package supervisor

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
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
	if err := os.WriteFile(script, []byte("#!/bin/sh\n[ \"$1\" -gt 0 ] && exec \"$0\" $(( $1 - 1 ))\n: > \"$0.last\"\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(script, "300")
	cmd.Env = append(os.Environ(), envUnit+"=42")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	defer func() { cmd.Process.Kill(); <-done }()
	reads, misses := 0, 0
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
			t.Logf("%d reads, all found GOD_UNIT=42", reads)
			return
		}
		tag, ok, inExec := unitTagOf(cmd.Process.Pid)
		if ok && tag == 42 || inExec {
			// inExec: an exec that took longer than procfs.Environ waits (a busy machine);
			// the scan looks again later.
			reads++
			continue
		}
		reads++
		misses++
	}
}
