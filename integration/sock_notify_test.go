package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNotifyReadyGates: with ready: notify, the job stays in start until its process says
// READY=1, then runs.
func TestNotifyReadyGates(t *testing.T) {
	t.Parallel()
	gate := filepath.Join(t.TempDir(), "go")
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"gated": sockJob([]string{sockjobBin, "serve", "-ready-when", gate}, nil, []string{"notify"}, nil),
	}})
	g.start()
	g.jobLine(0, "gated", "serving ", 10*time.Second) // the process runs and waits for the gate
	for i := 0; i < 5; i++ {                          // a few looks while READY=1 is held back
		if j, _ := g.job("gated"); j.State != "start" || len(j.Processes) != 1 || j.Processes[0].State != "starting" {
			g.fatalf("before READY=1: %+v", j)
		}
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	j := g.waitState("gated", "run", 10*time.Second)
	from := g.logs(0, func(r record) bool { return r.str("job") == "gated" && r.Msg == "ready-when: file is there" })
	if len(from) != 1 || j.Processes[0].State != "ready" {
		g.fatalf("run without the job's READY=1 (gate lines %d), status %+v", len(from), j)
	}
}

// TestNotifyStartTimeout: a notify job that never says READY=1 stays in start and is stopped
// when --start-timeout passes.
func TestNotifyStartTimeout(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"mute": sockJob([]string{sockjobBin, "serve", "-ready=false"}, nil, []string{"notify"}, nil),
	}})
	g.start("--start-timeout", "700ms")
	pid := pidOf(t, g.waitState("mute", "start", 10*time.Second))
	r := g.waitLog(10*time.Second, "the start timeout", func(r record) bool {
		return r.str("job") == "mute" && strings.HasPrefix(r.Msg, "not ready in time") && r.int("pid") == pid
	})
	started := g.logs(0, func(r record) bool { return r.str("job") == "mute" && r.Msg == "started" && r.int("pid") == pid })
	if len(started) != 1 || r.Time.Sub(started[0].Time) < 600*time.Millisecond {
		g.fatalf("timeout logged %v after the start, want about 700ms", r.Time.Sub(started[0].Time))
	}
}

// TestNotifyStatus: STATUS= from the job shows in god status --json.
func TestNotifyStatus(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"talker": sockJob([]string{sockjobBin, "serve", "-status", "warming up: 3 of 7 caches"}, nil, []string{"notify"}, nil),
	}})
	g.start()
	g.waitJob("talker", 10*time.Second, "showing its STATUS", func(j controlJob) bool {
		return j.State == "run" && j.Status == "warming up: 3 of 7 caches"
	})
}

// TestNotifyWatchdog: a job with watchdog 300 ms that stops sending WATCHDOG=1 is stopped by
// god's watchdog and restarted; while it pings, it is left alone.
func TestNotifyWatchdog(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"dog": sockJob([]string{sockjobBin, "serve", "-watchdog-for", "1s"}, nil, []string{"notify"},
			map[string][]string{"watchdog": {"300"}}),
	}})
	g.start()
	pid := pidOf(t, g.waitState("dog", "run", 10*time.Second))
	if env := strings.Join(envOf(pid), " "); !strings.Contains(env, "WATCHDOG_USEC=300000") {
		t.Errorf("job env has no WATCHDOG_USEC=300000: %s", env)
	}
	fired := g.waitLog(10*time.Second, "the watchdog firing", func(r record) bool {
		return r.str("job") == "dog" && strings.HasPrefix(r.Msg, "watchdog: no WATCHDOG=1") && r.int("pid") == pid
	})
	silent := g.waitLog(time.Second, "the job falling silent", func(r record) bool {
		return r.str("job") == "dog" && r.Msg == "watchdog: falling silent"
	})
	if fired.Time.Before(silent.Time) {
		g.fatalf("the watchdog fired at %v, before the job stopped pinging at %v", fired.Time, silent.Time)
	}
	g.waitJob("dog", 10*time.Second, "restarted", func(j controlJob) bool {
		return len(j.Processes) == 1 && j.Processes[0].Pid != pid && j.Restarts >= 1
	})
}

// TestNotifySpoofed: READY=1 sent to god's NOTIFY_SOCKET by a process outside the job (this
// test) is dropped and logged; the job stays in start (it never got READY=1 from itself).
func TestNotifySpoofed(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "n", bashLoader{Jobs: map[string]bashJob{
		"victim": sockJob([]string{sockjobBin, "serve", "-ready=false"}, nil, []string{"notify"}, nil),
	}})
	g.start()
	pid := pidOf(t, g.waitState("victim", "start", 10*time.Second))
	path := envValue(pid, "NOTIFY_SOCKET")
	if path == "" {
		t.Fatalf("job %d has no NOTIFY_SOCKET", pid)
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("READY=1\nSTATUS=spoofed")); err != nil {
		t.Fatal(err)
	}
	// god may hold a message from an unknown pid for up to 5 s (a job's new process can speak
	// before god has recorded its pid); after that it must be dropped and logged.
	g.waitLog(10*time.Second, "the spoofed message dropped and logged (within god's 5 s hold for unknown pids)", func(r record) bool {
		return strings.Contains(r.Msg, "dropped") && strings.Contains(r.Msg, "notify") && r.int("pid") == os.Getpid()
	})
	if j, _ := g.job("victim"); j.State != "start" || j.Status != "" || j.Processes[0].State != "starting" {
		g.fatalf("after a spoofed READY=1: %+v", j)
	}
}
