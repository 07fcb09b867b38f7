package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// The supervision trees the benchmarks measure god against: runit (runsvdir and a runsv per
// service) and s6 (s6-svscan and an s6-supervise per service), each running n `sleep` services
// from a scan directory, the way they are deployed.

// treeRun is what runTree measured of a supervision tree.
type treeRun struct {
	start time.Duration // the top process's exec to every service running
	stop  time.Duration // the stop command to every service gone
	mem   memFigures    // the top process and its supervisors, once every service runs
	procs int           // the top process and its supervisors
}

// tree is a supervision tree to run: top is its command (not started), over a scan directory of
// n services that each run `sleep marker`; stop tells it to stop every service and exit.
type tree struct {
	name   string
	top    *exec.Cmd
	marker string
	stop   func(top *exec.Cmd) error
}

// runitFootprint runs n `sleep` services under runit's runsvdir and measures runsvdir and its
// runsv children once every service runs. It returns the sum and the number of processes.
func runitFootprint(t testing.TB, n int) (memFigures, int, error) {
	r, err := runRunit(t, n)
	return r.mem, r.procs, err
}

// runRunit runs n services under runsvdir and stops it with SIGHUP (runsvdir sends TERM to every
// runsv, which stops its service and exits).
func runRunit(t testing.TB, n int) (treeRun, error) {
	runsvdir, err := findRunit("runsvdir")
	if err != nil {
		return treeRun{}, err
	}
	if _, err := findRunit("runsv"); err != nil {
		return treeRun{}, err
	}
	dir, err := serviceDirs(t, n, runitSleep)
	if err != nil {
		return treeRun{}, err
	}
	cmd := exec.Command(runsvdir, dir)
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(runsvdir)+":"+os.Getenv("PATH"))
	return runTree(t, n, tree{name: "runsvdir", top: cmd, marker: runitSleep, stop: func(top *exec.Cmd) error {
		return top.Process.Signal(syscall.SIGHUP)
	}})
}

// runS6 runs n services under s6-svscan and stops it with s6-svscanctl -t (SIGTERM to every
// s6-supervise, which brings its service down; then s6-svscan exits).
func runS6(t testing.TB, n int) (treeRun, error) {
	svscan, err := findS6("s6-svscan")
	if err != nil {
		return treeRun{}, err
	}
	svscanctl, err := findS6("s6-svscanctl")
	if err != nil {
		return treeRun{}, err
	}
	dir, err := serviceDirs(t, n, s6Sleep)
	if err != nil {
		return treeRun{}, err
	}
	cmd := exec.Command(svscan, "-c", fmt.Sprint(n+16), dir) // -c: its default bound is 1000
	return runTree(t, n, tree{name: "s6-svscan", top: cmd, marker: s6Sleep, stop: func(*exec.Cmd) error {
		if out, err := exec.Command(svscanctl, "-t", dir).CombinedOutput(); err != nil {
			return fmt.Errorf("s6-svscanctl -t: %v %s", err, out)
		}
		return nil
	}})
}

// serviceDirs writes a scan directory of n services, each running `sleep marker`.
func serviceDirs(t testing.TB, n int, marker string) (string, error) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		return "", err
	}
	dir := t.TempDir()
	for i := 1; i <= n; i++ {
		sv := filepath.Join(dir, fmt.Sprintf("s%05d", i))
		if err := os.Mkdir(sv, 0o755); err != nil {
			return "", err
		}
		if err := writeNoFork(filepath.Join(sv, "run"), []byte("#!/bin/sh\nexec "+sleep+" "+marker+"\n"), 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// runTree starts tr, measures it once all n services run, and stops it (also when the start
// fails; a tree that does not stop is killed by its process group).
func runTree(t testing.TB, n int, tr tree) (treeRun, error) {
	var r treeRun
	isService := func(pid int) bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		argv := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
		return len(argv) == 2 && filepath.Base(argv[0]) == "sleep" && argv[1] == tr.marker
	}
	tr.top.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	t0 := time.Now()
	if err := tr.top.Start(); err != nil {
		return r, err
	}
	top := tr.top.Process.Pid
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		t1 := time.Now()
		if err := tr.stop(tr.top); err != nil {
			t.Logf("%s: %v; SIGTERM to its process group", tr.name, err)
			_ = syscall.Kill(-top, syscall.SIGTERM)
		}
		_ = tr.top.Wait()
		eventually(t, 10*time.Second+time.Duration(n)*time.Millisecond, tr.name+"'s services stopped", func() bool {
			return len(procsWhere(isService)) == 0
		})
		r.stop = time.Since(t1)
	}
	defer stop()
	var svs []int
	running := 0
	limit := 30*time.Second + time.Duration(n)*5*time.Millisecond
	if !testutil.Poll(limit, func() bool {
		kids := childrenByParent() // one pass over /proc a poll: 2n processes
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
		return r, fmt.Errorf("%s: %d supervisors and %d services after %s", tr.name, len(svs), running, testutil.Slack(limit))
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

// The arguments of the services under runit and s6, so the clean-up tells them apart.
const (
	runitSleep = "100002"
	s6Sleep    = "100003"
)

// findS6 finds one of s6's programs in PATH. Unlike s6-log (bench_logdir_test.go), the
// supervision tree needs s6 installed: s6-svscan runs s6-supervise by the absolute path it was
// built with (/usr/bin/s6-supervise in Debian), so the copy scripts/bench unpacks will not do.
func findS6(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found in PATH (install Debian's s6: s6-svscan runs /usr/bin/s6-supervise, so an unpacked copy will not do)", name)
	}
	return p, nil
}
