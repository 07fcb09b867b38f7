package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/internal/dirwatch"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/notify"
	"github.com/emielm/watchgod/internal/procfs"
)

// A job's `pid-file` (systemd's PIDFile=): a stock program that replaces itself (tableflip's
// PIDFile option, nginx's binary upgrade) names its new main process there instead of sending
// MAINPID=. God watches the file's directory through inotify and, when the file is written or
// renamed into place with a pid that is alive and in the job's process group, feeds the job's
// machine the same event as a MAINPID= from that process: the hand-over, its safety checks
// (jobstate, reaper.Adopt) and its log lines are those of MAINPID=.

// pidFileSettle folds the events of one write (create, write, close, rename) into one read.
const pidFileSettle = 20 * time.Millisecond

// maxPidFile bounds what is read of a pid file: a pid and a newline, with room for blanks.
const maxPidFile = 64

// pidFileRead is one reading of the pid file after a change: a pid, or why there is none.
type pidFileRead struct {
	path string
	pid  int
	err  error
}

// pidWatch is the inotify watch of one job's pid file; its goroutine sends readings to the job.
type pidWatch struct {
	path string
	w    *dirwatch.Watch
}

// syncPidWatch makes the watch follow the job's current definition: started, moved to another
// path or ended when `pid-file` changed (a define, a reload).
func (j *job) syncPidWatch() {
	path := j.m.Def().PidFile
	if j.pidWatch != nil && j.pidWatch.path == path {
		return
	}
	j.stopPidWatch()
	if path == "" {
		return
	}
	w, err := dirwatch.New(filepath.Dir(path), pidFileSettle)
	if err != nil {
		j.log.Error("pid-file: cannot watch; the job's own pid file is not followed", "path", path, "err", err)
		j.pidWatch = &pidWatch{path: path} // not retried until the definition changes
		return
	}
	j.pidWatch = &pidWatch{path: path, w: w}
	go j.readPidFiles(path, w)
}

// stopPidWatch ends the watch; its goroutine ends when the watch's channel closes.
func (j *job) stopPidWatch() {
	if j.pidWatch != nil && j.pidWatch.w != nil {
		j.pidWatch.w.Close()
	}
	j.pidWatch = nil
}

// readPidFiles reads the pid file each time inotify says it changed and sends the reading to the
// job's loop. A file that is removed says nothing: the job's processes are known already.
func (j *job) readPidFiles(path string, w *dirwatch.Watch) {
	base := filepath.Base(path)
	for {
		select {
		case name, ok := <-w.Names():
			if !ok {
				return
			}
			if name != base && name != "" {
				continue
			}
			pid, err := readPidFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			select {
			case j.pidFiles <- pidFileRead{path: path, pid: pid, err: err}:
			case <-j.gone:
				return
			}
		case <-w.Events():
		case <-j.gone:
			return
		}
	}
}

// readPidFileAtExit reads the job's pid file when one of its processes exits, before the exit
// is judged, as systemd reads PIDFile= when the main process exits: a process that hands over
// to a successor and exits at once (as soon as the successor wrote its pid) may be gone before
// the watch's settled reading arrives (pidFileSettle), and the job would be taken for ended.
// A pid the job has already, or no readable pid, changes nothing.
func (j *job) readPidFileAtExit(pid int) {
	if j.pidWatch == nil || j.pidWatch.w == nil {
		return
	}
	if named, err := readPidFile(j.pidWatch.path); err == nil && named != pid {
		j.pidFileChanged(pidFileRead{path: j.pidWatch.path, pid: named})
	}
}

// readPidFile reads a pid file strictly: decimal digits, a positive pid, optional white space
// around it (a trailing newline, as every program writes).
func readPidFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, maxPidFile+1)
	n, err := f.Read(buf)
	if err != nil && n == 0 {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return parsePid(string(buf[:n]))
}

// parsePid reads the content of a pid file.
func parsePid(s string) (int, error) {
	if len(s) > maxPidFile {
		return 0, fmt.Errorf("more than %d bytes", maxPidFile)
	}
	t := strings.TrimSpace(s)
	if t == "" || strings.Trim(t, "0123456789") != "" || t[0] == '0' {
		return 0, fmt.Errorf("content %.40q is not a pid", s)
	}
	pid, err := strconv.ParseInt(t, 10, 32)
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("content %.40q is not a pid", s)
	}
	return int(pid), nil
}

// pidFileChanged follows a pid read from the job's pid file as a MAINPID= of that process: a
// pid that is already the job's changes nothing (the first process naming itself); one that is
// dead or outside the job's process groups is logged (at most once a second) and ignored.
func (j *job) pidFileChanged(r pidFileRead) {
	if j.pidWatch == nil || j.pidWatch.path != r.path {
		return // a reading of a watch that ended
	}
	if j.pidLog == nil {
		j.pidLog = notify.NewLogLimiter(time.Second, func() *slog.Logger { return j.log })
	}
	if r.err != nil {
		j.pidLog.Log(slog.LevelWarn, "bad", "pid-file: ignored", "path", r.path, "err", r.err)
		return
	}
	if j.m.HasPid(r.pid) {
		return
	}
	if err := syscall.Kill(r.pid, 0); err == syscall.ESRCH {
		j.pidLog.Log(slog.LevelWarn, "dead", "pid-file: names no live process: ignored", "path", r.path, "pid", r.pid)
		return
	}
	pgid, err := procfs.ProcessGroup(r.pid)
	if err != nil || !j.m.Owns(r.pid, pgid) {
		j.pidLog.Log(slog.LevelWarn, "stranger", "pid-file: names a process that is not the job's: ignored",
			"path", r.path, "pid", r.pid, "pgid", pgid)
		return
	}
	j.log.Info("pid-file: new main pid", "path", r.path, "pid", r.pid)
	j.handle(jobstate.Notified{Pid: r.pid, SenderPgid: pgid, MainPid: r.pid})
}
