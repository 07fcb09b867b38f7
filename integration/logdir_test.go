package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// logRecordRe is one record of a job's log file: time (UTC, microseconds), stream, pid, gen, line.
var logRecordRe = regexp.MustCompile(`^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (stdout|stderr|god) pid=(\d+) gen=(\d+) (.*)$`)

// logRecord is a parsed line of a log file.
type logRecord struct {
	time   time.Time
	stream string
	pid    int
	line   string
}

// readLogFile parses a job's log file; a line that is not a record fails the test.
// rotatedLogs lists the files of a job's log directory but current, oldest first (their names
// sort by time).
func rotatedLogs(t testing.TB, dir string) []string {
	t.Helper()
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
	return names
}

func readLogFile(t testing.TB, path string) []logRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	var out []logRecord
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		m := logRecordRe.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("%s: not a record: %q", path, l)
		}
		ts, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			t.Fatalf("%s: time of %q: %v", path, l, err)
		}
		pid, _ := strconv.Atoi(m[3])
		out = append(out, logRecord{time: ts, stream: m[2], pid: pid, line: m[5]})
	}
	return out
}

// countFileLines counts the records of path whose line starts with prefix.
func countFileLines(t testing.TB, path, prefix string) int {
	n := 0
	for _, r := range readLogFile(t, path) {
		if strings.HasPrefix(r.line, prefix) {
			n++
		}
	}
	return n
}

// TestLogDir: with --log-dir, a job's lines reach DIR/JOB/current with time, stream and pid;
// with a small --log-size and --log-keep 3, rotation keeps 3 old files and current, and the
// lines kept run on without a gap or a split line; after `god upgrade` lines go on into the same
// current; `god logs` still reads the ring.
func TestLogDir(t *testing.T) {
	g := newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god") // as the upgrade tests run it
	logDir := filepath.Join(t.TempDir(), "logs")
	gate := filepath.Join(t.TempDir(), "gate")
	const first, more, big = 40, 20, 3000
	// small: 40 lines on stdout and one on stderr, then (once the test created gate) 20 more;
	// about 3.5 KiB in all, under --log-size. big: 3000 lines at once, rotated many times.
	small := `i=0; while [ $i -lt ` + strconv.Itoa(first) + ` ]; do i=$((i+1)); echo "n=$i"; done; echo "oops" >&2; ` +
		`w=0; while [ ! -e "$0" ] && [ $w -lt 12000 ]; do sleep 0.01; w=$((w+1)); done; ` +
		`while [ $i -lt ` + strconv.Itoa(first+more) + ` ]; do i=$((i+1)); echo "n=$i"; done; exec sleep 1000`
	writeLoader(t, g.dir, "logdir", bashLoader{Jobs: map[string]bashJob{
		"small": {Exec: append(shJob(small), gate), Auto: autoTrue},
		"big":   {Exec: shJob(`seq -f 'b=%g' 1 ` + strconv.Itoa(big) + `; exec sleep 1000`), Auto: autoTrue},
	}})
	g.start("--log-dir", logDir, "--log-size", "4096", "--log-keep", "3")
	pid := pidOf(t, g.waitState("small", "run", 10*time.Second))
	current := filepath.Join(logDir, "small", "current")

	testutil.Eventually(t, 30*time.Second, "the first lines of small in its file", func() bool {
		return countFileLines(t, current, "n=") == first && countFileLines(t, current, "oops") == 1
	})
	var recs, notes []logRecord
	for _, r := range readLogFile(t, current) {
		if r.stream == "god" {
			notes = append(notes, r)
		} else {
			recs = append(recs, r)
		}
	}
	// god's own record of the start is there too, with the pid.
	if len(notes) == 0 || notes[0].pid != pid || !strings.HasPrefix(notes[0].line, "started") {
		t.Errorf("god's records in small's file: %+v, want started with pid %d first", notes, pid)
	}
	for i, r := range recs {
		want := fmt.Sprintf("n=%d", i+1)
		if i == first {
			want = "oops"
		}
		if r.line != want || r.pid != pid || (r.stream == "stderr") != (want == "oops") {
			t.Errorf("record %d: %+v, want %q from pid %d on the right stream", i, r, want, pid)
		}
		if time.Since(r.time) > time.Hour || r.time.Location() != time.UTC {
			t.Errorf("record %d: time %v is not now in UTC", i, r.time)
		}
	}
	fi, err := os.Stat(current)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o640 != 0 {
		t.Errorf("current has mode %v, want at most 0640", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(current)); err != nil || di.Mode().Perm()&^0o750 != 0 {
		t.Errorf("job directory: %v %v, want at most 0750", di, err)
	}
	// god logs reads the ring, as before.
	if out := g.mustCLI("logs", "-n", "100", "small").stdout; !strings.Contains(out, "stdout: n=40") || !strings.Contains(out, "stderr: oops") {
		t.Errorf("god logs small:\n%s", out)
	}

	// Rotation: big's lines fill 4 KiB files; 3 old ones and current stay, holding the newest
	// lines without a gap, none split or cut.
	bigDir := filepath.Join(logDir, "big")
	testutil.Eventually(t, 30*time.Second, "big's last line in its current", func() bool {
		recs := readLogFile(t, filepath.Join(bigDir, "current"))
		return len(recs) > 0 && recs[len(recs)-1].line == fmt.Sprintf("b=%d", big)
	})
	names := rotatedLogs(t, bigDir)
	for _, name := range names {
		if !regexp.MustCompile(`^@\d{8}T\d{6}\.\d{6}Z\.log$`).MatchString(name) {
			t.Errorf("unexpected file %s in %s", name, bigDir)
		}
	}
	if len(names) != 3 {
		t.Errorf("rotated files %v, want 3 (--log-keep 3)", names)
	}
	names = append(names, "current")
	var nums []int
	for _, n := range names {
		path := filepath.Join(bigDir, n)
		if fi, err := os.Stat(path); err != nil || fi.Size() > 4096 {
			t.Errorf("%s: %v, size over --log-size 4096", n, err)
		}
		recs := readLogFile(t, path)
		if n != "current" && len(recs) < 50 {
			t.Errorf("%s holds only %d records: rotated before it was full", n, len(recs))
		}
		for _, r := range recs {
			if r.stream == "god" {
				continue // started, exited
			}
			v, err := strconv.Atoi(strings.TrimPrefix(r.line, "b="))
			if err != nil || r.stream != "stdout" {
				t.Fatalf("%s: record %+v is not one of big's lines", n, r)
			}
			nums = append(nums, v)
		}
	}
	for i := 1; i < len(nums); i++ {
		if nums[i] != nums[i-1]+1 {
			t.Fatalf("big's kept lines jump from %d to %d: a line was lost or doubled", nums[i-1], nums[i])
		}
	}
	t.Logf("big: %d rotated files kept, lines %d..%d", len(names)-1, nums[0], nums[len(nums)-1])

	// god upgrade: the new image appends to the same current.
	before, err := os.Stat(current)
	if err != nil {
		t.Fatal(err)
	}
	mark := g.mark()
	if r := g.mustCLI("upgrade"); !strings.Contains(r.stdout, "upgraded") {
		t.Fatalf("upgrade: %q", r.stdout)
	}
	g.waitLogFrom(mark, 30*time.Second, "new image writing files", func(r record) bool { return r.Msg == "writing job output to files" })
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "small's lines after the upgrade in the same current", func() bool {
		return countFileLines(t, current, "n=") == first+more
	})
	after, err := os.Stat(current)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("current was replaced across the upgrade (inode %d -> %d)", before.Sys().(*syscall.Stat_t).Ino, after.Sys().(*syscall.Stat_t).Ino)
	}
	recs = readLogFile(t, current)
	var got []string
	for _, r := range recs {
		if strings.HasPrefix(r.line, "n=") {
			got = append(got, r.line)
			if r.pid != pid {
				t.Errorf("record %+v: pid, want %d", r, pid)
			}
		}
	}
	for i, l := range got {
		if want := fmt.Sprintf("n=%d", i+1); l != want {
			t.Fatalf("line %d of small across the upgrade: %q, want %q", i, l, want)
		}
	}
}

