package loaderpool

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Candidate applies godv1's rules: regular executable files directly in the directory
// (symlinks followed), skipping dot-files and editor backups.
func Candidate(dir, name string) (os.FileInfo, bool) {
	if skipped(name) {
		return nil, false
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return nil, false
	}
	return fi, true
}

// skipped says whether godv1 leaves name out of the directory whatever it holds: no name,
// dot-files and editor backups.
func skipped(name string) bool {
	return name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasPrefix(name, "#")
}

// NotExecutable returns the file's signature when dir/name would be a loader but for its
// execute bits: a loader copied without `chmod +x`, which god names once instead of skipping it
// without a word.
func NotExecutable(dir, name string) (FileSig, bool) {
	if skipped(name) {
		return FileSig{}, false
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 != 0 {
		return FileSig{}, false
	}
	return SigOf(fi), true
}

// Unsafe says why a root god must not run path as a loader ("" when it may): the file, or
// the directory that holds it, can be changed by a user other than root (it is owned by one, or
// is writable by group or others), and god would run what they wrote as root. It is the rule
// cron and sudo apply to the files they run.
func Unsafe(path string) string {
	for _, p := range []string{path, filepath.Dir(path)} {
		fi, err := os.Stat(p)
		if err != nil {
			return ""
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		what := "it"
		if p != path {
			what = "its directory " + p
		}
		switch {
		case st.Uid != 0:
			return fmt.Sprintf("%s is owned by uid %d, not root", what, st.Uid)
		case fi.Mode().Perm()&0o022 != 0 && !(p != path && fi.Mode()&os.ModeSticky != 0 && fi.Mode().Perm()&0o020 == 0):
			return fmt.Sprintf("%s is writable by group or others (mode %04o)", what, fi.Mode().Perm())
		}
	}
	return ""
}

// FileSig identifies a version of a loader file: a rebuild or an atomic replace changes it.
type FileSig struct {
	Ino   uint64
	Size  int64
	Mtime time.Time
	Mode  os.FileMode
}

// SigOf is the signature of the file fi describes.
func SigOf(fi os.FileInfo) FileSig {
	s := FileSig{Size: fi.Size(), Mtime: fi.ModTime(), Mode: fi.Mode()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.Ino = st.Ino
	}
	return s
}
