package control

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenModes(t *testing.T) {
	dir := filepath.Join(shortDir(t), "god")
	path := filepath.Join(dir, "god.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	dfi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := dfi.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %04o, want 0700", perm)
	}
	sfi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if sfi.Mode().Type() != os.ModeSocket || sfi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with mode 0600", sfi.Mode())
	}
	// Close removes the socket file: a clean exit leaves nothing behind.
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("socket file still there after Close: %v", err)
	}
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "god.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ln2, err := Listen(path)
	if err == nil {
		ln2.Close()
		t.Fatal("second Listen on a live socket succeeded")
	}
	if want := "god already running at " + path; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// The live god's socket is untouched.
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("first listener no longer reachable: %v", err)
	}
	conn.Close()
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "god.sock")
	// A god that crashed leaves its socket file behind with no listener.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer ln.Close()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("new listener not reachable: %v", err)
	}
	conn.Close()
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "god.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(path); err == nil {
		ln.Close()
		t.Fatal("Listen replaced a regular file")
	} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("error %q should name %s and say it is not a socket", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Error("the regular file was changed")
	}
}

func TestListenRefusesUnsafeDir(t *testing.T) {
	base := shortDir(t)
	open := filepath.Join(base, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(filepath.Join(open, "god.sock")); err == nil {
		ln.Close()
		t.Error("Listen accepted a world-writable, non-sticky directory")
	} else if !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("error %q should say the directory is writable by others", err)
	}

	if os.Geteuid() != 0 {
		t.Log("not root: skipping the foreign-owner case (needs chown)")
		return
	}
	foreign := filepath.Join(base, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if ln, err := Listen(filepath.Join(foreign, "god.sock")); err == nil {
		ln.Close()
		t.Error("Listen accepted a directory owned by uid 65534")
	} else if !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("error %q should name the owner uid", err)
	}
}
