package integration

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/procfs"
)

// sleepersWith lists the pids of `sleep ARG` processes: the daemons a test's job leaves.
func sleepersWith(arg string) []int {
	return procsWhere(func(pid int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && string(b) == "sleep\x00"+arg+"\x00" && procfs.State(pid) != 'Z'
	})
}

// cgroupDir makes a cgroup v2 directory of the test's own, or skips saying why.
func cgroupDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/sys/fs/cgroup/unified", "god-test-")
	if err != nil {
		t.Skipf("cgroup mode needs a writable cgroup v2 directory: %v", err)
	}
	t.Cleanup(func() {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				os.Remove(dir + "/" + e.Name())
			}
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("test cgroup left: %v", err)
		}
	})
	return dir
}

// TestDaemonsDoNotEscape: a job that starts a daemon out of its process group and session
// (setsid) and then fails, over and over, leaves nothing behind: the daemon of each run is ended
// with it, `god stop` ends the last, and so does god's shutdown. In cgroup mode and in subreaper
// mode.
func TestDaemonsDoNotEscape(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"subreaper", "cgroup"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			var flags []string
			if mode == "cgroup" {
				flags = append(flags, "--cgroup", cgroupDir(t))
			}
			arg := strconv.Itoa(5000 + os.Getpid()%1000 + len(mode))
			t.Cleanup(func() {
				for _, pid := range sleepersWith(arg) {
					t.Errorf("leaked daemon %d (sleep %s): killing it", pid, arg)
					syscall.Kill(pid, syscall.SIGKILL)
				}
			})
			g := newGod(t)
			writeLoader(t, g.dir, "forky", bashLoader{Jobs: map[string]bashJob{
				"forky": {Exec: shJob(`setsid sh -c "exec sleep ` + arg + `" & sleep 1; exit 1`), Auto: autoTrue},
			}})
			g.start(append(flags, "--restart-delay", "0")...)
			// Several runs, each leaving a daemon when it exits.
			g.waitJob("forky", 20*time.Second, "3 restarts", func(j controlJob) bool { return j.Restarts >= 3 })
			if n := len(sleepersWith(arg)); n > 1 {
				g.fatalf("%d daemons of forky run after 3 restarts: each run's should end with it", n)
			}
			g.waitJob("forky", 10*time.Second, "a run with its daemon", func(j controlJob) bool {
				return j.State != "backoff" && len(j.Processes) == 1 && len(sleepersWith(arg)) == 1
			})
			g.mustCLI("stop", "forky")
			g.waitState("forky", "stopped", 10*time.Second)
			if left := sleepersWith(arg); len(left) > 0 {
				g.fatalf("after god stop: daemons %v still run", left)
			}
			g.mustCLI("start", "forky")
			eventually(t, 10*time.Second, "a daemon again", func() bool { return len(sleepersWith(arg)) == 1 })
			g.signal(syscall.SIGTERM)
			g.wait(20 * time.Second)
			if left := sleepersWith(arg); len(left) > 0 {
				g.fatalf("after god's shutdown: daemons %v still run", left)
			}
		})
	}
}
