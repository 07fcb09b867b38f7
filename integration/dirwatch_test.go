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
	if err := writeNoFork(path, []byte(envLoader("d1", "two").script()), 0o755); err != nil {
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
	if err := writeNoFork(tmp, []byte(envLoader("d1", "three").script()), 0o755); err != nil {
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

// TestLoaderDirReplaced: the loader directory removed and created again, renamed away with
// another moved in, or (as a symlink) switched to another directory: god says so and runs what
// the new directory holds. While the directory is missing, the jobs it had keep running.
func TestLoaderDirReplaced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		symlink bool
		replace func(t *testing.T, dir string) // makes dir a new, empty directory
	}{
		{"removed and created again", false, func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"renamed away, another moved in", false, func(t *testing.T, dir string) {
			if err := os.Rename(dir, dir+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(dir+".new", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dir+".new", dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"symlink switched", true, func(t *testing.T, dir string) {
			next := dir + ".v2"
			if err := os.Mkdir(next, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(next, dir+".tmp"); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dir+".tmp", dir); err != nil { // what `mv -T` does
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGod(t)
			if tc.symlink {
				real := g.dir + ".v1"
				if err := os.Rename(g.dir, real); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(real, g.dir); err != nil {
					t.Fatal(err)
				}
			}
			writeLoader(t, g.dir, "first", envLoader("one", "1"))
			g.start()
			pid := pidOf(t, g.waitState("one", "run", 10*time.Second))
			from := g.mark()
			tc.replace(t, g.dir)
			t0 := time.Now()
			writeLoader(t, g.dir, "second", envLoader("two", "2"))
			g.waitState("two", "run", 10*time.Second)
			t.Logf("the new directory's loader ran its job %s after it was written", time.Since(t0).Round(time.Millisecond))
			g.waitLogFrom(from, 5*time.Second, "god saying what happened to the directory", func(r record) bool {
				return strings.HasPrefix(r.Msg, "loader directory ") && r.str("dir") == g.dir
			})
			// The old directory's loader is gone: its job goes the way of a removed loader.
			g.waitGone("one", 10*time.Second)
			if alive(pid) {
				t.Errorf("the old loader's job (pid %d) still runs", pid)
			}
		})
	}
}

// TestLoaderDirMissing: while the loader directory does not exist, its jobs keep running, and
// god rescan says why it reads nothing.
func TestLoaderDirMissing(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "first", envLoader("one", "1"))
	g.start()
	pid := pidOf(t, g.waitState("one", "run", 10*time.Second))
	from := g.mark()
	if err := os.Rename(g.dir, g.dir+".away"); err != nil {
		t.Fatal(err)
	}
	g.waitLogFrom(from, 10*time.Second, "the directory gone", func(r record) bool {
		return strings.HasPrefix(r.Msg, "loader directory ") && strings.Contains(r.Msg, "gone")
	})
	g.cli("rescan")
	g.waitLogFrom(from, 10*time.Second, "rescan saying it cannot read the directory", func(r record) bool {
		return strings.HasPrefix(r.Msg, "cannot read the loader directory")
	})
	if j, _ := g.job("one"); j.State != "run" || pidOf(t, j) != pid {
		g.fatalf("with the directory missing: %+v, want it running on pid %d", j, pid)
	}
	if err := os.Rename(g.dir+".away", g.dir); err != nil {
		t.Fatal(err)
	}
	writeLoader(t, g.dir, "second", envLoader("two", "2"))
	g.waitState("two", "run", 10*time.Second)
	if j, _ := g.job("one"); j.State != "run" || pidOf(t, j) != pid {
		g.fatalf("after the directory came back: %+v, want it running on pid %d", j, pid)
	}
}
