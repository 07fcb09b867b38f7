package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// testRoot makes a cgroup v2 directory of the test's own, or skips with the reason.
func testRoot(t testing.TB) *Root {
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

// TestSet writes an interface file every cgroup has and reads it back; a file of a controller
// that is not enabled is an error saying so.
func TestSet(t *testing.T) {
	r := testRoot(t)
	g, err := r.New("limits.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := Set(g.Dir, "cgroup.max.descendants", "5"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(g.Dir, "cgroup.max.descendants")); string(b) != "5\n" {
		t.Errorf("cgroup.max.descendants = %q, want 5", b)
	}
	if err := Set(g.Dir, "cgroup.max.descendants", "lots"); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("a value the kernel refuses: %v", err)
	}
	if on, _ := Controllers(r.Dir); !slices.Contains(on, "memory") {
		if err := Set(g.Dir, "memory.max", "1"); err == nil || !strings.Contains(err.Error(), "no memory.max") {
			t.Errorf("memory.max without the controller: %v", err)
		}
	}
	g.Remove()
}

// TestEnable: each controller a job's limits use is enabled for the children of a cgroup that
// offers it, and a limit file then appears in a child; one the cgroup does not offer is an
// error naming it (the development machines offer none of them in their v2 hierarchy).
func TestEnable(t *testing.T) {
	r := testRoot(t)
	offered, err := Controllers(r.Dir)
	if err != nil {
		t.Fatal(err)
	}
	for c, file := range map[string]string{"memory": "memory.max", "pids": "pids.max", "cpu": "cpu.weight"} {
		t.Run(c, func(t *testing.T) {
			if !slices.Contains(offered, c) {
				err := Enable(r.Dir, c)
				if err == nil || !strings.Contains(err.Error(), "the "+c+" controller is not available") {
					t.Fatalf("Enable(%s) of a controller not offered: %v", c, err)
				}
				t.Skipf("the %s controller is not available in %s (cgroup.controllers: %q): the error is checked, not the limit", c, r.Dir, offered)
			}
			if err := Enable(r.Dir, c); err != nil {
				t.Fatal(err)
			}
			if err := Enable(r.Dir, c); err != nil {
				t.Fatalf("enabled twice: %v", err)
			}
			g, err := r.New("enable-" + c)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Remove()
			if _, err := os.Stat(filepath.Join(g.Dir, file)); err != nil {
				t.Fatalf("%s enabled, but: %v", c, err)
			}
		})
	}
}
