package jobstate

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended, as the kernel reported it to the one wait in god.
type Exit struct {
	Pid    int
	Status syscall.WaitStatus
	Time   time.Time
}

// Code is the exit status in the form godv1's onExit uses: the exit code, or 128+N when killed by signal N.
func (e Exit) Code() int {
	if e.Status.Signaled() {
		return 128 + int(e.Status.Signal())
	}
	return e.Status.ExitStatus()
}

// Success reports a zero exit code.
func (e Exit) Success() bool { return e.Status.Exited() && e.Status.ExitStatus() == 0 }

// String reads like "exit 1" or "signal 9 (SIGKILL)".
func (e Exit) String() string {
	if e.Status.Signaled() {
		return fmt.Sprintf("signal %d (%s)", int(e.Status.Signal()), unix.SignalName(e.Status.Signal()))
	}
	return fmt.Sprintf("exit %d", e.Status.ExitStatus())
}

// ExitStatus returns the status that is an exit with code, or a death by signal sig when sig > 0:
// for tests, and for exits god learns of without a wait status.
func ExitStatus(code int, sig syscall.Signal) syscall.WaitStatus {
	if sig > 0 {
		return syscall.WaitStatus(sig)
	}
	return syscall.WaitStatus(code << 8)
}
