package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"
)

// TestChildren: the children this test starts are listed, whichever thread forked them, and
// they are gone from the list once reaped.
func TestChildren(t *testing.T) {
	var cmds []*exec.Cmd
	for range 20 {
		c := exec.Command("sleep", "1000")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	t.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	kids := Children()
	for _, c := range cmds {
		if !slices.Contains(kids, c.Process.Pid) {
			t.Errorf("child %d not in Children() = %v", c.Process.Pid, kids)
		}
	}
	c := cmds[0]
	c.Process.Kill()
	c.Wait()
	if slices.Contains(Children(), c.Process.Pid) {
		t.Errorf("reaped child %d still listed", c.Process.Pid)
	}
}

// TestUsage: a live process has a resident set and a CPU time that is not negative; a pid
// that is not a process reads as zeros.
func TestUsage(t *testing.T) {
	buf := make([]byte, 1024)
	cpu, rss := Usage(os.Getpid(), buf)
	if rss <= 0 || cpu < 0 {
		t.Errorf("Usage(self) = %v s, %d pages; want a resident set", cpu, rss)
	}
	if cpu, rss := Usage(1<<22+1, buf); cpu != 0 || rss != 0 {
		t.Errorf("Usage(missing) = %v, %d; want zeros", cpu, rss)
	}
}
