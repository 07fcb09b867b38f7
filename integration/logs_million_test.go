package integration

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestLogDirMillionLines is the proof of the log files: a job writes 1 000 000 numbered lines
// (200 000 under the race detector, which makes god several times slower) while god rotates its
// file at 1 MiB; god upgrades itself after a quarter of them and the job is reloaded (a new
// process, the next generation, going on from the number its predecessor stopped at) after half,
// both while the job writes as fast as god reads (the job waits at a gate before the last
// quarter until the reload is done, so that the reload cannot come too late). Every number must be in DIR/JOB/* exactly
// once, in order within each generation, with no record split or mangled.
func TestLogDirMillionLines(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes and reads back 1 000 000 lines")
	}
	n := 1000000
	if raceEnabled {
		n = 200000
	}
	g := newGod(t)
	g.bin = copyExecutable(t, godBin, t.TempDir(), "god") // as the upgrade tests run it
	logDir := filepath.Join(t.TempDir(), "logs")
	tmp := t.TempDir()
	state, gate1, gate2, gate3 := filepath.Join(tmp, "state"), filepath.Join(tmp, "gate1"), filepath.Join(tmp, "gate2"), filepath.Join(tmp, "gate3")
	writeLoader(t, g.dir, "million", bashLoader{Jobs: map[string]bashJob{
		"count": {Exec: []string{sockjobBin, "count", "-to", strconv.Itoa(n), "-state", state,
			"-gate", strconv.Itoa(n/4) + ":" + gate1, "-gate", strconv.Itoa(n/2) + ":" + gate2, "-gate", strconv.Itoa(3*n/4) + ":" + gate3},
			Auto: autoTrue, Props: map[string]string{"reload": `echo '["restart"]'`}},
	}})
	t0 := time.Now()
	// Job lines are INFO: at warn god's own log does not carry a million of them to the harness.
	g.start("--log-dir", logDir, "--log-size", "1048576", "--log-keep", "1000", "--log-level", "warn")
	jobDir := filepath.Join(logDir, "count")
	current := filepath.Join(jobDir, "current")
	// hasLine reports whether current holds the job line want (read whole: a test of 1 MiB files).
	hasLine := func(want string) bool {
		b, err := os.ReadFile(current)
		if err != nil {
			return false
		}
		return bytes.Contains(b, []byte(" "+want+"\n"))
	}
	testutil.Eventually(t, 60*time.Second, "the first quarter written", func() bool { return hasLine("n=" + strconv.Itoa(n/4-1)) })

	// Upgrade while the job writes the second quarter.
	if err := os.WriteFile(gate1, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := g.mustCLI("upgrade"); !strings.Contains(r.stdout, "upgraded") {
		t.Fatalf("upgrade: %q", r.stdout)
	}
	testutil.Eventually(t, 60*time.Second, "the first half written", func() bool { return hasLine("n=" + strconv.Itoa(n/2-1)) })

	// Reload (stop, then a new process of the next generation) while it writes the third quarter:
	// god reads as fast as the job writes, so the job waits before the last quarter until the
	// reload is done (an old process stopped there hands over at the gate, a new one that starts
	// before it waits there), or the reload could come after the job wrote everything.
	if err := os.WriteFile(gate2, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g.mustCLI("reload", "count")
	if err := os.WriteFile(gate3, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 120*time.Second, "the last line written", func() bool { return hasLine("n=" + strconv.Itoa(n)) })
	writing := time.Since(t0)

	// Read every file back: the rotated ones in name order, then current.
	names := append(rotatedLogs(t, jobDir), "current")
	seen := make([]bool, n+1)
	lastOf := map[int]int{} // generation -> last number it wrote
	var gens []int
	total := 0
	for _, name := range names {
		f, err := os.Open(filepath.Join(jobDir, name))
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := f.Stat()
		if fi.Size() > 1<<20 {
			t.Errorf("%s: %d bytes, over --log-size", name, fi.Size())
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			m := logRecordRe.FindStringSubmatch(sc.Text())
			if m == nil {
				t.Fatalf("%s: not a record: %q", name, sc.Text())
			}
			if m[2] == "god" {
				continue
			}
			gen, _ := strconv.Atoi(m[4])
			v, err := strconv.Atoi(strings.TrimPrefix(m[5], "n="))
			if m[2] != "stdout" || !strings.HasPrefix(m[5], "n=") || err != nil || v < 1 || v > n {
				t.Fatalf("%s: record %q is not one of the job's lines", name, sc.Text())
			}
			if seen[v] {
				t.Fatalf("%s: n=%d is there twice", name, v)
			}
			seen[v] = true
			total++
			last, known := lastOf[gen]
			switch {
			case !known:
				gens = append(gens, gen)
			case v != last+1:
				t.Fatalf("%s: generation %d goes from n=%d to n=%d", name, gen, last, v)
			}
			lastOf[gen] = v
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f.Close()
	}
	for v := 1; v <= n; v++ {
		if !seen[v] {
			t.Fatalf("n=%d is missing from the files", v)
		}
	}
	if len(gens) != 2 || gens[1] <= gens[0] {
		t.Fatalf("generations %v, want two, in order: the reload came after the job had written everything?", gens)
	}
	// god logs --since reads all of it back (the ring holds the last 1000 lines): -n keeps the
	// answer to the last k lines, far more than the ring has, which must run on to n.
	k := min(50000, n-1)
	if raceEnabled {
		k = 2000 // god and the CLI are several times slower: the files are still read whole
	}
	t1 := time.Now()
	out := g.mustCLI("logs", "--since", t0.Add(-time.Minute).UTC().Format(time.RFC3339Nano), "--json", "-n", strconv.Itoa(k), "count").stdout
	reading := time.Since(t1)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != k {
		t.Fatalf("god logs --since -n %d: %d lines", k, len(lines))
	}
	for i, l := range lines {
		if want := `"msg":"n=` + strconv.Itoa(n-k+1+i) + `"`; !strings.Contains(l, want) {
			t.Fatalf("god logs --since -n %d: line %d is %q, want %s", k, i, l, want)
		}
	}
	t.Logf("%d lines in %d files (1 MiB each), generations %v (gen %d wrote up to n=%d), written in %s; god logs --since read them back in %s",
		total, len(names), gens, gens[0], lastOf[gens[0]], writing.Round(time.Millisecond), reading.Round(time.Millisecond))
}
