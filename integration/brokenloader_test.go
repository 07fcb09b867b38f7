package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// healthy writes a well-behaved loader with one job, "steady", whose checks note each call in a
// file; it returns that file.
func healthy(t testing.TB, g *god) string {
	t.Helper()
	checks := filepath.Join(t.TempDir(), "steady.checks")
	writeLoader(t, g.dir, "healthy", bashLoader{Jobs: map[string]bashJob{
		"steady": {Exec: sleeper, Auto: autoTrue, Check: "echo x >> " + sq(checks) + "; " + checkOK("100")},
	}})
	return checks
}

// lines counts the lines of a file (0 when it does not exist).
func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// namesLoader matches an error record that names the loader file.
func namesLoader(path string) func(record) bool {
	return func(r record) bool {
		return r.Level == "ERROR" && strings.Contains(r.Raw, path)
	}
}

// TestBrokenLoaders runs loaders that turn bad while their job runs. Each time, god logs an error
// naming the loader file, and neither that job nor the job of a healthy loader beside it is
// touched: same pid, still running, and the healthy job is still checked.
func TestBrokenLoaders(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		flags []string
		// bad is run for every request once the marker file exists ($M).
		bad string
		// touch: the misbehaviour shows when the loader is read again, so the test changes the file.
		touch bool
	}{
		{name: "crash-on-check", bad: `case "$req" in *'"check"'*) exit 3 ;; esac`},
		{name: "hang-on-check", flags: []string{"--check-timeout", "500ms"}, bad: `case "$req" in *'"check"'*) exec sleep 1000 ;; esac`},
		{name: "garbage", bad: `echo 'this is not json'`},
		{name: "flood", bad: `case "$req" in *'"check"'*) head -c 2000000 /dev/zero | tr '\0' x ;; esac`},
		{name: "too-late", flags: []string{"--loader-timeout", "500ms"}, touch: true, bad: `case "$req" in *'"exec"'*) sleep 3 ;; esac`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := newGod(t)
			checks := healthy(t, g)
			marker := filepath.Join(t.TempDir(), "marker")
			path := writeLoader(t, g.dir, "broken", bashLoader{
				Jobs:      map[string]bashJob{"victim": {Exec: sleeper, Auto: autoTrue, Check: checkOK("200")}},
				OnRequest: "\tif [ -e " + sq(marker) + " ]; then " + tc.bad + "; fi",
			})
			g.start(tc.flags...)
			steady := pidOf(t, g.waitState("steady", "run", 10*time.Second))
			victim := pidOf(t, g.waitState("victim", "run", 10*time.Second))

			from := g.mark()
			if err := os.WriteFile(marker, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.touch {
				later := time.Now().Add(time.Minute)
				if err := os.Chtimes(path, later, later); err != nil {
					t.Fatal(err)
				}
			}
			first := g.waitLogFrom(from, 10*time.Second, "an error naming "+path, namesLoader(path))
			t.Logf("god: %s", first.Raw)
			checked := lines(checks)
			// A second failure shows the loader is retried, and the jobs still stand.
			g.waitLogFrom(g.mark(), 10*time.Second, "a second error naming "+path, namesLoader(path))
			eventually(t, 5*time.Second, "steady checked again", func() bool { return lines(checks) >= checked+2 })

			for name, pid := range map[string]int{"steady": steady, "victim": victim} {
				j, _ := g.job(name)
				if j.State != "run" || len(j.Processes) != 1 || j.Processes[0].Pid != pid {
					g.fatalf("job %s changed: want run with pid %d, have %+v", name, pid, j)
				}
			}
			if n := len(g.logs(0, func(r record) bool {
				return (r.str("job") == "victim" || r.str("job") == "steady") && (r.Msg == "exited" || r.Msg == "started" && r.int("pid") != victim && r.int("pid") != steady)
			})); n > 0 {
				g.fatalf("a job was restarted")
			}
		})
	}
}

