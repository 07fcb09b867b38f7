package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// BenchmarkLogRelay measures god's job output path: one job writes logLines numbered lines as
// fast as it can (`seq`); god relays each line to its own log and to a `god logs -f` reader. It
// reports the lines per second arriving at the reader and in god's log, the lines the reader lost
// (god drops lines for a follower that falls behind rather than slowing the job), and how long
// the job took under god against alone into /dev/null and alone into a pipe that is read and
// discarded.
//
// god here is not the harness's: the harness keeps every log record in memory, which a relay of
// this size would exhaust. quietGod counts god's log lines and keeps none.
func BenchmarkLogRelay(b *testing.B) {
	const logLines = 1_000_000
	var f figures
	asTest(b, func(t testing.TB) {
		dir := t.TempDir()
		goFile := filepath.Join(dir, "go")
		// The job prints "begin", waits (bounded) for the test to create goFile once its reader
		// follows, times seq, then prints "end" and its timing (took_ns, on stderr) until the test
		// has seen both and created goFile.done (one of each could be dropped for a reader that
		// is behind; a later one gets through). Alone, with goFile.done there, it prints them once.
		script := `echo begin; i=0; while [ ! -e "$0" ] && [ $i -lt 3000 ]; do sleep 0.01; i=$((i+1)); done; ` +
			`t0=$(date +%s%N); seq 1 ` + strconv.Itoa(logLines) + `; t1=$(date +%s%N); ` +
			`i=0; while :; do echo end; echo "took_ns=$((t1-t0))" >&2; if [ -e "$0.done" ] || [ $i -ge 3000 ]; then break; fi; sleep 0.01; i=$((i+1)); done`
		q := startQuietGod(t, bashLoader{Jobs: map[string]bashJob{
			"chatty": {Exec: []string{"/bin/sh", "-c", script, goFile}, Auto: autoTrue, Restart: []string{"never"}},
		}})

		eventually(t, 10*time.Second, "job chatty known", func() bool {
			return runCLI(t, nil, "status", "chatty", "--socket", q.socket).code == 0
		})
		r := startLineProc(t, plainEnv(), godBin, "logs", "-f", "-n", "10", "chatty", "--socket", q.socket)
		r.line(t, "", 30*time.Second) // the first line: tail or follow, the reader is registered either way
		if err := os.WriteFile(goFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		lines0, tGo := q.logLines.Load(), time.Now()
		res := readRelay(t, r, 60*time.Second)
		godLog, tEnd := q.logLines.Load()-lines0, time.Now()
		if err := os.WriteFile(goFile+".done", nil, 0o644); err != nil {
			t.Fatal(err)
		}

		alone := timeAlone(t, script, goFile, nil)
		alonePipe := timeAlone(t, script, goFile, io.Discard)

		span := res.last.Sub(res.first)
		f.add("reader-lines/s", float64(res.lines)/span.Seconds(), fmt.Sprintf("%d of %d lines reached `god logs -f` in %s", res.lines, logLines, span.Round(time.Millisecond)))
		f.add("reader-lost-lines", float64(res.dropped), fmt.Sprintf("god told the reader it dropped %d; %d missing by number", res.dropped, logLines-res.lines))
		f.add("godlog-lines/s", float64(godLog)/tEnd.Sub(tGo).Seconds(), fmt.Sprintf("%d records in god's JSON log in %s", godLog, tEnd.Sub(tGo).Round(time.Millisecond)))
		f.add("job-under-god-ms", inMS(res.took), fmt.Sprintf("seq 1 %d, stdout to god", logLines))
		f.add("job-alone-devnull-ms", inMS(alone), "the same, > /dev/null")
		f.add("job-alone-pipe-ms", inMS(alonePipe), "the same, into a pipe read and discarded")
		f.add("job-slowdown-x", float64(res.took)/float64(alone), "under god / alone into /dev/null")
	})
	f.report(b)
}

// relayResult is what a `god logs -f` reader saw of the chatty job.
type relayResult struct {
	lines       int // numbered stdout lines received
	dropped     int // lines god said it dropped for this reader
	first, last time.Time
	took        time.Duration // the job's own timing of seq (its took_ns line)
	end         bool          // the reader saw the job's "end" line: every numbered line came before
}

var (
	relayLineRe = regexp.MustCompile(`^\S+ \S+ chatty\[\d+\] stdout: (\d+)( level=\S+)?$`)
	relayDropRe = regexp.MustCompile(` god: (\d+) lines dropped`)
	relayTookRe = regexp.MustCompile(` stderr: took_ns=(\d+)`)
	relayEndRe  = regexp.MustCompile(`^\S+ \S+ chatty\[\d+\] stdout: end( level=\S+)?$`)
)

// readRelay reads the reader's lines until it has seen the job's took_ns line and its "end" line.
func readRelay(t testing.TB, r *lineProc, timeout time.Duration) relayResult {
	t.Helper()
	var res relayResult
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				t.Fatalf("god logs -f ended before the job's took_ns and end lines; stderr:\n%s", r.errb.String())
			}
			if relayLineRe.MatchString(l) {
				now := time.Now()
				if res.lines == 0 {
					res.first = now
				}
				res.lines++
				res.last = now
			} else if m := relayDropRe.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				res.dropped += n
			} else if m := relayTookRe.FindStringSubmatch(l); m != nil {
				ns, _ := strconv.ParseInt(m[1], 10, 64)
				res.took = time.Duration(ns)
			} else if relayEndRe.MatchString(l) {
				res.end = true
			}
			if res.end && res.took > 0 {
				return res
			}
		case <-deadline:
			t.Fatalf("god logs -f: no took_ns and end lines within %s (%d lines so far)", timeout, res.lines)
		}
	}
}

