package integration

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/cgroup"
)

// cgroupOf is the cgroup v2 path of a process, as /proc/PID/cgroup says it ("/god-test-1/web.3").
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	t.Fatalf("pid %d: no cgroup v2 line in %q", pid, b)
	return ""
}

// v2Mount is the cgroup v2 mount point cgroupDir creates directories in.
const v2Mount = "/sys/fs/cgroup/unified"

// limitsJob is a job with every kind of cgroup limit, failed after one try when it cannot start.
var limitsJob = bashJob{Exec: sleeper, Auto: autoTrue, Props: map[string]string{
	"cgroup":        reply("memory.max=64M", "memory.high=48M", "pids.max=50", "cpu.max=50%", "cpu.weight=200"),
	"restart-limit": reply("1"), "restart-delay": reply("10"),
}}

// TestCgroupLimitsNeedCgroupMode: a job with cgroup limits under a god in subreaper mode does
// not start; its status and god's log say which job and how to turn cgroup mode on.
func TestCgroupLimitsNeedCgroupMode(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{"limited": limitsJob, "plain": {Exec: sleeper, Auto: autoTrue}}})
	g.start("--cgroup", "off")
	g.waitLog(10*time.Second, "the containment record", func(r record) bool {
		return r.Msg == "containment" && r.str("mode") == "subreaper" && r.str("why") == "--cgroup off"
	})
	const want = "job limited: cgroup limits (memory.max=64M) need god's cgroup mode"
	j := g.waitState("limited", "failed", 20*time.Second)
	if !strings.Contains(j.Reason, want) || !strings.Contains(j.Reason, "--cgroup DIR") || !strings.Contains(j.Reason, "Delegate=yes") || len(j.Processes) != 0 {
		t.Errorf("status = %+v, want failed, no process, %q and how to enable cgroup mode in the reason", j, want)
	}
	g.waitLog(10*time.Second, "the cannot-start record", func(r record) bool {
		return r.str("job") == "limited" && strings.Contains(r.str("err"), want)
	})
	g.running("plain")
}

// TestCgroupLimits: in cgroup mode a job's limits are in its process's cgroup when it runs, and
// a job without limits runs beside it. Where the cgroup god uses does not offer a controller (the
// v2 hierarchy of the development machines offers none), the job does not start and the error
// names the controller; the limits themselves are then not checked (the test says so).
func TestCgroupLimits(t *testing.T) {
	t.Parallel()
	dir := cgroupDir(t)
	g := newGod(t)
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{"limited": limitsJob, "plain": {Exec: sleeper, Auto: autoTrue}}})
	g.start("--cgroup", dir)
	pid := g.running("plain")
	if cg := cgroupOf(t, pid); !strings.HasPrefix(cg, strings.TrimPrefix(dir, v2Mount)+"/plain.") {
		t.Errorf("plain runs in cgroup %s, want one of its own under %s", cg, dir)
	}
	offered, err := cgroup.Controllers(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if slices.Contains(offered, c) {
			continue
		}
		want := "the " + c + " controller is not available"
		j := g.waitState("limited", "failed", 20*time.Second)
		if !strings.Contains(j.Reason, "job limited: cgroup limits: cgroup "+dir) || !strings.Contains(j.Reason, want) || len(j.Processes) != 0 {
			t.Fatalf("status = %+v, want failed, no process, and %q in the reason", j, want)
		}
		if ents, _ := os.ReadDir(dir); slices.ContainsFunc(ents, func(e os.DirEntry) bool { return strings.HasPrefix(e.Name(), "limited.") }) {
			t.Errorf("a cgroup of the job that did not start is left in %s", dir)
		}
		t.Skipf("%s offers no %s controller (cgroup.controllers: %q): the error was checked, not the limits", dir, c, offered)
	}
	pid = g.running("limited")
	cg := filepath.Join(v2Mount, cgroupOf(t, pid))
	for file, want := range map[string]string{"memory.max": "67108864", "memory.high": "50331648", "pids.max": "50",
		"cpu.max": "50000 100000", "cpu.weight": "200"} {
		if b, err := os.ReadFile(filepath.Join(cg, file)); err != nil || strings.TrimSpace(string(b)) != want {
			t.Errorf("%s/%s = %q, %v; want %s", cg, file, b, err, want)
		}
	}
}

