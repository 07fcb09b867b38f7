package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// Tests of the job properties that set up a process's environment: user, group, groups,
// umask, limit, env-file, and critical (docs/protocol.md, "Extension properties").

// reply is a Props snippet answering items.
func reply(items ...string) string { return "echo " + sq(jsonArray(items...)) }

// needRoot skips tests that switch users.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("switching a job's user needs god to run as root; these tests run as uid", os.Geteuid())
	}
}

// procField is a field of /proc/PID/status ("Uid", "Groups", "Umask"), white space collapsed.
func procField(t *testing.T, pid int, field string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.Join(strings.Fields(v), " ")
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return ""
}

// openFiles is the soft and hard "Max open files" of /proc/PID/limits.
func openFiles(t *testing.T, pid int) (string, string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			return f[0], f[1]
		}
	}
	t.Fatalf("/proc/%d/limits has no open files line", pid)
	return "", ""
}

// limitLine is the soft and hard values of a /proc/PID/limits line that starts with name.
func limitLine(t *testing.T, pid int, name string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			return f[0], f[1]
		}
	}
	t.Fatalf("/proc/%d/limits has no %s line", pid, name)
	return "", ""
}

// running waits for job name to run and its process to be sleep (a shim went before it:
// the job counts as started from the fork), and returns its one pid.
func (g *god) running(name string) int {
	g.t.Helper()
	pid := pidOf(g.t, g.waitState(name, "run", 20*time.Second))
	eventually(g.t, 20*time.Second, "job "+name+" execs sleep", func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(b)) == "sleep"
	})
	return pid
}

// TestJobAsUser: a job with user nobody runs as nobody with nobody's groups and passwd
// environment (env wins over it); groups replaces the groups; the job's unix socket is
// owned by nobody. Jobs start directly (Credential) and through the LISTEN_PID shim.
func TestJobAsUser(t *testing.T) {
	needRoot(t)
	g := newGod(t)
	sock := filepath.Join(t.TempDir(), "web.sock")
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"web": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue, Env: []string{"SHELL=/bin/custom"},
			Props: map[string]string{"user": reply("nobody")}},
		"grouped": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue,
			Props: map[string]string{"user": reply("65534"), "group": reply("100"), "groups": reply("4", "24")}},
		"sock": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue,
			Props: map[string]string{"user": reply("nobody"), "listen": reply("s=unix://" + sock)}},
	}})
	g.start()

	pid := g.running("web")
	for field, want := range map[string]string{"Uid": "65534 65534 65534 65534", "Gid": "65534 65534 65534 65534", "Groups": "65534"} {
		if got := procField(t, pid, field); got != want {
			t.Errorf("web: %s = %q, want %q", field, got, want)
		}
	}
	for key, want := range map[string]string{"HOME": "/nonexistent", "USER": "nobody", "LOGNAME": "nobody", "SHELL": "/bin/custom"} {
		if got := envValue(pid, key); got != want {
			t.Errorf("web: %s = %q, want %q", key, got, want)
		}
	}

	pid = g.running("grouped")
	for field, want := range map[string]string{"Uid": "65534 65534 65534 65534", "Gid": "100 100 100 100", "Groups": "4 24"} {
		if got := procField(t, pid, field); got != want {
			t.Errorf("grouped: %s = %q, want %q", field, got, want)
		}
	}

	pid = g.running("sock")
	if got := procField(t, pid, "Uid"); got != "65534 65534 65534 65534" {
		t.Errorf("sock: Uid = %q", got)
	}
	if envValue(pid, "LISTEN_PID") != fmt.Sprint(pid) {
		t.Errorf("sock: LISTEN_PID = %q, want %d", envValue(pid, "LISTEN_PID"), pid)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(sock, &st); err != nil || st.Uid != 65534 {
		t.Errorf("socket file: uid %d, %v; want owned by nobody", st.Uid, err)
	}
	// god status says whom the job runs as.
	if j, _ := g.job("web"); j.User != "nobody" {
		t.Errorf("status of web: user %q, want nobody", j.User)
	}
	if r := g.mustCLI("status", "web"); !strings.Contains(r.stdout, "USER") || !strings.Contains(r.stdout, "nobody") {
		t.Errorf("god status web shows no USER nobody:\n%s", r.stdout)
	}
}