// TestLogDirGodKilled: lines written before god is killed (kill -9) stay in current; the god that
// replaces it recovers the job and appends its new process's lines to the same file.
func TestLogDirGodKilled(t *testing.T) {
	g := newGod(t)
	logDir := filepath.Join(t.TempDir(), "logs")
	const n = 30
	writeLoader(t, g.dir, "tick", bashLoader{Jobs: map[string]bashJob{
		"tick": {Exec: shJob(`i=0; while [ $i -lt ` + strconv.Itoa(n) + ` ]; do i=$((i+1)); echo "n=$i"; done; exec sleep 1000`), Auto: autoTrue},
	}})
	g.start("--log-dir", logDir)
	pid1 := pidOf(t, g.waitState("tick", "run", 10*time.Second))
	current := filepath.Join(logDir, "tick", "current")
	testutil.Eventually(t, 30*time.Second, "the first process's lines in current", func() bool {
		return countFileLines(t, current, "n=") == n
	})
	before, err := os.Stat(current)
	if err != nil {
		t.Fatal(err)
	}
	// The state file is written shortly after the processes change, and the lines may be in
	// current before it: wait for it, or the new god cannot know the orphan to end it.
	eventually(t, 10*time.Second, "the state file naming the job's process", func() bool {
		b, _ := os.ReadFile(strings.TrimSuffix(g.socket, ".sock") + "-state.json")
		return strings.Contains(string(b), fmt.Sprintf(`"pid":%d`, pid1))
	})
	g2, _ := killAndReplace(t, g, nil)
	pid2 := pidOf(t, g2.waitJob("tick", 30*time.Second, "tick run by the new god", func(j controlJob) bool {
		return j.State == "run" && len(j.Processes) == 1 && j.Processes[0].Pid != pid1
	}))
	testutil.Eventually(t, 30*time.Second, "the second process's lines appended", func() bool {
		return countFileLines(t, current, "n=") == 2*n
	})
	after, err := os.Stat(current)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) {
		t.Errorf("current was replaced after the kill")
	}
	i := 0
	for _, r := range readLogFile(t, current) {
		if r.stream == "god" {
			continue
		}
		want, wantPid := fmt.Sprintf("n=%d", i%n+1), pid1
		if i >= n {
			wantPid = pid2
		}
		if r.line != want || r.pid != wantPid {
			t.Errorf("record %d: %+v, want %q from pid %d", i, r, want, wantPid)
		}
		i++
	}
}
