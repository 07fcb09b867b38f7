package control

import (
	"os"
	"path/filepath"
	"strconv"
)

// SocketPath resolves the control socket path, so that the daemon and the
// CLI agree on it without configuration: the flag value if non-empty, else
// $GOD_SOCKET, else /run/god/god.sock when running as root (euid 0), else
// $XDG_RUNTIME_DIR/god.sock, else /tmp/god-UID/god.sock. Empty environment
// variables count as unset.
func SocketPath(flag string) string {
	if flag != "" {
		return flag
	}
	if p := os.Getenv("GOD_SOCKET"); p != "" {
		return p
	}
	if os.Geteuid() == 0 {
		return "/run/god/god.sock"
	}
	if dir := os.Getenv("XDG_RUNTIME_DIR"); dir != "" {
		return filepath.Join(dir, "god.sock")
	}
	return filepath.Join(os.TempDir(), "god-"+strconv.Itoa(os.Geteuid()), "god.sock")
}
