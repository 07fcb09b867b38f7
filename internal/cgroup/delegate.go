package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Delegation: whether the cgroup god was started in is god's to manage. systemd delegates a
// unit's cgroup with Delegate=yes: it marks the directory with the extended attribute
// trusted.delegate=1 (user.delegate=1 from a user's service manager, which cannot write
// trusted.*), and, for a unit with User=, gives the directory to that user (chown). Only then
// may god create child cgroups there and enable controllers in them; in any other cgroup it
// would be fighting the service manager for the tree. (systemd.resource-control(5), Delegate=;
// systemd's "Control Group APIs and Delegation".)

// LeafName is the cgroup god moves itself into inside a delegated cgroup: a cgroup that holds
// processes cannot give controllers to its children (the "no internal processes" rule), so god
// lives in a leaf beside its jobs' cgroups.
const LeafName = "god"

// Detection is what Detect found: the delegated cgroup to use (Dir "" when none), and why.
type Detection struct {
	Dir    string // the delegated cgroup, where job cgroups go; "": use subreaper mode
	Why    string // one line for god's log
	InLeaf bool   // god is already in Dir/LeafName (a god that re-executed itself)
}

// Detect looks at god's own cgroup: if it is delegated to god, the result names it; else it says
// why not (no cgroup v2 hierarchy, the root cgroup, no delegation mark).
func Detect() Detection {
	self, err := Self()
	if err != nil {
		return Detection{Why: err.Error()}
	}
	return detectAt(self)
}

// detectAt is Detect for a god whose cgroup is the directory self.
func detectAt(self string) Detection {
	// A god that re-executed itself (god upgrade) finds itself in the leaf it made: the cgroup
	// delegated to it is the leaf's parent.
	if filepath.Base(self) == LeafName {
		if ok, why := Delegated(filepath.Dir(self)); ok {
			return Detection{Dir: filepath.Dir(self), Why: why, InLeaf: true}
		}
	}
	ok, why := Delegated(self)
	if !ok {
		return Detection{Why: why}
	}
	return Detection{Dir: self, Why: why}
}

// Delegated reports whether dir is delegated to this process, and why or why not: it carries
// trusted.delegate=1 or user.delegate=1, or (for a god that is not root) it is owned by god's
// user. A root god owns every cgroup, so for root only the mark counts.
func Delegated(dir string) (bool, string) {
	for _, attr := range []string{"trusted.delegate", "user.delegate"} {
		if v, err := getxattr(dir, attr); err == nil && v == "1" {
			return true, fmt.Sprintf("cgroup %s is delegated to god (%s=1)", dir, attr)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return false, fmt.Sprintf("cgroup %s: %v", dir, err)
	}
	if uid := os.Geteuid(); uid != 0 && int(st.Uid) == uid {
		return true, fmt.Sprintf("cgroup %s is delegated to god (owned by its uid %d)", dir, uid)
	}
	return false, fmt.Sprintf("god's cgroup %s is not delegated to it (no trusted.delegate or user.delegate mark; "+
		"under systemd: Delegate=yes in god's unit)", dir)
}

// getxattr reads a small extended attribute.
func getxattr(path, attr string) (string, error) {
	buf := make([]byte, 64)
	n, err := unix.Getxattr(path, attr, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Self is the directory of the cgroup v2 god's process is in: /proc/self/cgroup's "0::PATH"
// under the cgroup2 mount found in /proc/self/mountinfo (/sys/fs/cgroup on a unified system,
// /sys/fs/cgroup/unified on a hybrid one).
func Self() (string, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("no cgroup v2: %w", err)
	}
	cg, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("no cgroup v2: %w", err)
	}
	return selfFrom(mi, cg)
}

// selfFrom is Self on the two files' contents. The cgroup path is relative to the root of the
// cgroup namespace; a mount whose root is below that (mountinfo's 4th field) holds only part
// of the tree, and the path is taken relative to it.
func selfFrom(mountinfo, cgroup []byte) (string, error) {
	var path string
	found := false
	for _, line := range bytes.Split(cgroup, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			path, found = string(p), true
			break
		}
	}
	if !found {
		return "", errors.New("no cgroup v2: /proc/self/cgroup has no 0:: line")
	}
	if strings.HasSuffix(path, " (deleted)") {
		return "", fmt.Errorf("god's cgroup %s was removed", path)
	}
	for _, line := range strings.Split(string(mountinfo), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || qf[0] != "cgroup2" {
			continue
		}
		root, mount := unescapeMount(pf[3]), unescapeMount(pf[4])
		rel := path
		if root != "/" {
			r, ok := strings.CutPrefix(path, root)
			if !ok || (r != "" && r[0] != '/') {
				continue // this mount does not hold god's cgroup
			}
			rel = r
		}
		return filepath.Join(mount, rel), nil
	}
	return "", errors.New("no cgroup v2: no cgroup2 mount in /proc/self/mountinfo")
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MoveSelf moves god's process (every thread) into dir/LeafName, created if needed, so that dir
// holds no process and can give controllers to the job cgroups created beside the leaf.
func MoveSelf(dir string) error {
	leaf := filepath.Join(dir, LeafName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("cgroup %s: %w", leaf, err)
	}
	if err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(os.Getpid())), 0); err != nil {
		return fmt.Errorf("cgroup %s: move god (pid %d) into it: %w", leaf, os.Getpid(), err)
	}
	return nil
}
