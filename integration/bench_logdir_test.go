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
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// BenchmarkLogDir measures god's log files against runit's svlogd and s6's s6-log, the same way
// for all three: a producer (`sh`) waits on a FIFO for the start signal, then writes logDirLines
// numbered lines as fast as it can (`seq`) and a last line "end", and sleeps; the time runs from
// the signal until "end" is in the logger's current (polled every millisecond), and then every
// line must be in the files once, in order. For god the producer is its job, with --log-dir on
// (default --log-size 10 MiB, --log-keep 10: the run rotates a few times); god's own log stays
// at info in the first run (each line is also a JSON record on god's stdout, as by default) and
// is at warn in the second (the files alone). When svlogd (PATH or WATCHGOD_RUNIT_BIN) and
// s6-log (PATH or WATCHGOD_S6_BIN) are found, the producer is piped into `svlogd -tt` and
// `s6-log t` (same size and keep, timestamps on); the runs alternate god, svlogd, s6-log twice
// and each figure is the better of its two, so that a burst of load on a shared machine does
// not decide the comparison.
func BenchmarkLogDir(b *testing.B) {
	const logDirLines = 1_000_000
	var f figures
	asTest(b, func(t testing.TB) {
		svlogd, svErr := findRunit("svlogd")
		s6log, s6Err := findS6Log()
		var withLog, only, sv, s6 float64
		var withLogBytes, onlyBytes float64
		var rounds [4][]string // each figure of each round, in order: god, god alone, svlogd, s6-log
		round := func(i int, rate float64) float64 {
			rounds[i] = append(rounds[i], fmt.Sprintf("%.0f", rate))
			return rate
		}
		dropped := 0
		for range 2 {
			rate, bytes, d := logDirRun(t, logDirLines)
			round(0, rate)
			dropped += d
			if rate > withLog {
				withLog, withLogBytes = rate, bytes
			}
			// The files alone: god's own log at warn, so the job's lines are not also JSON
			// records on god's stdout (what a god under systemd with --log-dir would be set to).
			warn := []string{"--log-level", "warn"}
			if dir := os.Getenv("GOD_BENCH_PROFILE"); dir != "" && only == 0 {
				// Profiles of god for pprof, of this run: CPU until god exits, heap when it is told to.
				warn = append(warn, "--cpuprofile", filepath.Join(dir, "logdir.cpu"), "--memprofile", filepath.Join(dir, "logdir.heap"))
			}
			rate, bytes, d = logDirRun(t, logDirLines, warn...)
			round(1, rate)
			dropped += d
			if rate > only {
				only, onlyBytes = rate, bytes
			}
			if svErr == nil {
				sv = max(sv, round(2, pipeLoggerRun(t, "svlogd", logDirLines, func(dir string) string {
					if err := os.WriteFile(filepath.Join(dir, "config"), []byte("s10485760\nn10\n"), 0o644); err != nil {
						t.Fatal(err)
					}
					return svlogd + " -tt " + dir
				})))
			}
			if s6Err == nil {
				s6 = max(s6, round(3, pipeLoggerRun(t, "s6-log", logDirLines, func(dir string) string {
					return s6log + " -- t s10485760 n10 " + dir
				})))
			}
		}
		f.add("logdir-lines/s", withLog, fmt.Sprintf("%d lines into DIR/JOB/current, %.1f MB/s, god's JSON log on too (best of %s)", logDirLines, withLog*withLogBytes/1e6, strings.Join(rounds[0], ", ")))
		f.add("logdir-dropped-lines", float64(dropped), "lines god dropped because the disk did not keep up (all 4 runs)")
		f.add("logdir-only-lines/s", only, fmt.Sprintf("%d lines into DIR/JOB/current, %.1f MB/s, god's own log at warn (best of %s)", logDirLines, only*onlyBytes/1e6, strings.Join(rounds[1], ", ")))
		if svErr != nil {
			f.notef("svlogd: %v; not compared", svErr)
		} else {
			f.add("svlogd-lines/s", sv, fmt.Sprintf("seq 1 %d | svlogd -tt (s10485760, n10), same disk (best of %s)", logDirLines, strings.Join(rounds[2], ", ")))
		}
		if s6Err != nil {
			f.notef("s6-log: %v; not compared", s6Err)
		} else {
			f.add("s6-log-lines/s", s6, fmt.Sprintf("seq 1 %d | s6-log t s10485760 n10 (TAI64N stamps), same disk (best of %s)", logDirLines, strings.Join(rounds[3], ", ")))
		}
	})
	f.report(b)
}

