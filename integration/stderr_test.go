package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// fdTarget is where a process's fd points (/proc/PID/fd/FD): "pipe:[INODE]", "/dev/null", ...
func fdTarget(t testing.TB, pid, fd int) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil {
		t.Fatalf("fd %d of pid %d: %v", fd, pid, err)
	}
	return l
}

// heldPipes counts, for each pipe, the fds of pid that are one of its ends.
func heldPipes(t testing.TB, pid int) map[string]int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "pipe:") {
			out[l]++
		}
	}
	return out
}

// jobPipesInGod is how many fds god holds of the pipes that are the job process's stdout and
// stderr (a pipe the job has as both counts once), and those pipes.
func jobPipesInGod(t testing.TB, godPid, jobPid int) (int, []string) {
	t.Helper()
	held := heldPipes(t, godPid)
	var pipes []string
	for _, fd := range []int{1, 2} {
		if l := fdTarget(t, jobPid, fd); strings.HasPrefix(l, "pipe:") && !slices.Contains(pipes, l) {
			pipes = append(pipes, l)
		}
	}
	n := 0
	for _, p := range pipes {
		n += held[p]
	}
	return n, pipes
}

// logLines is the job's lines in god's ring (`god logs --json`), in god's order.
func logLines(t testing.TB, g *god, job string) []control.LogLine {
	t.Helper()
	out := g.mustCLI("logs", "--json", "-n", "10000", job).stdout
	var lines []control.LogLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l control.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("god logs --json line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return lines
}

// TestStderrStdout: a job with stderr ["stdout"] writes lines to stdout and stderr in turn.
// `god logs` has them all, tagged stdout, in the order written (one pipe: no interleaving to
// guess), and nothing on stderr; god holds one pipe for the job where it holds two for a job
// with its own stderr pipe. After `god upgrade` the new image holds that one pipe, and what the
// job writes next arrives likewise, in god logs and in its --log-dir file. A job with stderr
// ["null"] has /dev/null as fd 2, no pipe of it in god, and its stdout still arrives.
func TestStderrStdout(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god")
	logDir := filepath.Join(t.TempDir(), "logs")
	fifo := filepath.Join(t.TempDir(), "rounds")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	const perRound = 100
	// Each round (a word read from the FIFO, which the test writes), perRound lines to stdout
	// and to stderr in turn, then "ROUND done" on stderr.
	merged := shJob(`while read -r r < ` + sq(fifo) + `; do i=0; while [ $i -lt ` + strconv.Itoa(perRound) + ` ]; do i=$((i+1)); ` +
		`echo "$r out $i"; echo "$r err $i" >&2; done; echo "$r done" >&2; done`)
	writeLoader(t, g.dir, "streams", bashLoader{Jobs: map[string]bashJob{
		"merged": {Exec: merged, Auto: autoTrue, Props: map[string]string{"stderr": "echo '[\"stdout\"]'"}},
		"own":    {Exec: sleeper, Auto: autoTrue},
		"quiet": {Exec: shJob(`echo "secret" >&2; echo "visible"; exec sleep 1000`), Auto: autoTrue,
			Props: map[string]string{"stderr": "echo '[\"null\"]'"}},
	}})
	g.start("--log-dir", logDir)
	godPid := g.cmd.Process.Pid
	mergedPid := pidOf(t, g.waitState("merged", "run", 10*time.Second))
	ownPid := pidOf(t, g.waitState("own", "run", 10*time.Second))
	quietPid := pidOf(t, g.waitState("quiet", "run", 10*time.Second))

	// The pipes: the merged job's fds 1 and 2 are one pipe, of which god holds one end; the
	// default job's are two, god holding one end of each; the quiet job's stderr is /dev/null.
	checkPipes := func(when string) {
		t.Helper()
		if o, e := fdTarget(t, mergedPid, 1), fdTarget(t, mergedPid, 2); o != e || !strings.HasPrefix(o, "pipe:") {
			t.Errorf("%s: the merged job's stdout is %s and its stderr %s, want one pipe", when, o, e)
		}
		if n, pipes := jobPipesInGod(t, godPid, mergedPid); n != 1 || len(pipes) != 1 {
			t.Errorf("%s: god holds %d fds of the merged job's pipes %q, want 1 of 1", when, n, pipes)
		}
		if n, pipes := jobPipesInGod(t, godPid, ownPid); n != 2 || len(pipes) != 2 {
			t.Errorf("%s: god holds %d fds of the default job's pipes %q, want 2 of 2", when, n, pipes)
		}
		if e := fdTarget(t, quietPid, 2); e != os.DevNull {
			t.Errorf("%s: the quiet job's stderr is %s, want %s", when, e, os.DevNull)
		}
		if n, pipes := jobPipesInGod(t, godPid, quietPid); n != 1 || len(pipes) != 1 {
			t.Errorf("%s: god holds %d fds of the quiet job's pipes %q, want 1 of 1 (its stdout)", when, n, pipes)
		}
	}
	checkPipes("before the upgrade")

	// round has the merged job write one round and checks that every line of it arrived, in the
	// order written, tagged stdout, in god logs and in the job's log file.
	round := func(r string) {
		t.Helper()
		mark := g.mark()
		if err := os.WriteFile(fifo, []byte(r+"\n"), 0); err != nil { // the job waits for it
			t.Fatal(err)
		}
		g.waitLogFrom(mark, 30*time.Second, "round "+r+" relayed", func(rec record) bool {
			return rec.str("job") == "merged" && rec.Msg == r+" done"
		})
		var want []string
		for i := 1; i <= perRound; i++ {
			want = append(want, fmt.Sprintf("%s out %d", r, i), fmt.Sprintf("%s err %d", r, i))
		}
		want = append(want, r+" done")
		var got []string
		for _, l := range logLines(t, g, "merged") {
			if !strings.HasPrefix(l.Msg, r+" ") {
				continue
			}
			if l.Stream != "stdout" || l.Pid != mergedPid {
				t.Fatalf("round %s: line %+v, want stream stdout and pid %d", r, l, mergedPid)
			}
			got = append(got, l.Msg)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("round %s: god logs has\n%q\nwant (the order written)\n%q", r, got, want)
		}
		current := filepath.Join(logDir, "merged", "current")
		var inFile []string
		for _, rec := range readLogFile(t, current) {
			if strings.HasPrefix(rec.line, r+" ") {
				if rec.stream != "stdout" {
					t.Fatalf("round %s: %s has %+v, want stream stdout", r, current, rec)
				}
				inFile = append(inFile, rec.line)
			}
		}
		if !slices.Equal(inFile, want) {
			t.Fatalf("round %s: %s has\n%q\nwant\n%q", r, current, inFile, want)
		}
	}
	round("a")
	if out := g.mustCLI("logs", "-n", "1000", "--stream", "stderr", "merged").stdout; out != "" {
		t.Errorf("god logs --stream stderr of the merged job:\n%s", out)
	}
	if out := g.mustCLI("logs", "-n", "1000", "--stream", "stdout", "merged").stdout; strings.Count(out, "\n") != 2*perRound+1 {
		t.Errorf("god logs --stream stdout of the merged job: %d lines, want %d", strings.Count(out, "\n"), 2*perRound+1)
	}

	g.waitLog(10*time.Second, "the quiet job's stdout", func(r record) bool {
		return r.str("job") == "quiet" && r.str("stream") == "stdout" && r.Msg == "visible"
	})
	for _, l := range logLines(t, g, "quiet") {
		if l.Msg != "visible" {
			t.Errorf("the quiet job's line %+v: only its stdout line should be relayed", l)
		}
	}

	g.upgrade()
	if st := g.waitState("merged", "run", 10*time.Second); pidOf(t, st) != mergedPid {
		t.Fatalf("the merged job's pid is %d after the upgrade, want %d", pidOf(t, st), mergedPid)
	}
	checkPipes("after the upgrade")
	round("b")
	if out := g.mustCLI("logs", "-n", "1000", "--stream", "stderr", "merged").stdout; out != "" {
		t.Errorf("god logs --stream stderr of the merged job after the upgrade:\n%s", out)
	}
	if rs := g.logs(0, func(r record) bool { return r.str("job") != "" && r.Msg == "secret" }); len(rs) > 0 {
		t.Errorf("the quiet job's stderr reached god's log: %s", rs[0].Raw)
	}
}

// TestAcceptStderr: a connection process of an accept job with stderr ["stdout"] has its stderr
// where its stdout is, the connection (inetd's and systemd's StandardError=inherit), in the
// order written; one with the default stderr writes its stderr to god's log, tagged stderr, and
// only its stdout to the peer.
func TestAcceptStderr(t *testing.T) {
	t.Parallel()
	script := shJob(`echo "err $$" >&2; echo "out $$"`)
	mergedAddr, ownAddr := freePort(t), freePort(t)
	g := newGod(t)
	writeLoader(t, g.dir, "acc", bashLoader{Jobs: map[string]bashJob{
		"merged": sockJob(script, []string{"conn=tcp://" + mergedAddr}, nil, map[string][]string{"accept": {"true"}, "stderr": {"stdout"}}),
		"own":    sockJob(script, []string{"conn=tcp://" + ownAddr}, nil, map[string][]string{"accept": {"true"}}),
	}})
	g.start()
	g.waitState("merged", "run", 10*time.Second)
	g.waitState("own", "run", 10*time.Second)

	ans, err := ask("tcp", mergedAddr, 20*time.Second)
	lines := strings.Split(strings.TrimSuffix(ans, "\n"), "\n")
	if err != nil || len(lines) != 2 || !strings.HasPrefix(lines[0], "err ") || lines[1] != "out"+strings.TrimPrefix(lines[0], "err") {
		t.Errorf("the merged job's answer %q, %v; want its stderr line, then its stdout line", ans, err)
	}
	ans, err = ask("tcp", ownAddr, 20*time.Second)
	if err != nil || !strings.HasPrefix(ans, "out ") || strings.Count(ans, "\n") != 1 {
		t.Fatalf("the default job's answer %q, %v; want its stdout line alone", ans, err)
	}
	pid := strings.TrimSpace(strings.TrimPrefix(ans, "out "))
	g.waitLog(20*time.Second, "the default job's stderr line in god's log", func(r record) bool {
		return r.str("job") == "own" && r.str("stream") == "stderr" && r.Msg == "err "+pid
	})
	if rs := g.logs(0, func(r record) bool { return r.str("job") == "merged" && strings.HasPrefix(r.Msg, "err ") }); len(rs) > 0 {
		t.Errorf("the merged job's stderr line reached god's log: %s", rs[0].Raw)
	}
}