// TestJobAsUserUnknown: an unknown user is an error naming the job and user; no process
// starts, and the job ends failed with that reason in its status and god's log.
func TestJobAsUserUnknown(t *testing.T) {
	g := newGod(t)
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"web": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue,
			Props: map[string]string{"user": reply("nosuch"), "restart-limit": reply("1"), "restart-delay": reply("10")}},
	}})
	g.start()
	const want = `job web: user "nosuch": unknown user`
	j := g.waitState("web", "failed", 20*time.Second)
	if !strings.Contains(j.LastExit, want) || !strings.Contains(j.Reason, want) || len(j.Processes) != 0 {
		t.Errorf("status = %+v, want failed, no process, %q in last exit and reason", j, want)
	}
	g.waitLog(10*time.Second, "the cannot-start record", func(r record) bool {
		return r.str("job") == "web" && strings.Contains(r.str("err"), want)
	})
}

// TestJobUmask: umask and limits go through god's own binary as a shim, which switches to the
// job's user last: a raised hard limit holds for a job run as nobody.
func TestJobUmask(t *testing.T) {
	needRoot(t)
	g := newGod(t)
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"web": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue, Props: map[string]string{
			"user": reply("nobody"), "umask": reply("0027"), "limit": reply("core=infinity", "msgqueue=1000:2000")}},
		"root": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue, Props: map[string]string{"umask": reply("077")}},
	}})
	g.start()
	pid := g.running("web")
	if got := procField(t, pid, "Umask"); got != "0027" {
		t.Errorf("web: Umask = %q, want 0027", got)
	}
	if got := procField(t, pid, "Uid"); got != "65534 65534 65534 65534" {
		t.Errorf("web: Uid = %q", got)
	}
	if s, h := limitLine(t, pid, "Max core file size"); s != "unlimited" || h != "unlimited" {
		t.Errorf("web: core = %s:%s, want unlimited", s, h)
	}
	if s, h := limitLine(t, pid, "Max msgqueue size"); s != "1000" || h != "2000" {
		t.Errorf("web: msgqueue = %s:%s, want 1000:2000", s, h)
	}
	pid = g.running("root")
	if got := procField(t, pid, "Umask"); got != "0077" {
		t.Errorf("root: Umask = %q, want 0077", got)
	}
}

// TestJobLimitNofile: under a god started with `ulimit -n 1024` (which Go raises for god
// itself), a job without limit gets 1024, one with limit nofile its own, and a job that goes
// through the shim for its umask gets 1024 too.
func TestJobLimitNofile(t *testing.T) {
	g := newGod(t)
	var hard syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &hard); err != nil || hard.Max < 8192 {
		t.Skipf("hard RLIMIT_NOFILE %d is too low for this test (%v)", hard.Max, err)
	}
	g.bin = writeExecutable(t, t.TempDir(), "god", []byte("#!/bin/sh\nulimit -S -n 1024 || exit 99\nexec "+sq(godBin)+` "$@"`+"\n"))
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"plain":   {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue},
		"limited": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue, Props: map[string]string{"limit": reply("nofile=4096:8192")}},
		"masked":  {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue, Props: map[string]string{"umask": reply("0022")}},
	}})
	g.start()
	godSoft, _ := openFiles(t, g.cmd.Process.Pid)
	t.Logf("god's own soft RLIMIT_NOFILE: %s (started with 1024)", godSoft)
	if godSoft == "1024" {
		t.Logf("god did not raise its own limit; the test still checks the jobs")
	}
	for job, want := range map[string][2]string{
		"plain":   {"1024", fmt.Sprint(hard.Max)},
		"limited": {"4096", "8192"},
		"masked":  {"1024", fmt.Sprint(hard.Max)},
	} {
		pid := g.running(job)
		if s, h := openFiles(t, pid); s != want[0] || h != want[1] && want[1] != "" {
			t.Errorf("%s: open files %s:%s, want %s:%s", job, s, h, want[0], want[1])
		}
	}
}

