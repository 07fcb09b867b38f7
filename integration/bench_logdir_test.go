package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkLogDir measures god's log files: one job writes logDirLines numbered lines as fast as
// it can (`seq`) with --log-dir on (default --log-size 10 MiB, --log-keep 10: the run rotates a few
// times), and the benchmark times them from the start signal until the job's last line is in
// DIR/JOB/current, then checks that every line is in the files once, in order. god's own log stays
// at info (each line is also a JSON record on god's stdout, as by default). When runit's svlogd
// (PATH or WATCHGOD_RUNIT_BIN) and s6's s6-log (PATH or WATCHGOD_S6_BIN) are found, the same lines
// piped into `svlogd -tt` and `s6-log t` (same size and keep, timestamps on) are timed beside it.
func BenchmarkLogDir(b *testing.B) {
	const logDirLines = 1_000_000
	var f figures
	asTest(b, func(t testing.TB) {
		rate, bytes, dropped := logDirRun(t, logDirLines)
		f.add("logdir-lines/s", rate, fmt.Sprintf("%d lines into DIR/JOB/current, %.1f MB/s, god's JSON log on too", logDirLines, rate*bytes/1e6))
		f.add("logdir-dropped-lines", float64(dropped), "lines god dropped because the disk did not keep up")
		// The files alone: god's own log at warn, so the job's lines are not also JSON records on
		// god's stdout (what a god under systemd with --log-dir would be set to).
		warn := []string{"--log-level", "warn"}
		if dir := os.Getenv("GOD_BENCH_PROFILE"); dir != "" {
			// Profiles of god for pprof, of this run: CPU until god exits, heap when it is told to.
			warn = append(warn, "--cpuprofile", filepath.Join(dir, "logdir.cpu"), "--memprofile", filepath.Join(dir, "logdir.heap"))
		}
		rate, bytes, _ = logDirRun(t, logDirLines, warn...)
		f.add("logdir-only-lines/s", rate, fmt.Sprintf("%d lines into DIR/JOB/current, %.1f MB/s, god's own log at warn", logDirLines, rate*bytes/1e6))
		if svlogd, err := findRunit("svlogd"); err != nil {
			f.notef("svlogd: %v; not compared", err)
		} else {
			rate = pipeLoggerRun(t, "svlogd", logDirLines, func(dir string) string {
				if err := os.WriteFile(filepath.Join(dir, "config"), []byte("s10485760\nn10\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return svlogd + " -tt " + dir
			})
			f.add("svlogd-lines/s", rate, fmt.Sprintf("seq 1 %d | svlogd -tt (s10485760, n10), same disk", logDirLines))
		}
		if s6log, err := findS6Log(); err != nil {
			f.notef("s6-log: %v; not compared", err)
		} else {
			rate = pipeLoggerRun(t, "s6-log", logDirLines, func(dir string) string {
				return s6log + " -b -- t s10485760 n10 " + dir
			})
			f.add("s6-log-lines/s", rate, fmt.Sprintf("seq 1 %d | s6-log t s10485760 n10 (TAI64N stamps), same disk", logDirLines))
		}
	})
	f.report(b)
}

// logDirRun runs one job of n lines under a god with --log-dir, and returns
// lines per second into the files, the mean record size, and the lines god said it dropped.
func logDirRun(t testing.TB, n int, flags ...string) (rate, recBytes float64, dropped int) {
	t.Helper()
	logDir := filepath.Join(t.TempDir(), "logs")
	goFile := filepath.Join(t.TempDir(), "go")
	script := `i=0; while [ ! -e "$0" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; seq 1 ` + strconv.Itoa(n) + `; echo end; exec sleep 1000`
	q := startQuietGod(t, bashLoader{Jobs: map[string]bashJob{
		"chatty": {Exec: []string{"/bin/sh", "-c", script, goFile}, Auto: autoTrue, Restart: []string{"never"}},
	}}, append([]string{"--log-dir", logDir}, flags...)...)
	eventually(t, 10*time.Second, "job chatty known", func() bool {
		return runCLI(t, nil, "status", "chatty", "--socket", q.socket).code == 0
	})
	current := filepath.Join(logDir, "chatty", "current")
	tGo := time.Now()
	if err := os.WriteFile(goFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 120*time.Second, "the job's end line in its current", func() bool {
		return fileEndsWith(current, " end\n")
	})
	took := time.Since(tGo)

	// Every line once, in order, across the rotated files and current.
	dir := filepath.Dir(current)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if e.Name() != "current" {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	names = append(names, "current")
	next, total := 1, int64(0)
	for _, name := range names {
		fh, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			l := sc.Text()
			total += int64(len(l) + 1)
			fields := strings.SplitN(l, " ", 5)
			if len(fields) != 5 {
				t.Fatalf("%s: not a record: %q", name, l)
			}
			if fields[1] == "god" {
				if d, _, ok := strings.Cut(fields[4], " lines dropped"); ok {
					k, _ := strconv.Atoi(d)
					dropped += k
					next += k // lost lines leave a gap of that size
				}
				continue
			}
			if fields[4] == "end" {
				continue
			}
			if v, err := strconv.Atoi(fields[4]); err != nil || v != next {
				t.Fatalf("%s: line %q, want %d", name, l, next)
			}
			next++
		}
		fh.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if next != n+1 {
		t.Fatalf("%d lines in the files (%d dropped), want %d", next-1-dropped, dropped, n)
	}
	return float64(n) / took.Seconds(), float64(total) / float64(n), dropped
}

// fileEndsWith reports whether path ends with suffix (read from its end, not whole).
func fileEndsWith(path, suffix string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < int64(len(suffix)) {
		return false
	}
	buf := make([]byte, len(suffix))
	if _, err := f.ReadAt(buf, fi.Size()-int64(len(suffix))); err != nil {
		return false
	}
	return string(buf) == suffix
}

// findS6Log finds s6's s6-log: in $WATCHGOD_S6_BIN (with its libraries in $WATCHGOD_S6_LIB, as
// scripts/bench unpacks Debian's s6 without installing it) or in PATH.
func findS6Log() (string, error) {
	if d := os.Getenv("WATCHGOD_S6_BIN"); d != "" {
		p := filepath.Join(d, "s6-log")
		if _, err := os.Stat(p); err == nil {
			if lib := os.Getenv("WATCHGOD_S6_LIB"); lib != "" {
				return "LD_LIBRARY_PATH=" + lib + " " + p, nil
			}
			return p, nil
		}
	}
	p, err := exec.LookPath("s6-log")
	if err != nil {
		return "", fmt.Errorf("s6-log not found (install Debian's s6, or set WATCHGOD_S6_BIN)")
	}
	return p, nil
}

// pipeLoggerRun pipes n lines from seq into the logger that command(dir) runs (writing into
// dir) and returns lines per second until the logger exited (svlogd and s6-log write everything
// before they exit at the end of their input); it checks that every line is in dir.
func pipeLoggerRun(t testing.TB, name string, n int, command func(dir string) string) float64 {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("/bin/sh", "-c", "seq 1 "+strconv.Itoa(n)+" | "+command(dir))
	t0 := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("seq | %s: %v\n%s", name, err, out)
	}
	took := time.Since(t0)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	for _, e := range ents {
		if e.Name() == "current" || strings.HasPrefix(e.Name(), "@") {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			lines += strings.Count(string(b), "\n")
		}
	}
	if lines != n {
		t.Fatalf("%s wrote %d lines, want %d", name, lines, n)
	}
	return float64(n) / took.Seconds()
}
