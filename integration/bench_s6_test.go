package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// s6Run is what runS6 measured.
type s6Run struct {
	start time.Duration // s6-svscan's exec to every service running
	stop  time.Duration // s6-svscanctl -t to every service gone
	mem   memFigures    // s6-svscan and its s6-supervise processes, once every service runs
	procs int           // s6-svscan and its s6-supervise processes
}

// runS6 runs n `sleep` services under s6's s6-svscan (one s6-supervise each, as s6 does it),
// measures it the way runRunit measures runit, and stops it with s6-svscanctl -t.
func runS6(t testing.TB, n int) (s6Run, error) {
	var r s6Run
	svscan, env, err := findS6("s6-svscan")
	if err != nil {
		return r, err
	}
	svscanctl, _, err := findS6("s6-svscanctl")
	if err != nil {
		return r, err
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return r, err
	}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		sv := filepath.Join(dir, fmt.Sprintf("s%05d", i))
		if err := os.Mkdir(sv, 0o755); err != nil {
			return r, err
		}
		run := "#!/bin/sh\nexec " + sleep + " " + s6Sleep + "\n"
		if err := writeNoFork(filepath.Join(sv, "run"), []byte(run), 0o755); err != nil {
			return r, err
		}
	}
	cmd := exec.Command(svscan, "-c", fmt.Sprint(n+16), dir)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return r, err
	}
	top := cmd.Process.Pid
	isService := func(pid int) bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return string(b) == sleep+"\x00"+s6Sleep+"\x00"
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		t1 := time.Now()
		ctl := exec.Command(svscanctl, "-t", dir)
		ctl.Env = env
		if out, err := ctl.CombinedOutput(); err != nil {
			t.Logf("s6-svscanctl -t: %v %s; SIGTERM to its process group", err, out)
			_ = syscall.Kill(-top, syscall.SIGTERM)
		}
		_ = cmd.Wait()
		eventually(t, 10*time.Second+time.Duration(n)*time.Millisecond, "s6's services stopped", func() bool {
			return len(procsWhere(isService)) == 0
		})
		r.stop = time.Since(t1)
	}
	defer stop()
	var svs []int
	running := 0
	limit := 30*time.Second + time.Duration(n)*5*time.Millisecond
	if !testutil.Poll(limit, func() bool {
		kids := childrenByParent() // one pass over /proc a poll
		svs, running = kids[top], 0
		for _, sv := range svs {
			for _, c := range kids[sv] {
				if isService(c) {
					running++
				}
			}
		}
		return len(svs) == n && running == n
	}) {
		return r, fmt.Errorf("s6-svscan: %d s6-supervise and %d services after %s", len(svs), running, testutil.Slack(limit))
	}
	r.start = time.Since(t0)
	r.mem.add(readMem(top))
	for _, sv := range svs {
		r.mem.add(readMem(sv))
	}
	r.procs = len(svs) + 1
	stop()
	return r, nil
}

// s6Sleep is the argument of the services under s6, so the clean-up tells them apart.
const s6Sleep = "100003"

// findS6 finds one of s6's programs in PATH. Unlike s6-log (bench_logdir_test.go), the
// supervision tree needs s6 installed: s6-svscan runs s6-supervise by the absolute path it was
// built with (/usr/bin/s6-supervise in Debian), so the copy scripts/bench unpacks will not do.
func findS6(name string) (string, []string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", nil, fmt.Errorf("%s not found in PATH (install Debian's s6: s6-svscan runs /usr/bin/s6-supervise, so an unpacked copy will not do)", name)
	}
	return p, os.Environ(), nil
}
