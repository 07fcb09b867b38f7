package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Listen creates god's control socket at path and returns its listener.
//
// The parent directory is created with mode 0700 if it does not exist. An
// existing directory must be owned by god's euid or by root, and must not be
// group- or world-writable unless it has the sticky bit (as /tmp does), so
// that no other user can replace the socket under god.
//
// A socket file already at path is replaced only when no one listens on it (a
// stale socket left by a god that crashed); a live god there is an error
// "god already running at PATH". Anything else at path is an error too.
// Concurrent Listen calls on the same directory are serialised with flock, so
// two gods starting at once cannot both replace the socket.
//
// The socket file gets mode 0600. The server checks every peer's credentials
// as well, which also covers the moment between bind and chmod.
//
// The returned listener removes path when it is closed (net's default): god
// closes it on a clean exit and the socket file goes away. A god that hands
// the listener to its next image (upgrade by re-exec) does not call Close, so
// the path survives the handover. Errors name the path.
func Listen(path string) (*net.UnixListener, error) {
	if path == "" {
		return nil, errors.New("control socket: empty path")
	}
	dir := filepath.Dir(path)
	if err := prepareDir(dir); err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer unlock()

	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return ln, nil
}

// prepareDir creates dir with mode 0700, or checks that an existing dir is
// safe to hold the socket: a dir another user controls would let that user
// swap the socket for their own.
func prepareDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err == nil {
		// Mkdir applied the umask; 0700 is already the most it allows.
		return nil
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		return nil
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("directory %s: no owner information", dir)
	}
	if uid := int(st.Uid); uid != os.Geteuid() && uid != 0 {
		return fmt.Errorf("directory %s is owned by uid %d, not by us (uid %d) or root", dir, uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0 {
		return fmt.Errorf("directory %s is writable by others (mode %04o) and not sticky", dir, fi.Mode().Perm())
	}
	return nil
}

// lockDir takes an exclusive flock on dir, held only while Listen checks and
// replaces the socket: between two gods starting at once, the second then
// sees the first one's live socket instead of deleting it.
func lockDir(dir string) (unlock func(), err error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock directory %s: %w", dir, err)
	}
	// Bounded wait: another god holds the lock only for the few syscalls of
	// its own Listen.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { unix.Close(fd) }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("held by another process for 5s: %w", err)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	unix.Close(fd)
	return nil, fmt.Errorf("lock directory %s: %w", dir, err)
}

// removeStale deletes a socket file at path that no one listens on, and
// refuses a live one or a file that is not a socket.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s: exists and is not a socket (%s)", path, fi.Mode().Type())
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("god already running at %s", path)
	}
	if errors.Is(err, syscall.EAGAIN) {
		// The listener's backlog is full: someone listens, and is busy.
		return fmt.Errorf("god already running at %s (busy)", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: probing existing socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing stale socket: %w", path, err)
	}
	return nil
}
