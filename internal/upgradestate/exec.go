package upgradestate

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Inherited is what god's previous image left across the re-exec.
type Inherited struct {
	State *State // nil when it could not be read
	// Failed is set in an old image that runs again after its new image gave up: why.
	Failed string
	raw    []byte
}

// TakeInherited reads the state god's old image left in the memfd named by GOD_UPGRADE_STATE,
// and unsets the variables (no job must see them). It returns nil, nil when god was not
// re-executed. When the state cannot be read, it returns what it has with the error, so that the
// caller can FallBack to the image that wrote it.
func TakeInherited() (*Inherited, error) {
	v := os.Getenv(EnvState)
	if v == "" {
		return nil, nil
	}
	os.Unsetenv(EnvState)
	in := &Inherited{Failed: os.Getenv(EnvFailed)}
	os.Unsetenv(EnvFailed)
	var fd int
	if _, err := fmt.Sscanf(v, "%d", &fd); err != nil || fd < 3 {
		return in, fmt.Errorf("%s=%q: not an fd", EnvState, v)
	}
	f := os.NewFile(uintptr(fd), "god-upgrade-state")
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, 1<<30))
	if err != nil {
		return in, fmt.Errorf("upgrade state: %w", err)
	}
	in.raw = raw
	in.State, err = Read(bytes.NewReader(raw))
	return in, err
}

// FallBack is for a new image that cannot take over (its state unreadable, its restore failed):
// it execs the image that wrote the state again, same pid, with the same state and fds, and says
// why in GOD_UPGRADE_FAILED. It returns only when that is impossible (an older god left no image
// to go back to, or the exec failed): god then has nothing left but to exit.
func (in *Inherited) FallBack(why error) error {
	if in == nil || in.State == nil || in.State.FallbackFd < 3 || in.Failed != "" {
		// No image to go back to; or this is it, run again, and failing too: no loop.
		return fmt.Errorf("no image to fall back to: %w", why)
	}
	st := in.State
	if err := KeepOpen(append(st.Fds(), st.FallbackFd)); err != nil {
		return fmt.Errorf("fall back: %w (after: %v)", err, why)
	}
	mfd, err := Memfd(in.raw)
	if err != nil {
		return fmt.Errorf("fall back: %w (after: %v)", err, why)
	}
	// The image is open as fd FallbackFd: /proc/self/fd/N execs it even when its file was
	// replaced or removed since.
	err = syscall.Exec(fmt.Sprintf("/proc/self/fd/%d", st.FallbackFd), os.Args, ExecEnv(mfd, why.Error()))
	return fmt.Errorf("fall back: exec the old image: %w (after: %v)", err, why)
}

// KeepOpen clears close-on-exec on every fd (those below 0 are none), so that they survive the
// exec of god's next image.
func KeepOpen(fds []int) error {
	for _, fd := range fds {
		if fd < 0 {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return nil
}

// CloseOnExec sets close-on-exec on every fd again (an exec failed: they are god's own again).
func CloseOnExec(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.CloseOnExec(fd)
		}
	}
}

// Memfd returns a memfd that holds data, read from its start, and survives an exec: the state
// for the next image, named to it by ExecEnv.
func Memfd(data []byte) (int, error) {
	mfd, err := unix.MemfdCreate("god-upgrade-state", 0)
	if err != nil {
		return -1, fmt.Errorf("memfd: %w", err)
	}
	if _, err := unix.Write(mfd, data); err != nil {
		unix.Close(mfd)
		return -1, fmt.Errorf("memfd: %w", err)
	}
	if _, err := unix.Seek(mfd, 0, io.SeekStart); err != nil {
		unix.Close(mfd)
		return -1, fmt.Errorf("memfd: %w", err)
	}
	return mfd, nil
}

// ExecEnv is the environment of god's next image: god's own (unlike a job's, it keeps systemd's
// variables, NOTIFY_SOCKET, WATCHDOG_USEC..., which belong to god), with the state in memfd mfd
// and, when an image goes back to the one before it, failed: why.
func ExecEnv(mfd int, failed string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, EnvState+"=") || strings.HasPrefix(kv, EnvFailed+"=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, EnvState+"="+strconv.Itoa(mfd))
	if failed != "" {
		env = append(env, EnvFailed+"="+failed)
	}
	return env
}
