package integration

import (
	"strings"
	"testing"
	"time"
)

// TestFdStoreRemove: a job stores one fd named keep and one named gone (FDSTORE=1 with FDNAME=),
// then removes gone (FDSTOREREMOVE=1, FDNAME=gone). Its next process gets only keep, named in
// LISTEN_FDNAMES: FDNAME= reaches the successor, FDSTOREREMOVE= takes the fd away from it.
func TestFdStoreRemove(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "s", bashLoader{Jobs: map[string]bashJob{
		"storer": {Exec: []string{sockjobBin, "notify", `FDSTORE=1\nFDNAME=keep`, `FDSTORE=1\nFDNAME=gone`,
			`FDSTOREREMOVE=1\nFDNAME=gone`}, Auto: autoTrue},
	}})
	g.start()
	if line := g.jobLine(0, "storer", "fdnames=", 10*time.Second); line != "fdnames=" {
		t.Errorf("first process: %q, want no fds", line)
	}
	g.waitLog(10*time.Second, "FDSTOREREMOVE applied", func(r record) bool {
		return strings.Contains(r.Msg, "FDSTOREREMOVE") && r.str("name") == "gone" && r.int("count") == 1
	})
	from := g.mark()
	g.mustCLI("restart", "storer")
	if line := g.jobLine(from, "storer", "fdnames=", 10*time.Second); line != "fdnames=keep" {
		t.Errorf("next process: %q, want fdnames=keep (the stored fd named keep, not gone)", line)
	}
}

// TestExtendTimeout: with --start-timeout 4s, a notify job that takes about 8 s to start but
// says EXTEND_TIMEOUT_USEC=5000000 every second is not stopped as not ready: it reaches run
// with the pid it started with, and god logged the extensions and no start timeout.
func TestExtendTimeout(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "x", bashLoader{Jobs: map[string]bashJob{
		"slow": sockJob([]string{sockjobBin, "notify", "-repeat", "8", "-every", "1s", "-last", "READY=1",
			"EXTEND_TIMEOUT_USEC=5000000"}, nil, []string{"notify"}, nil),
	}})
	// 8 extensions 1 s apart outlast a start timeout of 4 s (long enough for the job's first
	// message on a busy machine).
	g.start("--start-timeout", "4s")
	first := pidOf(t, g.waitState("slow", "start", 10*time.Second))
	st := g.waitState("slow", "run", 30*time.Second)
	if pidOf(t, st) != first || st.Restarts != 0 {
		t.Errorf("run with pid %d after %d restarts, want the first pid %d and none", pidOf(t, st), st.Restarts, first)
	}
	if n := len(g.logs(0, func(r record) bool { return strings.HasPrefix(r.Msg, "EXTEND_TIMEOUT_USEC") })); n == 0 {
		t.Errorf("no extension logged")
	}
	if late := g.logs(0, func(r record) bool { return strings.HasPrefix(r.Msg, "not ready in time") }); len(late) > 0 {
		t.Errorf("start timeout despite the extensions: %v", late[0].Raw)
	}
}

// TestFdStorePoll: a stored fd that hangs up (the read end of a pipe with no writer left) is
// dropped from the store, as systemd does, unless it was stored with FDPOLL=0: the next process
// gets only the one stored with FDPOLL=0.
func TestFdStorePoll(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "s", bashLoader{Jobs: map[string]bashJob{
		"storer": {Exec: []string{sockjobBin, "notify", "-pipes", `FDSTORE=1\nFDNAME=hup`, `FDSTORE=1\nFDNAME=kept\nFDPOLL=0`},
			Auto: autoTrue},
	}})
	g.start()
	g.jobLine(0, "storer", "notified", 10*time.Second)
	g.waitLog(10*time.Second, "the hung-up fd dropped", func(r record) bool {
		return strings.Contains(r.Msg, "hung up; removed") && r.str("name") == "hup"
	})
	from := g.mark()
	g.mustCLI("restart", "storer")
	if line := g.jobLine(from, "storer", "fdnames=", 10*time.Second); line != "fdnames=kept" {
		t.Errorf("next process: %q, want fdnames=kept (FDPOLL=0 keeps a hung-up fd; the other is dropped)", line)
	}
	if n := len(g.logs(0, func(r record) bool { return strings.Contains(r.Msg, "hung up; removed") })); n != 1 {
		t.Errorf("%d hang-ups logged, want 1 (hup's)", n)
	}
}
