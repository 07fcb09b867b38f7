package integration

import (
	"bufio"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestJournal: god logging to systemd's journal (--log journal, as under systemd) sends each job
// line to the journal as an entry of the job's own, so `journalctl -t JOB` finds it: a stdout
// line at info (6), a stderr line without a level of its own at warning (4), each with the
// process and generation in god's fields. The journal is a real systemd-journald, the
// machine's own or, where none runs, one the test starts (skipped without one, or as non-root).
func TestJournal(t *testing.T) {
	startJournald(t)
	mark := strconv.FormatInt(time.Now().UnixNano(), 36) // this run's lines, not an earlier run's
	job := "jt" + mark
	g := newGod(t)
	writeLoader(t, g.dir, "journal", bashLoader{Jobs: map[string]bashJob{
		job: {Exec: shJob(`echo "out ` + mark + `"; echo "err ` + mark + `" >&2; exec sleep 1000`), Auto: autoTrue},
	}})
	g.start("--log", "journal")
	st := g.waitState(job, "run", 30*time.Second)
	pid := strconv.Itoa(pidOf(t, st))

	var entries []map[string]string
	testutil.Eventually(t, 30*time.Second, "both lines in journalctl -t "+job, func() bool {
		entries = journalEntries(t, job)
		return len(entries) >= 2
	})
	want := map[string]struct{ priority, stream string }{
		"out " + mark: {"6", "stdout"},
		"err " + mark: {"4", "stderr"},
	}
	for _, e := range entries {
		w, ok := want[e["MESSAGE"]]
		if !ok {
			t.Errorf("unexpected entry of %s: %v", job, e)
			continue
		}
		delete(want, e["MESSAGE"])
		for k, v := range map[string]string{"PRIORITY": w.priority, "GOD_STREAM": w.stream, "SYSLOG_IDENTIFIER": job,
			"GOD_JOB": job, "GOD_PID": pid, "SYSLOG_PID": pid, "GOD_GENERATION": "1"} {
			if e[k] != v {
				t.Errorf("entry %q: %s=%q, want %q", e["MESSAGE"], k, e[k], v)
			}
		}
	}
	for msg := range want {
		t.Errorf("no journal entry %q", msg)
	}
}

// journalEntries is `journalctl -t ident -o json`: each entry's fields (those that are strings).
func journalEntries(t testing.TB, ident string) []map[string]string {
	out, err := exec.Command("journalctl", "--no-pager", "-o", "json", "-t", ident).Output()
	if err != nil {
		t.Fatalf("journalctl -t %s: %v", ident, err)
	}
	var entries []map[string]string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var raw map[string]any
		if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
			t.Fatalf("journalctl -o json: %q: %v", sc.Text(), err)
		}
		e := map[string]string{}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				e[k] = s
			}
		}
		entries = append(entries, e)
	}
	return entries
}

// journalSocket is where sd_journal_send (go-systemd's journal package) sends its entries.
const journalSocket = "/run/systemd/journal/socket"

// startJournald makes sure a systemd-journald receives on journalSocket: the machine's own when
// one answers there, else one started for the test and ended (by pid) when it is over, its
// sockets and files in /run removed with it. It skips the test when there is none to start or
// the test does not run as root (journald writes to /run).
func startJournald(t *testing.T) {
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("no journalctl: systemd's journal is not installed")
	}
	if journalAnswers() {
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("no journald runs, and only root can start one (it writes to /run)")
	}
	var bin string
	for _, p := range []string{"/lib/systemd/systemd-journald", "/usr/lib/systemd/systemd-journald"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Skip("no journald runs, and no systemd-journald to start")
	}
	var fresh []string // what this test's journald makes in /run, removed after it
	for _, d := range []string{"/run/systemd/journal", "/run/log/journal"} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
			fresh = append(fresh, d)
		}
	}
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("systemd-journald does not start here: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		for _, d := range fresh {
			os.RemoveAll(d)
		}
	})
	if !testutil.Poll(10*time.Second, journalAnswers) {
		t.Skipf("systemd-journald started but does not answer on %s: %s", journalSocket, stderr.String())
	}
}

// journalAnswers reports whether something receives on journalSocket.
func journalAnswers() bool {
	c, err := net.Dial("unixgram", journalSocket)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