// TestJobEnvFileReload: env-file is read at each start, so a reload picks up a changed file;
// env wins over it; a parse error names job, file and line, and the process does not start.
func TestJobEnvFileReload(t *testing.T) {
	g := newGod(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "web.env")
	bad := filepath.Join(dir, "bad.env")
	write := func(path, s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "# web\nGREETING='hello world'\nexport OVERRIDE=file\n")
	write(bad, "A=1\nnot an assignment\n")
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"web": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue, Env: []string{"OVERRIDE=env"},
			Props: map[string]string{"env-file": reply(file, "-"+filepath.Join(dir, "missing.env"))}},
		"broken": {Exec: []string{"/bin/sleep", "1000"}, Auto: autoTrue,
			Props: map[string]string{"env-file": reply(bad), "restart-limit": reply("1"), "restart-delay": reply("10")}},
	}})
	g.start()
	pid := g.running("web")
	if got := envValue(pid, "GREETING"); got != "hello world" {
		t.Errorf("GREETING = %q, want hello world", got)
	}
	if got := envValue(pid, "OVERRIDE"); got != "env" {
		t.Errorf("OVERRIDE = %q, want env (env wins over env-file)", got)
	}
	write(file, "GREETING=\"good \\\"bye\\\"\"\n")
	g.mustCLI("reload", "web")
	g.waitJob("web", 20*time.Second, "running a new process", func(j control.JobStatus) bool {
		return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid != pid
	})
	if got := envValue(g.running("web"), "GREETING"); got != `good "bye"` {
		t.Errorf("after reload GREETING = %q, want the new file's value", got)
	}
	want := "job broken: env-file " + bad + ":2: no '='"
	b := g.waitState("broken", "failed", 20*time.Second)
	if !strings.Contains(b.LastExit, want) || len(b.Processes) != 0 {
		t.Errorf("broken = %+v, want failed with %q", b, want)
	}
}

// TestJobCriticalFails: a critical job that fails makes god stop its other jobs and exit with
// the job's exit status.
func TestJobCriticalFails(t *testing.T) {
	g := newGod(t)
	writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
		"side": {Exec: sleeper, Auto: autoTrue},
		"main": {Exec: shJob("exit 3"), Auto: []string{"side"}, Restart: []string{"never"},
			Props: map[string]string{"critical": reply("true")}},
	}})
	g.start()
	if code := g.wait(30 * time.Second); code != 3 {
		t.Fatalf("god exited %d, want 3 (the critical job's status)\n%s", code, g.dump())
	}
	g.waitLog(time.Second, "critical record", func(r record) bool {
		return strings.HasPrefix(r.Msg, "critical job ended") && r.str("job") == "main"
	})
	g.waitLog(time.Second, "side stopped", func(r record) bool { return r.Msg == "exited" && r.str("job") == "side" })
	g.waitLog(time.Second, "orderly end", func(r record) bool { return r.Msg == "every job stopped; god exits" })
}

// TestJobCriticalEnds: a critical job killed by a signal ends god with 128+N; one that is done
// (exit 0, restart on-failure) ends it with 0.
func TestJobCriticalEnds(t *testing.T) {
	for _, tc := range []struct {
		script, restart string
		want            int
	}{
		{"kill -KILL $$", "never", 128 + 9},
		{"exit 0", "on-failure", 0},
	} {
		g := newGod(t)
		writeLoader(t, g.dir, "jobs", bashLoader{Jobs: map[string]bashJob{
			"main": {Exec: shJob(tc.script), Auto: autoTrue, Restart: []string{tc.restart},
				Props: map[string]string{"critical": reply("true")}},
		}})
		g.start()
		if code := g.wait(30 * time.Second); code != tc.want {
			t.Errorf("%q: god exited %d, want %d\n%s", tc.script, code, tc.want, g.dump())
		}
	}
}
