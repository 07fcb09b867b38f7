package integration

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envLoader is a loader of one auto job, name, whose environment has FOO=foo.
func envLoader(name, foo string) bashLoader {
	return bashLoader{Jobs: map[string]bashJob{name: {Exec: sleeper, Auto: autoTrue, Env: []string{"FOO=" + foo}}}}
}

// hasEnv reports whether process pid runs with kv in its environment.
func hasEnv(pid int, kv string) bool { return slices.Contains(envOf(pid), kv) }

// loaderRead matches god's record of a finished read of the loader at path.
func loaderRead(path string) func(record) bool {
	return func(r record) bool { return r.Msg == "loader read" && r.str("loader") == path }
}

// TestLoaderDirInotify changes the loader directory under a running god, which must notice
// through inotify alone: a new file starts its jobs; a rewrite in place and an atomic replace are
// changes (the process is untouched, a restart uses the new definition); removing the file stops
// and forgets its jobs.
func TestLoaderDirInotify(t *testing.T) {
	t.Parallel()
	g := startGod(t)
	path := writeLoader(t, g.dir, "dyn", envLoader("d1", "one"))
	pid := pidOf(t, g.waitState("d1", "run", 10*time.Second))
	if !hasEnv(pid, "FOO=one") {
		t.Fatalf("d1 runs without FOO=one: %v", envOf(pid))
	}

	// Rewritten in place (same inode): read again, process untouched; a restart uses FOO=two.
	from := g.mark()
	if err := os.WriteFile(path, []byte(envLoader("d1", "two").script()), 0o755); err != nil {
		t.Fatal(err)
	}
	g.waitLogFrom(from, 10*time.Second, "dyn read again", loaderRead(path))
	if j, _ := g.job("d1"); j.State != "run" || pidOf(t, j) != pid {
		t.Fatalf("d1 changed by the rewrite: %+v", j)
	}
	g.mustCLI("restart", "d1")
	pid2 := pidOf(t, g.waitState("d1", "run", 5*time.Second))
	if pid2 == pid || !hasEnv(pid2, "FOO=two") {
		t.Fatalf("after restart: pid %d (was %d), env %v; want a new pid with FOO=two", pid2, pid, envOf(pid2))
	}

	// Atomic replace (write a new file, mv new old): a change, not a removal.
	from = g.mark()
	tmp := filepath.Join(filepath.Dir(path), "dyn.new")
	if err := os.WriteFile(tmp, []byte(envLoader("d1", "three").script()), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	g.waitLogFrom(from, 10*time.Second, "dyn read after the replace", loaderRead(path))
	if j, _ := g.job("d1"); j.State != "run" || pidOf(t, j) != pid2 {
		t.Fatalf("d1 changed by the atomic replace: %+v", j)
	}
	if rs := g.logs(from, func(r record) bool { return r.str("job") == "d1" && (r.Msg == "exited" || r.Msg == "started") }); len(rs) > 0 {
		t.Fatalf("d1 was stopped or started by the atomic replace: %s", rs[0].Raw)
	}
	g.mustCLI("restart", "d1")
	if pid3 := pidOf(t, g.waitState("d1", "run", 5*time.Second)); !hasEnv(pid3, "FOO=three") {
		t.Fatalf("after the replace and a restart, env %v; want FOO=three", envOf(pid3))
	}

	// Removed: stopped and forgotten.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	g.waitGone("d1", 10*time.Second)
	g.waitLog(time.Second, "loader gone", func(r record) bool { return r.Msg == "loader gone" && r.str("loader") == path })
}

// TestRescanAndSIGHUP: `god rescan` and SIGHUP read a new loader file (created right before, so
// they need not wait for inotify).
func TestRescanAndSIGHUP(t *testing.T) {
	t.Parallel()
	g := startGod(t)
	writeLoader(t, g.dir, "viarescan", envLoader("r1", "x"))
	r := g.mustCLI("rescan")
	if !strings.Contains(r.stdout, "1 jobs") && !strings.Contains(r.stdout, "jobs") {
		t.Errorf("god rescan: %q", r.stdout)
	}
	g.waitState("r1", "run", 10*time.Second)

	from := g.mark()
	writeLoader(t, g.dir, "viahup", envLoader("h1", "x"))
	g.signal(syscall.SIGHUP)
	g.waitLogFrom(from, 5*time.Second, "the SIGHUP rescan", func(r record) bool { return strings.Contains(r.Msg, "SIGHUP") })
	g.waitState("h1", "run", 10*time.Second)
}
