package supervisor

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

// dirWatch reports the names of files in the loader directory that were created, written, moved or
// removed, through inotify: god does not poll the directory. Bursts of events for one name (a build
// writing a file, `mv new old`) are folded: a name is reported once its events have been quiet for
// the settle time.
type dirWatch struct {
	f      *os.File
	dir    string
	settle time.Duration
	out    chan string
}

const watchMask = unix.IN_CREATE | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM |
	unix.IN_DELETE | unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF

// newDirWatch watches dir; names arrive on out() until close.
func newDirWatch(dir string, settle time.Duration) (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, watchMask); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("inotify watch %s: %w", dir, err)
	}
	w := &dirWatch{f: os.NewFile(uintptr(fd), "inotify"), dir: dir, settle: settle, out: make(chan string, 64)}
	raw := make(chan string, 256)
	go w.read(raw)
	go w.fold(raw)
	return w, nil
}

func (w *dirWatch) names() <-chan string { return w.out }

func (w *dirWatch) close() error { return w.f.Close() }

// read decodes inotify events; "" stands for the directory itself.
func (w *dirWatch) read(raw chan<- string) {
	defer close(raw)
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, syscall.EBADF) {
				raw <- ""
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := ""
			if ev.Len > 0 {
				b := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				name = strings.TrimRight(string(b), "\x00")
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 || ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 {
				name = "" // rescan everything
			}
			raw <- name
		}
	}
}

// fold reports each name once its events have settled.
func (w *dirWatch) fold(raw <-chan string) {
	defer close(w.out)
	pending := map[string]time.Time{}
	var t timer
	for {
		select {
		case name, ok := <-raw:
			if !ok {
				t.stop()
				return
			}
			pending[name] = time.Now().Add(w.settle)
			if t.t == nil {
				t.set(w.settle)
			}
		case <-t.C():
			t.stop()
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
				t.set(next)
			}
		}
	}
}

// isLoaderCandidate applies godv1's rules: regular executable files directly in the directory
// (symlinks followed), skipping dot-files and editor backups.
func isLoaderCandidate(dir, name string) (os.FileInfo, bool) {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasPrefix(name, "#") {
		return nil, false
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, false
	}
	return fi, true
}

// fileSig identifies a version of a loader file: a rebuild or an atomic replace changes it.
type fileSig struct {
	ino   uint64
	size  int64
	mtime time.Time
	mode  os.FileMode
}

func sigOf(fi os.FileInfo) fileSig {
	s := fileSig{size: fi.Size(), mtime: fi.ModTime(), mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}
