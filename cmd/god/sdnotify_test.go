package main

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
)

// nextNotify reads one datagram, failing the test after a second.
func nextNotify(t testing.TB, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no sd_notify message: %v", err)
	}
	return string(buf[:n])
}

// TestNotifyMessages checks each message god sends its service manager, as the manager reads it.
func TestNotifyMessages(t *testing.T) {
	c := testutil.ListenNotify(t, false)

	notifyReady()
	if got := nextNotify(t, c); got != "READY=1" {
		t.Errorf("notifyReady sent %q", got)
	}

	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	before := ts.Nano() / 1000
	notifyReloading()
	got := nextNotify(t, c)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("notifyReloading sent %q, want RELOADING=1 and MONOTONIC_USEC=", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil || usec < before {
		t.Errorf("MONOTONIC_USEC=%d (%v): want CLOCK_MONOTONIC now, at least %d", usec, err, before)
	}

	notifyStatus("3 jobs, 2 running, 1 failed")
	if got := nextNotify(t, c); got != "STATUS=3 jobs, 2 running, 1 failed" {
		t.Errorf("notifyStatus sent %q", got)
	}

	notifyStopping()
	notifyStopping() // the second is dropped: STOPPING=1 is said once
	notifyReady()    // a marker: the next message must be this one
	if got := nextNotify(t, c); got != "STOPPING=1" {
		t.Errorf("notifyStopping sent %q", got)
	}
	if got := nextNotify(t, c); got != "READY=1" {
		t.Errorf("after STOPPING=1 came %q, want only the marker READY=1", got)
	}
}

// TestNotifyWithoutManager: with no NOTIFY_SOCKET every notification is a no-op, and with one
// nobody listens on, god goes on (the failure is only logged): a manager that appears later gets
// the next message.
func TestNotifyWithoutManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	notifyReady()
	notifyReloading()
	path := filepath.Join(t.TempDir(), "nobody.sock")
	t.Setenv("NOTIFY_SOCKET", path)
	notifyReady()
	notifyStatus("0 jobs, 0 running")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	notifyStatus("1 job, 1 running")
	if got := nextNotify(t, c); got != "STATUS=1 job, 1 running" {
		t.Fatalf("the manager that came later got %q", got)
	}
}
