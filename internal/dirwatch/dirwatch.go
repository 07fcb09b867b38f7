// Package dirwatch follows god's loader directory through inotify: which files in it were
// created, written, moved or removed, and what happened to the directory itself.
package dirwatch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watch reports the names of files in the loader directory that were created, written, moved or
// removed, through inotify: god does not poll the directory. Bursts of events for one name (a build
// writing a file, `mv new old`) are folded: a name is reported once its events have been quiet for
// the settle time.
//
// The directory is followed by its path for as long as god runs: its parent is watched too, so a
// directory that is removed and created again, renamed away and replaced by another, or a symlink
// switched to another directory (`ln -sfn new DIR.tmp && mv -T DIR.tmp DIR`, the usual deploy)
// is watched again as soon as the new one is there, and a full rescan ("") is reported. Only when
// the parent itself is gone does the watch look for the path once a second, until it is back.
type Watch struct {
	f      *os.File
	fd     int
	dir    string // the path god was given (a symlink stays a symlink)
	settle time.Duration
	out    chan string
	events chan string // what happened to the directory itself, for god's log

	wdDir, wdParent int // -1: not watched
}

const watchMask = unix.IN_CREATE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
	unix.IN_DELETE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// parentMask: the entry that is the directory (or its symlink) appearing or going.
const parentMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// New watches dir; names arrive on Names until Close.
func New(dir string, settle time.Duration) (*Watch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	w := &Watch{f: os.NewFile(uintptr(fd), "inotify"), fd: fd, dir: dir, settle: settle,
		out: make(chan string, 64), events: make(chan string, 16), wdDir: -1, wdParent: -1}
	if w.wdDir, err = unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w.wdParent, _ = unix.InotifyAddWatch(fd, filepath.Dir(dir), parentMask) // best effort: / has none
	raw := make(chan string, 256)
	go w.read(raw)
	go w.fold(raw)
	return w, nil
}

// Names delivers the names of changed files; "" stands for "look at everything".
func (w *Watch) Names() <-chan string { return w.out }

// Events says what happened to the directory itself ("is gone; ...", "appeared ...").
func (w *Watch) Events() <-chan string { return w.events }

// Close ends the watch; Names is closed soon after.
func (w *Watch) Close() error { return w.f.Close() }

// note tells god's log what happened to the directory, never blocking the reader.
func (w *Watch) note(msg string) {
	select {
	case w.events <- msg:
	default:
	}
}

// rewatch watches the directory at its path again, if it is there: it was removed, renamed,
// created again or its symlink switched. It reports whether the directory is watched.
func (w *Watch) rewatch() bool {
	if w.wdDir >= 0 {
		unix.InotifyRmWatch(w.fd, uint32(w.wdDir)) // an error: the kernel dropped it already
		w.wdDir = -1
	}
	wd, err := unix.InotifyAddWatch(w.fd, w.dir, watchMask)
	if err != nil {
		return false
	}
	w.wdDir = wd
	return true
}

// read decodes inotify events; "" stands for the directory itself.
func (w *Watch) read(raw chan<- string) {
	defer close(raw)
	buf := make([]byte, 64*1024)
	base := filepath.Base(w.dir)
	polling := false // the parent is gone too: look for the path once a second
	for {
		n, err := w.readSome(buf, polling)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EBADF) {
				raw <- ""
			}
			return
		}
		if n == 0 { // the poll's tick
			if w.wdParent < 0 {
				w.wdParent, _ = unix.InotifyAddWatch(w.fd, filepath.Dir(w.dir), parentMask)
			}
			if w.rewatch() {
				polling = false
				w.note("is back; watching it again")
				raw <- ""
			}
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				b := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(b), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_Q_OVERFLOW != 0:
				raw <- "" // events were lost: rescan everything
			case int(ev.Wd) == w.wdParent && w.wdParent >= 0:
				if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
					w.wdParent = -1
					polling = w.wdDir < 0
					continue
				}
				if name != base {
					continue
				}
				if ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
					if w.rewatch() {
						w.note("appeared (created, moved in or its symlink switched); watching the new one")
					}
				} else if w.wdDir >= 0 && !w.rewatch() {
					w.note("is gone; jobs keep running until it is back")
				}
				raw <- ""
			case int(ev.Wd) == w.wdDir:
				if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_IGNORED) != 0 {
					// The directory went (or the path now names another): follow the path.
					if !w.rewatch() {
						w.note("is gone; jobs keep running until it is back")
						polling = w.wdParent < 0
					}
					raw <- ""
					continue
				}
				raw <- name
			}
		}
	}
}

// readSome reads inotify events; while polling, it returns 0 after a second without any.
func (w *Watch) readSome(buf []byte, polling bool) (int, error) {
	if !polling {
		return w.f.Read(buf)
	}
	// The inotify file is non-blocking and in Go's poller: a deadline bounds the read.
	_ = w.f.SetReadDeadline(time.Now().Add(time.Second))
	n, err := w.f.Read(buf)
	_ = w.f.SetReadDeadline(time.Time{})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	return n, err
}

// fold reports each name once its events have settled.
func (w *Watch) fold(raw <-chan string) {
	defer close(w.out)
	pending := map[string]time.Time{}
	var t *time.Timer
	var fire <-chan time.Time // nil while no timer runs: that case sleeps
	set := func(d time.Duration) { t = time.NewTimer(d); fire = t.C }
	for {
		select {
		case name, ok := <-raw:
			if !ok {
				if t != nil {
					t.Stop()
				}
				return
			}
			pending[name] = time.Now().Add(w.settle)
			if fire == nil {
				set(w.settle)
			}
		case <-fire:
			fire = nil
			now := time.Now()
			next := time.Duration(0)
			for name, at := range pending {
				if !at.After(now) {
					delete(pending, name)
					w.out <- name
				} else if d := at.Sub(now); next == 0 || d < next {
					next = d
				}
			}
			if next > 0 {
				set(next)
			}
		}
	}
}
