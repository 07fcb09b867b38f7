package watchgod

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/loader"
)

// Init is called once the jobs are defined, typically at the end of an init
// function. It returns at once when the program runs normally. Run as
// "PROGRAM godv1", it serves the loader protocol on stdin and stdout for the
// jobs defined with Job and exits: with status 0 when god closes stdin, 1 on
// an error (reported on stderr). Started by god for a job whose ExecFunc is
// set, it runs ExecFunc and exits with status 0.
func Init() {
	if len(os.Args) >= 2 && os.Args[1] == loader.Version {
		os.Exit(serveStdio())
	}
	name, ok := os.LookupEnv(execFuncEnv)
	if !ok {
		return
	}
	os.Unsetenv(execFuncEnv) // not for the job's own children
	if d := lookup(name); d != nil && d.ExecFunc != nil {
		d.ExecFunc()
		os.Exit(0)
	}
	fmt.Fprintf(os.Stderr, "watchgod: %s=%q names no job with an ExecFunc; running main\n", execFuncEnv, name)
}

// serveStdio serves godv1 for the registered jobs and returns the exit status.
func serveStdio() int {
	in, out := protocolFiles()
	if err := loader.Serve(in, out, jobSet{}); err != nil {
		fmt.Fprintf(os.Stderr, "watchgod: %v\n", err)
		return 1
	}
	return 0
}

// protocolFiles moves the protocol off fds 0 and 1: it returns private
// close-on-exec copies of stdin and stdout, and points fd 0 at /dev/null and
// fd 1 at stderr. Output printed by a job's funcs then lands in god's log
// instead of in the protocol, and their child processes do not hold god's
// pipes open. If that fails, it returns os.Stdin and os.Stdout.
func protocolFiles() (in, out *os.File) {
	inFd, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return os.Stdin, os.Stdout
	}
	outFd, err := unix.FcntlInt(1, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		unix.Close(inFd)
		return os.Stdin, os.Stdout
	}
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Dup3(null, 0, 0)
		unix.Close(null)
	}
	unix.Dup3(2, 1, 0)
	return os.NewFile(uintptr(inFd), "godv1-stdin"), os.NewFile(uintptr(outFd), "godv1-stdout")
}