// TestDelegatedCgroup: god started in a cgroup marked delegated (trusted.delegate=1, as systemd
// marks a unit with Delegate=yes), without --cgroup, uses it: it says so, moves itself into the
// leaf DIR/god, starts each job process in a cgroup beside it, and a daemon that a job's process
// double-forked (setsid) is in the job's cgroup and ends with the job, also after a god upgrade.
func TestDelegatedCgroup(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("marking a cgroup delegated (trusted.delegate) needs root")
	}
	dir := cgroupDir(t)
	if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) {
			t.Skipf("cannot mark %s delegated: %v", dir, err)
		}
		t.Fatal(err)
	}
	arg := strconv.Itoa(6000 + os.Getpid()%1000)
	t.Cleanup(func() {
		for _, pid := range sleepersWith(arg) {
			t.Errorf("leaked daemon %d (sleep %s): killing it", pid, arg)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	g := newGod(t)
	// god is started in the delegated cgroup, as systemd starts a service in its unit's cgroup.
	g.bin = writeExecutable(t, t.TempDir(), "god", []byte("#!/bin/sh\necho $$ > "+sq(dir+"/cgroup.procs")+" || exit 99\nexec "+sq(godBin)+` "$@"`+"\n"))
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"forky": {Exec: shJob(`sh -c 'setsid sh -c "exec sleep ` + arg + `" &' ; exec sleep 1000`), Auto: autoTrue},
	}})
	g.start()
	rel := strings.TrimPrefix(dir, v2Mount)
	r := g.waitLog(10*time.Second, "the containment record", func(r record) bool { return r.Msg == "containment" })
	if r.str("mode") != "cgroup "+dir || !strings.Contains(r.str("why"), "trusted.delegate=1") {
		g.fatalf("containment: mode %q, why %q; want cgroup %s, delegated by trusted.delegate", r.str("mode"), r.str("why"), dir)
	}
	if cg := cgroupOf(t, g.cmd.Process.Pid); cg != rel+"/god" {
		t.Errorf("god runs in cgroup %s, want its leaf %s/god", cg, rel)
	}
	pid := g.running("forky")
	jobCg := cgroupOf(t, pid)
	if !strings.HasPrefix(jobCg, rel+"/forky.") {
		t.Errorf("forky runs in cgroup %s, want one of its own under %s", jobCg, rel)
	}
	eventually(t, 10*time.Second, "the daemon started", func() bool { return len(sleepersWith(arg)) == 1 })
	daemon := sleepersWith(arg)[0]
	if cg := cgroupOf(t, daemon); cg != jobCg {
		t.Errorf("the daemon %d runs in cgroup %s, not its job's %s", daemon, cg, jobCg)
	}
	// god upgrade: the new image finds itself in the leaf and takes the delegated cgroup again
	// (not the leaf, which it does not own), and still holds the daemon with its job.
	mark := g.mark()
	if r := g.mustCLI("upgrade"); !strings.Contains(r.stdout, "upgraded") {
		t.Fatalf("upgrade: %q", r.stdout)
	}
	r = g.waitLogFrom(mark, 30*time.Second, "the new image's containment record", func(r record) bool { return r.Msg == "containment" })
	if r.str("mode") != "cgroup "+dir || !strings.Contains(r.str("why"), "trusted.delegate=1") {
		g.fatalf("after the upgrade: containment mode %q, why %q; want cgroup %s again", r.str("mode"), r.str("why"), dir)
	}
	if cg := cgroupOf(t, g.cmd.Process.Pid); cg != rel+"/god" {
		t.Errorf("after the upgrade god runs in cgroup %s, want its leaf %s/god", cg, rel)
	}
	if p := g.running("forky"); p != pid {
		t.Errorf("forky's process %d was replaced by %d in the upgrade", pid, p)
	}
	g.mustCLI("stop", "forky")
	g.waitState("forky", "stopped", 10*time.Second)
	if left := sleepersWith(arg); len(left) > 0 {
		g.fatalf("after god stop: daemons %v still run", left)
	}
	if _, err := os.Stat(filepath.Join(v2Mount, jobCg)); !os.IsNotExist(err) {
		t.Errorf("the job's cgroup %s is left: %v", jobCg, err)
	}
}

// TestCgroupOwnDir: `--cgroup DIR` naming the cgroup god was started in (god.service used to
// suggest that with Delegate=yes) makes god leave it for the leaf DIR/god, so that DIR holds no
// process of its own and job cgroups beside the leaf can get controllers.
func TestCgroupOwnDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("moving god into a test cgroup needs root here")
	}
	dir := cgroupDir(t)
	g := newGod(t)
	g.bin = writeExecutable(t, t.TempDir(), "god", []byte("#!/bin/sh\necho $$ > "+sq(dir+"/cgroup.procs")+" || exit 99\nexec "+sq(godBin)+` "$@"`+"\n"))
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{"plain": {Exec: sleeper, Auto: autoTrue}}})
	g.start("--cgroup", dir)
	r := g.waitLog(10*time.Second, "the containment record", func(r record) bool { return r.Msg == "containment" })
	if r.str("mode") != "cgroup "+dir || !strings.Contains(r.str("why"), "god's own cgroup") {
		g.fatalf("containment: mode %q, why %q", r.str("mode"), r.str("why"))
	}
	rel := strings.TrimPrefix(dir, v2Mount)
	if cg := cgroupOf(t, g.cmd.Process.Pid); cg != rel+"/god" {
		t.Errorf("god runs in cgroup %s, want its leaf %s/god", cg, rel)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err != nil || len(b) != 0 {
		t.Errorf("%s still holds processes %q (%v)", dir, b, err)
	}
	if cg := cgroupOf(t, g.running("plain")); !strings.HasPrefix(cg, rel+"/plain.") {
		t.Errorf("plain runs in cgroup %s, want one of its own under %s", cg, rel)
	}
}
