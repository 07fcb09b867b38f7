package supervisor

import (
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
