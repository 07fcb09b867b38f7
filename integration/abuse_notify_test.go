package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNotifyFloodFromStranger: another user floods god's notify socket (0666: every job must
// reach it) with 500 000 READY=1 datagrams while `god restart` waits for a notify-ready job. The
// restart succeeds, god writes fewer than 100 log lines about the flood, and its memory stays
// under twice what it was.
func TestNotifyFloodFromStranger(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to send as another user (uid 65534)")
	}
	t.Parallel()
	lines := notifyFlood(t, &syscall.Credential{Uid: 65534, Gid: 65534}, 500000)
	if !strings.Contains(strings.Join(lines, "\n"), "sender is no user god's jobs run as") {
		t.Errorf("no drop by uid in the log lines:\n%s", strings.Join(lines, "\n"))
	}
}

// TestNotifyFloodFromOwnUser: a process of god's own user that is no job's floods the notify
// socket with READY=1 during `god restart` of a notify job. Its datagrams are dropped when they
// are read (the sender is neither a job process, in a job's group, nor god's child), so they
// never queue ahead of the job's own READY=1: the restart succeeds and the drops are logged
// once a second at most.
func TestNotifyFloodFromOwnUser(t *testing.T) {
	t.Parallel()
	lines := notifyFlood(t, nil, 50000)
	if !strings.Contains(strings.Join(lines, "\n"), "sender is no job of god's") {
		t.Errorf("the flood was not dropped when read; log lines:\n%s", strings.Join(lines, "\n"))
	}
}

// notifyFlood sends n READY=1 datagrams as cred (nil: the test's own user, which is god's)
// while `god restart` waits for a notify-ready job, checks that the restart succeeds, that god
// logs fewer than 100 lines about it and that its memory stays under twice what it was, and
// returns god's log lines about notify.
func notifyFlood(t *testing.T, cred *syscall.Credential, n int) []string {
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"dog": sockJob([]string{sockjobBin, "serve"}, nil, []string{"notify"}, nil),
	}})
	g.start()
	pid := pidOf(t, g.waitState("dog", "run", 10*time.Second))
	notify := envValue(pid, "NOTIFY_SOCKET")
	// The stranger must reach the socket as any job of another user would: open the test's
	// directories to everyone for traversal.
	for d := filepath.Dir(notify); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	godPid := g.cmd.Process.Pid
	before, _ := readProc(godPid)
	from := g.mark()

	flood := exec.Command(sockjobBin, "flood", "-to", notify, "-n", strconv.Itoa(n), "-max", "60s")
	if cred != nil {
		flood.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out strings.Builder
	flood.Stdout, flood.Stderr = &out, &out
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	g.addPid(flood.Process.Pid, "the flood")
	done := make(chan error, 1)
	go func() { done <- flood.Wait() }()

	r := g.cli("restart", "dog")
	if r.code != 0 {
		g.fatalf("god restart during the flood: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	var peak int
	if st, ok := readProc(godPid); ok {
		peak = st.rssKB
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("flood: %v: %s", err, out.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("the flood did not end: %s", out.String())
	}
	after, _ := readProc(godPid)
	lines := g.logs(from, func(r record) bool { return strings.Contains(strings.ToLower(r.Msg), "notify") })
	t.Logf("flood: %s; god's log lines about it: %d; RSS %d kB before, %d kB during, %d kB after",
		strings.TrimSpace(out.String()), len(lines), before.rssKB, peak, after.rssKB)
	if len(lines) >= 100 {
		g.fatalf("%d log lines about the flood, want fewer than 100", len(lines))
	}
	if after.rssKB > 2*before.rssKB || peak > 2*before.rssKB {
		g.fatalf("god's RSS grew from %d kB to %d kB (peak %d kB) under the flood", before.rssKB, after.rssKB, peak)
	}
	j := g.waitState("dog", "run", 10*time.Second)
	if pidOf(t, j) == pid {
		g.fatalf("dog still runs pid %d: it was not restarted", pid)
	}
	var msgs []string
	for _, r := range lines {
		msgs = append(msgs, r.Raw)
	}
	return msgs
}

// TestFdStoreOverflowLogsOnce: a job that sends FDSTORE=1 with 10 fds in each of 50 datagrams
// (500 fds, god keeps 64) costs god's log a few lines, not one or two a datagram.
func TestFdStoreOverflowLogsOnce(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	script := sq(sockjobBin) + ` flood -to "$NOTIFY_SOCKET" -n 50 -fds 10 -payload 'FDSTORE=1\nFDNAME=kept' && echo flood-sent && exec sleep 1000`
	writeLoader(t, g.dir, "s", bashLoader{Jobs: map[string]bashJob{
		"storer": {Exec: []string{"/bin/sh", "-c", script}, Auto: autoTrue},
	}})
	g.start()
	g.waitLog(30*time.Second, "the job's flood sent", func(r record) bool { return strings.Contains(r.Raw, "flood-sent") })
	// The held-back count goes out when the interval after the last line ends.
	g.waitLog(10*time.Second, "the count of held-back FDSTORE lines", func(r record) bool {
		return strings.Contains(r.Msg, "FDSTORE") && r.int("repeated") > 0
	})
	lines := g.logs(0, func(r record) bool { return strings.Contains(r.Msg, "FDSTORE") })
	if len(lines) > 8 {
		g.fatalf("%d log lines about FDSTORE for 50 datagrams, want a few", len(lines))
	}
}
