package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/supervisor/control"
)

// TestLogsSince: a job writes far more lines than --log-lines keeps; `god logs --since` finds
// its first line all the same (read back from --log-dir), gives every line once and in order,
// --stream keeps one stream, and --json prints one JSON object per line.
func TestLogsSince(t *testing.T) {
	g := newGod(t)
	logDir := filepath.Join(t.TempDir(), "logs")
	const n = 500
	// The stderr line must be read first, and god reads the job's two pipes as they come (it
	// may even register stderr after the job wrote both): the job writes its stdout lines only
	// once the test saw the stderr line in the file and says go on the FIFO.
	fifo := filepath.Join(t.TempDir(), "go")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	writeLoader(t, g.dir, "chatty", bashLoader{Jobs: map[string]bashJob{
		"chatty": {Exec: shJob(`echo "first" >&2; read -r _ < ` + sq(fifo) + `; seq -f 'n=%g' 1 ` + strconv.Itoa(n) + `; exec sleep 1000`), Auto: autoTrue},
	}})
	start := time.Now()
	g.start("--log-dir", logDir, "--log-lines", "20", "--log-size", "8192")
	g.waitState("chatty", "run", 10*time.Second)
	current := filepath.Join(logDir, "chatty", "current")
	testutil.Eventually(t, 30*time.Second, "chatty's stderr line in its file", func() bool {
		return countFileLines(t, current, "first") == 1
	})
	if err := os.WriteFile(fifo, []byte("go\n"), 0); err != nil { // the job has it open, waiting
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, "chatty's last line in its file", func() bool {
		return countFileLines(t, current, fmt.Sprintf("n=%d", n)) == 1
	})
	// The ring has the last 20 lines; asked for more, god logs reads the files too.
	if out := g.mustCLI("logs", "-n", "20", "chatty").stdout; strings.Count(out, "\n") != 20 || !strings.Contains(out, fmt.Sprintf("n=%d\n", n)) || strings.Contains(out, "n=1\n") {
		t.Fatalf("god logs -n 20:\n%s", out)
	}
	if out := g.mustCLI("logs", "-n", "1000", "chatty").stdout; !strings.Contains(out, "stderr: first") || strings.Count(out, "\n") != n+1 {
		t.Fatalf("god logs -n 1000 (more than the ring keeps) has %d lines, want %d from the files and the ring", strings.Count(out, "\n"), n+1)
	}

	out := g.mustCLI("logs", "--since", start.Add(-time.Second).Format(time.RFC3339Nano), "chatty").stdout
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// Every line once, each stream in order. Lines are stamped when god reads them, and the two
	// pipes are read apart (the stderr pipe joins the relay just after the stdout pipe): the
	// stderr line may come before, among or after the stdout lines.
	var stdout []string
	stderr := 0
	for _, l := range lines {
		if strings.Contains(l, "stderr: first") {
			stderr++
		} else {
			stdout = append(stdout, l)
		}
	}
	if len(lines) != n+1 || stderr != 1 {
		t.Fatalf("god logs --since: %d lines, %d of them the stderr line; want %d, one", len(lines), stderr, n+1)
	}
	for i := 1; i <= n; i++ {
		if want := fmt.Sprintf("stdout: n=%d ", i); !strings.Contains(stdout[i-1]+" ", want) {
			t.Fatalf("stdout line %d: %q, want ...%s", i, stdout[i-1], want)
		}
	}
	// A duration, -n, and a stream.
	if out := g.mustCLI("logs", "--since", "1h", "-n", "3", "chatty").stdout; strings.Count(out, "\n") != 3 || !strings.Contains(out, fmt.Sprintf("n=%d\n", n)) {
		t.Errorf("god logs --since 1h -n 3:\n%s", out)
	}
	if out := g.mustCLI("logs", "--since", "1h", "--stream", "stderr", "chatty").stdout; strings.Count(out, "\n") != 1 || !strings.Contains(out, "stderr: first") {
		t.Errorf("god logs --since 1h --stream stderr:\n%s", out)
	}
	if out := g.mustCLI("logs", "--since", "1h", "--stream", "stdout", "chatty").stdout; strings.Count(out, "\n") != n || strings.Contains(out, "first") {
		t.Errorf("god logs --since 1h --stream stdout: %d lines, want %d", strings.Count(out, "\n"), n)
	}
	// Since now: nothing.
	if out := g.mustCLI("logs", "--since", time.Now().Add(time.Minute).UTC().Format(time.RFC3339), "chatty").stdout; out != "" {
		t.Errorf("god logs --since the future:\n%s", out)
	}

	// --json: one object per line, with the fields of a LogLine.
	out = g.mustCLI("logs", "--since", "1h", "--json", "chatty").stdout
	sc := bufio.NewScanner(strings.NewReader(out))
	count := 0
	for sc.Scan() {
		var l control.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("--json line %q: %v", sc.Text(), err)
		}
		if l.Job != "chatty" || l.Pid == 0 || l.Generation != 1 || l.Level != "INFO" || l.Time.Before(start.Add(-time.Second)) {
			t.Fatalf("--json line %q: %+v", sc.Text(), l)
		}
		if l.Stream == "stderr" && l.Msg != "first" {
			t.Errorf("--json stderr line %+v, want the message first", l)
		}
		count++
	}
	if count != n+1 {
		t.Errorf("--json: %d lines, want %d", count, n+1)
	}

	// A bad --since or --stream is a usage error.
	for _, args := range [][]string{{"logs", "--since", "yesterday"}, {"logs", "--stream", "god"}} {
		if r := g.cli(args...); r.code != 2 {
			t.Errorf("god %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}

// TestLogDirJobLimits: the job properties log-size and log-keep override --log-size and
// --log-keep for their job only.
func TestLogDirJobLimits(t *testing.T) {
	g := newGod(t)
	logDir := filepath.Join(t.TempDir(), "logs")
	const n = 2000 // about 90 KiB of records
	job := shJob(`seq -f 'n=%g' 1 ` + strconv.Itoa(n) + `; exec sleep 1000`)
	writeLoader(t, g.dir, "limits", bashLoader{Jobs: map[string]bashJob{
		"own":   {Exec: job, Auto: autoTrue, Props: map[string]string{"log-size": `echo '["4096"]'`, "log-keep": `echo '["2"]'`}},
		"flags": {Exec: job, Auto: autoTrue},
	}})
	g.start("--log-dir", logDir, "--log-size", "16384", "--log-keep", "4")
	for _, c := range []struct {
		job        string
		size, keep int
	}{{"own", 4096, 2}, {"flags", 16384, 4}} {
		dir := filepath.Join(logDir, c.job)
		testutil.Eventually(t, 30*time.Second, c.job+"'s last line in its file", func() bool {
			return countFileLines(t, filepath.Join(dir, "current"), fmt.Sprintf("n=%d", n)) == 1
		})
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		rotated := 0
		for _, e := range ents {
			fi, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() > int64(c.size) {
				t.Errorf("%s/%s: %d bytes, over %d", c.job, e.Name(), fi.Size(), c.size)
			}
			if strings.HasPrefix(e.Name(), "@") {
				rotated++
				if fi.Size() < int64(c.size)*3/4 {
					t.Errorf("%s/%s: %d bytes: rotated before %d", c.job, e.Name(), fi.Size(), c.size)
				}
			}
		}
		if rotated != c.keep {
			t.Errorf("%s: %d rotated files, want %d", c.job, rotated, c.keep)
		}
	}
}
