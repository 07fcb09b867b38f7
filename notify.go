package watchgod

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// The job side of the sd_notify protocol: god gives every job process
// NOTIFY_SOCKET as systemd does, so these calls work the same under god and
// under systemd. Each one does nothing and returns nil when NOTIFY_SOCKET is
// unset, so a job runs unchanged outside a supervisor. None of them unsets
// NOTIFY_SOCKET: a job may report many times.

// Limits that god's notify socket enforces, checked here so a job gets an
// error instead of a silently dropped message.
const (
	notifyMaxValue  = 4 << 10 // bytes in one value
	notifyMaxFds    = 253     // SCM_MAX_FD
	notifyMaxFdName = 255
)

// Ready tells god (or systemd) that the job is ready to serve: READY=1. A job
// whose loader answers ready ["notify"] is starting until it calls Ready; call
// it again after a reload.
func Ready() error { return notify(daemon.SdNotifyReady) }

// Status sets the job's one-line status shown by `god status`: STATUS=s.
// The protocol is line based, so line breaks and NUL bytes in s become
// spaces, bytes that are not UTF-8 become U+FFFD, and s is cut to 4 KiB at a
// character boundary.
func Status(s string) error { return notify("STATUS=" + notifyStatus(s)) }

// Reloading tells god that the job is reloading its configuration:
// RELOADING=1 with MONOTONIC_USEC, the time it started, without which
// systemd's `systemctl reload` waits for its timeout. Call Ready when done.
func Reloading() error {
	return notify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping tells god that the job is shutting down on its own: STOPPING=1.
func Stopping() error { return notify(daemon.SdNotifyStopping) }

// Watchdog tells god that the job is alive: WATCHDOG=1. With a watchdog set
// by the loader, a job must send it at least every WatchdogInterval.
func Watchdog() error { return notify(daemon.SdNotifyWatchdog) }

// WatchdogInterval is how often the job should call Watchdog: half of
// WATCHDOG_USEC, so one late ping is not fatal. It is 0 when there is no
// watchdog: WATCHDOG_USEC unset or invalid, or WATCHDOG_PID naming another
// process (a child that inherited its parent's environment).
func WatchdogInterval() time.Duration {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil || d <= 0 {
		return 0
	}
	return d / 2
}

// StoreFiles hands files to god to keep for the job's next process:
// FDSTORE=1 (and FDNAME=name when name is not empty) with the files attached.
// god owns duplicates of them; the caller still owns and closes its own, and
// their blocking mode is left as it is.
// name is 1 to 255 printable ASCII characters other than ':'. At most 253
// files go in one call.
//
// go-systemd cannot send fds, so this writes the datagram itself, with
// sendmsg(2) and SCM_RIGHTS over an unconnected unixgram socket, as
// libsystemd's sd_pid_notify_with_fds does.
func StoreFiles(name string, files ...*os.File) error {
	if err := storeFilesCheck(name, files); err != nil {
		return fmt.Errorf("watchgod: store files %q: %w", name, err)
	}
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	payload := "FDSTORE=1\n"
	if name != "" {
		payload += "FDNAME=" + name + "\n"
	}
	fds, err := storeFilesDup(files)
	if err != nil {
		return fmt.Errorf("watchgod: store files %q: %w", name, err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	// An empty name: the kernel binds the socket to a fresh abstract address,
	// which it would do anyway to pass credentials.
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("watchgod: store files %q: %w", name, err)
	}
	defer c.Close()
	to := &net.UnixAddr{Name: path, Net: "unixgram"}
	if _, _, err := c.WriteMsgUnix([]byte(payload), unix.UnixRights(fds...), to); err != nil {
		return fmt.Errorf("watchgod: store files %q on NOTIFY_SOCKET %s: %w", name, path, err)
	}
	return nil
}

// storeFilesCheck refuses what god would drop, so the caller hears of it.
func storeFilesCheck(name string, files []*os.File) error {
	if len(files) == 0 {
		return errors.New("no files")
	}
	if len(files) > notifyMaxFds {
		return fmt.Errorf("%d files, at most %d in one message", len(files), notifyMaxFds)
	}
	for i, f := range files {
		if f == nil {
			return fmt.Errorf("file %d is nil", i)
		}
	}
	if name == "" {
		return nil
	}
	if len(name) > notifyMaxFdName {
		return fmt.Errorf("name longer than %d bytes", notifyMaxFdName)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c > '~' || c == ':' {
			return fmt.Errorf("name has %q at %d (want printable ASCII but ':')", c, i)
		}
	}
	return nil
}

// storeFilesDup returns close-on-exec duplicates of the files' fds, taken
// through SyscallConn: f.Fd() would switch a non-blocking file (a listener
// from net.TCPListener.File, a pipe) to blocking mode, and with it every copy
// of the file description, the caller's own listener included.
func storeFilesDup(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	fail := func(err error) ([]int, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	for i, f := range files {
		rc, err := f.SyscallConn()
		if err != nil {
			return fail(fmt.Errorf("file %d (%s): %w", i, f.Name(), err))
		}
		var dupErr error
		err = rc.Control(func(fd uintptr) {
			var d int
			d, dupErr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
			if dupErr == nil {
				fds = append(fds, d)
			}
		})
		if err == nil {
			err = dupErr
		}
		if err != nil {
			return fail(fmt.Errorf("file %d (%s): %w", i, f.Name(), err))
		}
	}
	return fds, nil
}

// notify sends state, a message of KEY=VALUE lines, when NOTIFY_SOCKET is set.
func notify(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		first, _, _ := strings.Cut(state, "\n")
		return fmt.Errorf("watchgod: notify %.40q on NOTIFY_SOCKET %s: %w", first, os.Getenv("NOTIFY_SOCKET"), err)
	}
	return nil
}

// notifyStatus makes s one valid STATUS value.
func notifyStatus(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if len(s) <= notifyMaxValue {
		return s
	}
	cut := notifyMaxValue
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
