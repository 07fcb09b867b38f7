// Package procfs reads what god needs of other processes from /proc, through the moments when
// /proc gives a half answer.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// environWait bounds how long Environ waits out an exec: an exec takes well under a millisecond
// to a few milliseconds on an idle machine. Environ runs on god's reaper, which reaps nothing
// meanwhile, so a longer exec (a loaded machine) is left to the caller to read again later.
const environWait = 50 * time.Millisecond

// ErrInExec is returned by Environ when a live process showed no environment for all of
// environWait: it is still in an exec (or stopped in the middle of one).
var ErrInExec = errors.New("no environment: the process is in an exec")

// Environ reads the environment pid was exec'd with, NUL-separated as /proc/PID/environ holds it.
//
// A process in the middle of an exec shows an empty environment for a moment: its old memory is
// gone and its new one holds no environment yet (measured: one read in seven of a process that
// execs in a loop). Environ reads again through that moment, for up to environWait, returning
// ErrInExec after it. The environment is read in one read call, which the kernel serves from one
// memory: read piecemeal, an exec between two pieces cuts it short. A zombie, a kernel thread and
// an exiting process have no environment: they return an empty one at once. A process that is
// gone returns the error of the open (ENOENT or ESRCH).
func Environ(pid int) ([]byte, error) {
	path := "/proc/" + strconv.Itoa(pid) + "/environ"
	pause := 50 * time.Microsecond
	deadline := time.Now().Add(environWait)
	for {
		b, err := readWhole(path)
		if err != nil || len(b) > 0 {
			return b, err
		}
		f := statFields(pid)
		if f == nil {
			return nil, os.ErrNotExist
		}
		if f[0] == "Z" || f[0] == "X" || hasFlag(f, pfExiting|pfKthread) {
			return nil, nil
		}
		if time.Now().After(deadline) {
			return nil, ErrInExec
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// readWhole reads a /proc file in a single read from its start, with a buffer that grows until
// the read no longer fills it.
func readWhole(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := f.ReadAt(buf, 0)
		if n < len(buf) {
			if err == io.EOF {
				err = nil
			}
			return buf[:n], err
		}
		if len(buf) >= maxEnviron {
			return buf[:n], nil
		}
		buf = make([]byte, 4*len(buf))
	}
}

// maxEnviron bounds the buffer of readWhole: more than the kernel lets an exec pass (ARG_MAX).
const maxEnviron = 16 << 20

// Getenv finds key in an environment read by Environ.
func Getenv(env []byte, key string) (string, bool) {
	for _, kv := range bytes.Split(env, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte(key+"=")); ok {
			return string(v), true
		}
	}
	return "", false
}

// State is the state letter of pid from /proc/PID/stat (R, S, D, Z, ...), 0 when it is gone.
func State(pid int) byte {
	f := statFields(pid)
	if f == nil {
		return 0
	}
	return f[0][0]
}

// The task flags of /proc/PID/stat that Environ looks at (include/linux/sched.h).
const (
	pfExiting = 0x00000004 // exiting: its memory is going or gone
	pfKthread = 0x00200000 // a kernel thread: it never had an environment
)

// hasFlag reports whether the flags field of stat fields f has any of mask.
func hasFlag(f []string, mask uint64) bool {
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&mask != 0
}

// statFields are the fields of /proc/PID/stat after the command name, from the state on; nil
// when pid is gone. The command name may hold spaces and ')', so they start after the last ')'.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	return fieldsAfterComm(b)
}

// fieldsAfterComm splits a /proc/PID/stat line into its fields after the command name (see
// statFields); nil when it has none.
func fieldsAfterComm(b []byte) []string {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) == 0 || f[0] == "" {
		return nil
	}
	return f
}

// StartTime is field 22 of /proc/PID/stat: when pid started, in clock ticks since boot. With the
// pid it names one process for good: a pid that was reused has another start time.
func StartTime(pid int) (uint64, error) {
	f := statFields(pid)
	if f == nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, os.ErrNotExist)
	}
	// f[0] is field 3 (state): starttime, field 22, is f[19].
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// ProcessGroup returns the process group of pid, read from /proc/PID/stat.
// god uses it to accept a notify message from a job's descendant that stayed
// in the job's process group (a shell wrapper's child sending READY=1), and a
// MAINPID= or pid file naming one. The process name in stat may hold spaces
// and ')', so the fields are counted from the last ')'. A pid that is gone is
// an error wrapping fs.ErrNotExist.
func ProcessGroup(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("process group of pid %d: invalid pid", pid)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("process group of pid %d: %w", pid, err)
	}
	pgrp, err := statPgrp(data)
	if err != nil {
		return 0, fmt.Errorf("process group of pid %d: /proc/%d/stat: %w", pid, pid, err)
	}
	return pgrp, nil
}

// ParentAndGroup returns the parent pid and the process group of pid, read
// from /proc/PID/stat in one read: god admits a notify datagram, and adopts a
// MAINPID=, from a process it has just started (its child, not yet recorded as
// a job's) or from one in a job's group. A pid that is gone is an error
// wrapping fs.ErrNotExist.
func ParentAndGroup(pid int) (ppid, pgrp int, err error) {
	if pid <= 0 {
		return 0, 0, fmt.Errorf("parent of pid %d: invalid pid", pid)
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("parent of pid %d: %w", pid, err)
	}
	ppid, pgrp, err = statIDs(data)
	if err != nil {
		return 0, 0, fmt.Errorf("parent of pid %d: /proc/%d/stat: %w", pid, pid, err)
	}
	return ppid, pgrp, nil
}

// statPgrp reads the pgrp field from the contents of /proc/PID/stat:
// "PID (COMM) STATE PPID PGRP ...".
func statPgrp(stat []byte) (int, error) {
	_, pgrp, err := statIDs(stat)
	return pgrp, err
}

// statIDs reads the ppid and pgrp fields from the contents of
// /proc/PID/stat.
func statIDs(stat []byte) (ppid, pgrp int, err error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, errors.New("no ')' after the process name")
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 3 {
		return 0, 0, fmt.Errorf("%d fields after the process name, want at least 3", len(f))
	}
	ppid, err = strconv.Atoi(string(f[1]))
	if err != nil || ppid < 0 {
		return 0, 0, fmt.Errorf("ppid field %.20q is not a pid", f[1])
	}
	pgrp, err = strconv.Atoi(string(f[2]))
	if err != nil || pgrp < 0 {
		return 0, 0, fmt.Errorf("pgrp field %.20q is not a process group", f[2])
	}
	return ppid, pgrp, nil
}