// TestNotALoader: a file that does not speak godv1 is reported once, by name, and left alone
// until it changes; rewritten as a loader, its job appears.
func TestNotALoader(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	healthy(t, g)
	path := writeExecutable(t, g.dir, "notgod", []byte("#!/bin/sh\necho $$ >> \"$GOD_TEST_PIDS\"\necho 'hello, I am a shell script'\nexec sleep 1000\n"))
	g.start()
	steady := pidOf(t, g.waitState("steady", "run", 10*time.Second))
	isReport := func(r record) bool {
		return strings.Contains(r.Msg, "does not speak godv1") && strings.Contains(r.Msg, path)
	}
	g.waitLog(10*time.Second, "the not-godv1 report", isReport)
	// Rescans (which wait for every load to finish) do not run it again, and succeed: a file god
	// ignores is no error (systemd's ExecReload=god rescan must not fail for it).
	for range 2 {
		if r := g.cli("rescan"); r.code != 0 || !strings.Contains(r.stdout, "1 files that do not speak godv1 ignored") {
			t.Fatalf("god rescan: exit %d: %s%s; want 0 saying the file is ignored", r.code, r.stdout, r.stderr)
		}
	}
	if n := len(g.logs(0, isReport)); n != 1 {
		t.Errorf("reported %d times, want once", n)
	}

	writeLoader(t, g.dir, "notgod", bashLoader{Jobs: map[string]bashJob{"convert": {Exec: sleeper, Auto: autoTrue}}})
	g.waitState("convert", "run", 10*time.Second)
	if j, _ := g.job("steady"); j.State != "run" || pidOf(t, j) != steady {
		t.Errorf("steady changed: %+v", j)
	}
	if n := len(g.logs(0, isReport)); n != 1 {
		t.Errorf("reported %d times, want once", n)
	}
}

// TestLoaderCrashLogs: a loader that exits before its handshake is logged once an attempt, with
// the attempt's real failure count and delay, and an error that says what happened (its exit
// status) without repeating itself or leaking god's internals.
func TestLoaderCrashLogs(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	path := writeExecutable(t, g.dir, "crashy", []byte("#!/bin/sh\necho $$ >> \"$GOD_TEST_PIDS\"\nexit 3\n"))
	g.start()
	isFailure := func(r record) bool { return r.Level == "ERROR" && strings.Contains(r.Raw, path) }
	eventually(t, 30*time.Second, "4 failures of "+path, func() bool { return len(g.logs(0, isFailure)) >= 4 })
	recs := g.logs(0, isFailure)[:4]
	var delays []time.Duration
	for i, r := range recs {
		if n := r.int("failures"); n != i+1 {
			g.fatalf("record %d says failures=%d, want %d (one record an attempt): %s", i, n, i+1, r.Raw)
		}
		d, err := time.ParseDuration(r.str("retry_in"))
		if err != nil {
			g.fatalf("record %d: retry_in %q: %v", i, r.str("retry_in"), err)
		}
		delays = append(delays, d)
		msg := r.str("err")
		if !strings.Contains(msg, "exit 3") || strings.Count(msg, "handshake") > 1 || strings.Count(msg, "loader ") > 1 || strings.Contains(msg, "loader: ") || strings.Contains(msg, "already closed") {
			g.fatalf("record %d: err %q: want the exit status, said once, no internals", i, msg)
		}
	}
	for i := 1; i < len(delays); i++ {
		if delays[i] < delays[i-1] || i == len(delays)-1 && delays[i] <= delays[0] {
			g.fatalf("delays %v do not grow", delays)
		}
	}
}

