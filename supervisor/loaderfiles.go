package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

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

// notExecutable returns the file's signature when dir/name would be a loader but for its
// execute bits: a loader copied without `chmod +x`, which god names once instead of skipping it
// without a word.
func notExecutable(dir, name string) (fileSig, bool) {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".swp") || strings.HasPrefix(name, "#") {
		return fileSig{}, false
	}
	fi, err := os.Stat(filepath.Join(dir, name))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode()&0o111 != 0 {
		return fileSig{}, false
	}
	return sigOf(fi), true
}

// unsafeLoader says why a root god must not run path as a loader ("" when it may): the file, or
// the directory that holds it, can be changed by a user other than root (it is owned by one, or
// is writable by group or others), and god would run what they wrote as root. It is the rule
// cron and sudo apply to the files they run.
func unsafeLoader(path string) string {
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
