package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// testRoot makes a cgroup v2 directory of the test's own, or skips with the reason.
func testRoot(t *testing.T) *Root {
	t.Helper()
	base := os.Getenv("GOD_TEST_CGROUP")
	if base == "" {
		base = "/sys/fs/cgroup/unified"
	}
	dir, err := os.MkdirTemp(base, "god-test-")
	if err != nil {
		t.Skipf("no writable cgroup v2 directory at %s: %v", base, err)
	}
	t.Cleanup(func() {
		// Children first; every test empties its groups.
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		os.Remove(dir)
	})
	r, err := Open(dir)
	if err != nil {
		t.Skipf("cgroup v2 at %s is not usable: %v", base, err)
	}
	return r
}

// TestGroupHoldsADaemon: a process started in a group, whose child leaves its process group
// and session (setsid), is still in the group; Signal(SIGKILL) ends both, and the group empties.
func TestGroupHoldsADaemon(t *testing.T) {
	r := testRoot(t)
	g, err := r.New("job.1")
	if err != nil {
		t.Fatal(err)
	}
	fd, err := g.OpenFD()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", "-c", `setsid sleep 3001 & echo started; wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, UseCgroupFD: true, CgroupFD: fd}
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	syscall.Close(fd)
	buf := make([]byte, 8)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, "two processes in the group", func() bool { return len(g.Procs()) == 2 })
	if !g.Populated() {
		t.Fatal("populated 0 with two processes")
	}
	if err := g.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	testutil.Eventually(t, 10*time.Second, "the group empty", func() bool { return !g.Populated() })
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Dir); !os.IsNotExist(err) {
		t.Fatalf("group still there: %v", err)
	}
}

func TestOpenRefusesOtherDirs(t *testing.T) {
	if _, err := Open(t.TempDir()); err == nil {
		t.Fatal("a plain directory was taken for a cgroup")
	}
}