// TestNotExecutableSaidOnce: a loader copied without execute bits is named once, not skipped
// without a word, and not again at each rescan; made executable, it runs.
func TestNotExecutableSaidOnce(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	healthy(t, g)
	path := filepath.Join(g.dir, "plain")
	if err := writeNoFork(path, []byte(bashLoader{Jobs: map[string]bashJob{"plainjob": {Exec: sleeper, Auto: autoTrue}}}.script()), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	isReport := func(r record) bool { return strings.Contains(r.Msg, "not executable") && strings.Contains(r.Msg, path) }
	g.waitLog(10*time.Second, "the not-executable report", isReport)
	for range 2 {
		g.mustCLI("rescan")
	}
	if n := len(g.logs(0, isReport)); n != 1 {
		t.Errorf("reported %d times, want once", n)
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	g.mustCLI("rescan")
	g.waitState("plainjob", "run", 10*time.Second)
}

// TestWritableLoaderRefused: a root god refuses a loader that another user could have written
// (the file, or its directory, writable by group or others), as cron and sudo do, and says why
// once; made safe, it runs.
func TestWritableLoaderRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the rule applies to a god running as root")
	}
	t.Parallel()
	g := newGod(t)
	healthy(t, g)
	path := writeLoader(t, g.dir, "open", bashLoader{Jobs: map[string]bashJob{"openjob": {Exec: sleeper, Auto: autoTrue}}})
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	g.start()
	isRefusal := func(r record) bool {
		return r.Level == "ERROR" && strings.Contains(r.Msg, path+" refused") && strings.Contains(r.Msg, "writable by group or others")
	}
	g.waitLog(10*time.Second, "the refusal of the world-writable loader", isRefusal)
	g.mustCLI("rescan")
	if n := len(g.logs(0, isRefusal)); n != 1 {
		t.Errorf("refused %d times in the log, want once", n)
	}
	if _, ok := g.job("openjob"); ok {
		g.fatalf("the refused loader's job is defined")
	}
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	g.mustCLI("rescan")
	g.waitState("openjob", "run", 10*time.Second)

	// Its directory writable by others: refused too (the file could be replaced).
	if err := os.Chmod(g.dir, 0o777); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(g.dir, 0o755) })
	other := writeLoader(t, g.dir, "other", bashLoader{Jobs: map[string]bashJob{"otherjob": {Exec: sleeper, Auto: autoTrue}}})
	g.waitLog(10*time.Second, "the refusal of a loader in a world-writable directory", func(r record) bool {
		return r.Level == "ERROR" && strings.Contains(r.Msg, other+" refused") && strings.Contains(r.Msg, "its directory")
	})
	if j, _ := g.job("openjob"); j.State != "run" {
		g.fatalf("a job of a loader that was read before stopped: %+v", j)
	}
}

// TestSlowHandshakeRetried: a loader that takes longer than the handshake timeout (2 s) to say
// its first line, as any loader may on a machine under load, is tried again with a longer
// timeout instead of being ignored as "does not speak godv1" until it changes.
func TestSlowHandshakeRetried(t *testing.T) {
	t.Parallel()
	g := startSlowLoader(t)
	g.waitState("slowjob", "run", 60*time.Second)
	if n := len(g.logs(0, func(r record) bool { return strings.Contains(r.Msg, "does not speak godv1") })); n > 0 {
		g.fatalf("the slow loader was declared not godv1")
	}
}

// TestHandshakeTimeoutFlag: a loader known to take long to name its jobs (3 s here, as one
// building thousands of jobs may) is given the time with --handshake-timeout, so that god reads
// it at the first try and logs no failure.
func TestHandshakeTimeoutFlag(t *testing.T) {
	t.Parallel()
	g := startSlowLoader(t, "--handshake-timeout", "30s")
	g.waitState("slowjob", "run", 60*time.Second)
	if fails := g.logs(0, func(r record) bool { return r.Level == "ERROR" || r.Level == "WARN" }); len(fails) > 0 {
		g.fatalf("a loader given 30 s for its handshake logged %q", fails[0].Raw)
	}
}

// startSlowLoader starts god with flags and a loader of one job, slowjob, that sleeps 3 s before
// anything else, its handshake too.
func startSlowLoader(t *testing.T, flags ...string) *god {
	g := newGod(t)
	l := bashLoader{Jobs: map[string]bashJob{"slowjob": {Exec: sleeper, Auto: autoTrue}}}
	writeExecutable(t, g.dir, "slow", []byte(strings.Replace(l.script(), "\n", "\nsleep 3\n", 1)))
	g.start(flags...)
	return g
}