// logDirProducer is the shell script of every run: wait for the start signal on the FIFO $0,
// write n numbered lines and "end", stay (so that no logger sees its input end).
func logDirProducer(n int) string {
	return `read -r _ < "$0"; seq 1 ` + strconv.Itoa(n) + `; echo end; exec sleep 1000`
}

// logDirGo gives the start signal on fifo (whose reader may not have opened it yet) and returns
// the time it was given: when the producer's read can return.
func logDirGo(t testing.TB, fifo string) time.Time {
	t.Helper()
	f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // returns once the producer opened its end
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	t0 := time.Now()
	if _, err := f.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	return t0
}

// logDirFifo makes the FIFO of a run's start signal.
func logDirFifo(t testing.TB) string {
	t.Helper()
	fifo := filepath.Join(t.TempDir(), "go")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	return fifo
}

// waitLastLine polls current every millisecond until it ends with the producer's last line
// (no event announces a write to a file), and returns when it saw it.
func waitLastLine(t testing.TB, current string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if fileEndsWith(current, " end\n") {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no end line within %s", current, timeout)
		}
		time.Sleep(time.Millisecond) // polling, bounded by the deadline
	}
}

// logDirRun runs one job of n lines under a god with --log-dir, and returns
// lines per second into the files, the mean record size, and the lines god said it dropped.
func logDirRun(t testing.TB, n int, flags ...string) (rate, recBytes float64, dropped int) {
	t.Helper()
	logDir := filepath.Join(t.TempDir(), "logs")
	fifo := logDirFifo(t)
	q := startQuietGod(t, bashLoader{Jobs: map[string]bashJob{
		"chatty": {Exec: []string{"/bin/sh", "-c", logDirProducer(n), fifo}, Auto: autoTrue, Restart: []string{"never"}},
	}}, append([]string{"--log-dir", logDir}, flags...)...)
	eventually(t, 10*time.Second, "job chatty known", func() bool {
		return runCLI(t, nil, "status", "chatty", "--socket", q.socket).code == 0
	})
	current := filepath.Join(logDir, "chatty", "current")
	tGo := logDirGo(t, fifo)
	took := waitLastLine(t, current, 120*time.Second).Sub(tGo)

	// Every line once, in order, across the rotated files and current.
	dir := filepath.Dir(current)
	names := append(rotatedLogs(t, dir), "current")
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

// pipeLoggerRun pipes the producer of n lines into the logger that command(dir) runs (writing
// into dir, a shell command line), and returns lines per second from the start signal until the
// last line is in dir/current, as logDirRun times god; it checks that every line is in dir once,
// in order.
func pipeLoggerRun(t testing.TB, name string, n int, command func(dir string) string) float64 {
	t.Helper()
	dir := t.TempDir()
	fifo := logDirFifo(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	producer := exec.Command("/bin/sh", "-c", logDirProducer(n), fifo)
	producer.Stdout = w
	logger := exec.Command("/bin/sh", "-c", command(dir))
	logger.Stdin = r
	var errb testutil.LockedBuffer
	logger.Stdout, logger.Stderr = &errb, &errb
	if err := logger.Start(); err != nil {
		t.Fatal(err)
	}
	if err := producer.Start(); err != nil {
		logger.Process.Kill()
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	defer func() {
		producer.Process.Kill() // the logger then reads the end of its input and exits
		producer.Wait()
		if err := logger.Wait(); err != nil {
			t.Errorf("%s: %v\n%s", name, err, errb.String())
		}
	}()
	current := filepath.Join(dir, "current")
	eventually(t, 10*time.Second, name+" started", func() bool {
		_, err := os.Stat(current)
		return err == nil
	})
	tGo := logDirGo(t, fifo)
	took := waitLastLine(t, current, 120*time.Second).Sub(tGo)

	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "@") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names) // both name rotated files by a timestamp that sorts by age
	names = append(names, "current")
	next := 1
	for _, name := range names {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.Lines(string(b)) {
			_, v, _ := strings.Cut(strings.TrimSuffix(l, "\n"), " ")
			if v == "end" && next == n+1 {
				next++
				continue
			}
			if v != strconv.Itoa(next) {
				t.Fatalf("%s: %s: line %q, want %d", name, filepath.Base(name), l, next)
			}
			next++
		}
	}
	if next != n+2 {
		t.Fatalf("%s wrote %d lines, want %d and the end", name, next-1, n)
	}
	return float64(n) / took.Seconds()
}
