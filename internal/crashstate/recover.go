package crashstate

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/procfs"
)

// Recovered is what a new god took over from a dead one.
type Recovered struct {
	// Sockets are the listening sockets taken back from the orphans, by socket name, for god to
	// hand to the jobs that declare them (as sockets inherited from its parent are).
	Sockets map[string][]*os.File
	Ended   []int // orphans ended
	Left    []int // orphans that did not end (they survived SIGKILL: in uninterruptible sleep)
}

// Recover ends the processes of a dead god's jobs, after taking back their listening sockets. It
// acts only when the god that wrote st is gone; a process whose start time differs from the
// file's (its pid was reused) is never touched. Each orphan's process group gets SIGTERM, and
// SIGKILL after timeout. tagged, when set, is the GOD_SOCKET value the dead god gave its jobs:
// every process that still carries it in its environment (a daemon that left its job before the
// dead god could note it) is its orphan too.
func Recover(st *State, tagged string, timeout time.Duration, log *slog.Logger) (*Recovered, error) {
	if st.God.Alive() {
		return nil, fmt.Errorf("the god that wrote the state (pid %d) still runs", st.God.Pid)
	}
	rec := &Recovered{Sockets: map[string][]*os.File{}}
	var orphans []Proc
	for _, j := range st.Jobs {
		var specs []fdpass.Spec
		for _, s := range j.Sockets {
			if spec, err := fdpass.ParseSpec(s); err == nil {
				specs = append(specs, spec)
			}
		}
		for _, p := range j.Procs {
			if !p.Alive() {
				continue
			}
			orphans = append(orphans, p)
			for name, f := range takeSockets(p.Pid, specs, rec.Sockets) {
				rec.Sockets[name] = append(rec.Sockets[name], f)
				log.Info("recovery: took a socket back from an orphan of the dead god", "job", j.Name, "pid", p.Pid, "socket", name)
			}
		}
	}
	if tagged != "" {
		known := map[int]bool{os.Getpid(): true}
		for _, p := range orphans {
			known[p.Pid] = true
		}
		for _, p := range taggedProcs("GOD_SOCKET=" + tagged) {
			if !known[p.Pid] {
				orphans = append(orphans, p)
			}
		}
	}
	if len(orphans) == 0 {
		return rec, nil
	}
	for _, p := range orphans {
		log.Warn("recovery: ending an orphan of the dead god", "pid", p.Pid, "pgid", p.Pgid)
		signalProc(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(timeout)
	killed := false
	for {
		var alive []Proc
		for _, p := range orphans {
			if p.Alive() && procfs.State(p.Pid) != 'Z' {
				alive = append(alive, p)
			}
		}
		if len(alive) == 0 {
			break
		}
		if time.Now().After(deadline) {
			if killed {
				for _, p := range alive {
					rec.Left = append(rec.Left, p.Pid)
				}
				break
			}
			for _, p := range alive {
				log.Warn("recovery: orphan still runs after SIGTERM; killing it", "pid", p.Pid)
				signalProc(p, syscall.SIGKILL)
			}
			killed, deadline = true, time.Now().Add(5*time.Second)
		}
		time.Sleep(10 * time.Millisecond) // orphans are no children of this god: polled, bounded above
	}
	for _, p := range orphans {
		rec.Ended = append(rec.Ended, p.Pid)
	}
	return rec, nil
}

// signalProc signals p's process group when it leads one, else p alone.
func signalProc(p Proc, sig syscall.Signal) {
	if p.Pgid == p.Pid && p.Pgid > 1 {
		syscall.Kill(-p.Pgid, sig)
		return
	}
	syscall.Kill(p.Pid, sig)
}

// takeSockets copies out of pid every listening socket that serves one of specs and is not taken
// yet (pidfd_getfd: same uid or CAP_SYS_PTRACE).
func takeSockets(pid int, specs []fdpass.Spec, taken map[string][]*os.File) map[string]*os.File {
	if len(specs) == 0 {
		return nil
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(pidfd)
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil
	}
	out := map[string]*os.File{}
	for _, e := range ents {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if err != nil {
			continue
		}
		f := os.NewFile(uintptr(fd), link)
		kept := false
		for _, spec := range specs {
			if _, dup := out[spec.Name]; dup || len(taken[spec.Name]) > 0 {
				continue
			}
			if fdpass.Matches(f, spec) {
				out[spec.Name] = f
				kept = true
				break
			}
		}
		if !kept {
			f.Close()
		}
	}
	return out
}

// taggedProcs lists the processes whose environment holds kv (and GOD_UNIT, which only job
// processes and their descendants have): a dead god's descendants, wherever they went.
func taggedProcs(kv string) []Proc {
	ents, _ := os.ReadDir("/proc")
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := procfs.Environ(pid) // waits out an exec: an orphan may be in one
		if err != nil {
			continue
		}
		env := "\x00" + string(b)
		if !strings.Contains(env, "\x00"+kv+"\x00") || !strings.Contains(env, "\x00GOD_UNIT=") {
			continue
		}
		start, err := procfs.StartTime(pid)
		if err != nil {
			continue
		}
		pgid, _ := pgidOf(pid)
		out = append(out, Proc{Pid: pid, Pgid: pgid, Start: start})
	}
	return out
}
