package control

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestSocketPath(t *testing.T) {
	t.Setenv("GOD_SOCKET", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	if got := SocketPath("/x/flag.sock"); got != "/x/flag.sock" {
		t.Errorf("flag: got %q", got)
	}
	t.Setenv("GOD_SOCKET", "/x/env.sock")
	if got := SocketPath(""); got != "/x/env.sock" {
		t.Errorf("GOD_SOCKET: got %q", got)
	}
	if got := SocketPath("/x/flag.sock"); got != "/x/flag.sock" {
		t.Errorf("flag beats GOD_SOCKET: got %q", got)
	}
	t.Setenv("GOD_SOCKET", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	want := "/run/user/1000/god.sock"
	if os.Geteuid() == 0 {
		want = "/run/god/god.sock"
	}
	if got := SocketPath(""); got != want {
		t.Errorf("XDG_RUNTIME_DIR set: got %q, want %q", got, want)
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	want = filepath.Join(os.TempDir(), "god-"+strconv.Itoa(os.Geteuid()), "god.sock")
	if os.Geteuid() == 0 {
		want = "/run/god/god.sock"
	}
	if got := SocketPath(""); got != want {
		t.Errorf("nothing set: got %q, want %q", got, want)
	}
}