// timeAlone runs the chatty job's script without god, stdout to /dev/null (out nil) or to out
// through a pipe, and returns the time it reports for seq.
func timeAlone(t testing.TB, script, goFile string, out io.Writer) time.Duration {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script, goFile)
	cmd.Stdout = out
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("chatty job alone: %v\n%s", err, errb.String())
	}
	first, _, _ := strings.Cut(errb.String(), "\n") // its stderr: took_ns=N, repeated
	ns, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(first), "took_ns="), 10, 64)
	if err != nil {
		t.Fatalf("chatty job alone: no took_ns line in %q", errb.String())
	}
	return time.Duration(ns)
}

// quietGod is a god daemon whose log is counted, not kept.
type quietGod struct {
	cmd      *exec.Cmd
	socket   string
	logLines atomic.Int64
	running  chan struct{} // closed at the "god running" record
	exited   chan struct{}
}

// startQuietGod runs god on a fresh loader directory holding loader l, with flags added, and waits
// until it serves. Cleanup stops it with SIGTERM (SIGKILL after 20 s) and fails the test if it had to.
func startQuietGod(t testing.TB, l bashLoader, flags ...string) *quietGod {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "loaders")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeLoader(t, dir, "loader", l)
	q := &quietGod{socket: filepath.Join(base, "god.sock"), running: make(chan struct{}), exited: make(chan struct{})}
	args := append([]string{"--dir", dir, "--socket", q.socket, "--log", "json"}, flags...)
	if prof := os.Getenv("GOD_BENCH_CPUPROFILE"); prof != "" {
		args = append(args, "--cpuprofile", prof) // written when god exits at cleanup
	}
	q.cmd = exec.Command(godBin, args...)
	q.cmd.Env = append(os.Environ(), noRaceExitSleep)
	var errb testutil.LockedBuffer
	q.cmd.Stderr = &errb
	out, err := q.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := q.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(q.exited)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		seen := false
		for sc.Scan() {
			q.logLines.Add(1)
			if !seen && bytes.Contains(sc.Bytes(), []byte(`"msg":"god running"`)) {
				seen = true
				close(q.running)
			}
		}
		io.Copy(io.Discard, out)
		q.cmd.Wait()
	}()
	t.Cleanup(func() {
		q.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-q.exited:
		case <-time.After(20 * time.Second):
			q.cmd.Process.Kill()
			<-q.exited
			t.Errorf("god did not exit within 20 s of SIGTERM; stderr:\n%s", errb.String())
		}
	})
	if slices.Contains(flags, "warn") { // --log-level warn: no "god running" record to wait for
		eventually(t, 10*time.Second, "god's control socket", func() bool {
			return runCLI(t, nil, "version", "--socket", q.socket).code == 0
		})
		return q
	}
	select {
	case <-q.running:
	case <-q.exited:
		t.Fatalf("god exited before serving; stderr:\n%s", errb.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("god not serving within 10 s; stderr:\n%s", errb.String())
	}
	return q
}
