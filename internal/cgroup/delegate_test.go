package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSelfFrom: god's cgroup directory from /proc/self/mountinfo and /proc/self/cgroup, on a
// unified system, a hybrid one, a mount of part of the tree, and without cgroup v2.
func TestSelfFrom(t *testing.T) {
	hybrid := "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n" +
		"34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n" +
		"40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
	unified := "24 1 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
	partial := "35 24 0:30 /system.slice/god.service /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n"
	spaced := "35 24 0:30 / /mnt/my\\040cgroups rw - cgroup2 none rw\n"
	for _, tc := range []struct {
		name, mountinfo, cgroup, want, err string
	}{
		{"hybrid", hybrid, "4:memory:/x\n0::/system.slice/god.service\n", "/sys/fs/cgroup/unified/system.slice/god.service", ""},
		{"hybrid root", hybrid, "0::/\n", "/sys/fs/cgroup/unified", ""},
		{"unified", unified, "0::/system.slice/god.service/god\n", "/sys/fs/cgroup/system.slice/god.service/god", ""},
		{"partial mount", partial, "0::/system.slice/god.service/god\n", "/sys/fs/cgroup/god", ""},
		{"partial mount elsewhere", partial, "0::/user.slice\n", "", "no cgroup2 mount"},
		{"escaped mount point", spaced, "0::/a\n", "/mnt/my cgroups/a", ""},
		{"v1 only", hybrid, "4:memory:/x\n", "", "no 0:: line"},
		{"no cgroup2 mount", "24 1 8:1 / / rw - ext4 /dev/sda1 rw\n", "0::/\n", "", "no cgroup2 mount"},
		{"removed", unified, "0::/gone (deleted)\n", "", "was removed"},
	} {
		got, err := selfFrom([]byte(tc.mountinfo), []byte(tc.cgroup))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %q, %v; want an error with %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestSelf: the directory Self finds on this machine lists this process in its cgroup.procs.
func TestSelf(t *testing.T) {
	dir, err := Self()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Fields(string(b)), strconv.Itoa(os.Getpid())) {
		t.Fatalf("Self() = %s, whose cgroup.procs does not list pid %d", dir, os.Getpid())
	}
}

// TestDelegated: a test cgroup is not delegated to a root process until it carries
// trusted.delegate=1 (systemd's mark for Delegate=yes); then detection takes it, for a god in it
// and for a god in its leaf "god" (re-executed there), but not for one in another child.
func TestDelegated(t *testing.T) {
	r := testRoot(t)
	if os.Geteuid() != 0 {
		if ok, why := Delegated(r.Dir); !ok || !strings.Contains(why, "owned by its uid") {
			t.Fatalf("a cgroup owned by this user: %v, %s", ok, why)
		}
		t.Skip("not root: trusted.delegate cannot be set (the ownership rule was checked)")
	}
	if ok, why := Delegated(r.Dir); ok || !strings.Contains(why, "Delegate=yes") {
		t.Fatalf("unmarked cgroup: delegated %v (%s)", ok, why)
	}
	if err := unix.Setxattr(r.Dir, "trusted.delegate", []byte("0"), 0); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) {
			t.Skipf("cannot set trusted.delegate on %s: %v", r.Dir, err)
		}
		t.Fatal(err)
	}
	if ok, _ := Delegated(r.Dir); ok {
		t.Fatal("trusted.delegate=0 taken for a delegation")
	}
	if err := unix.Setxattr(r.Dir, "trusted.delegate", []byte("1"), 0); err != nil {
		t.Fatal(err)
	}
	if ok, why := Delegated(r.Dir); !ok || !strings.Contains(why, "trusted.delegate=1") {
		t.Fatalf("marked cgroup: delegated %v (%s)", ok, why)
	}
	if d := detectAt(r.Dir); d.Dir != r.Dir || d.InLeaf || !strings.Contains(d.Why, "trusted.delegate=1") {
		t.Fatalf("god in the marked cgroup: %+v", d)
	}
	leaf, err := r.New(LeafName)
	if err != nil {
		t.Fatal(err)
	}
	defer leaf.Remove()
	if ok, _ := Delegated(leaf.Dir); ok {
		t.Fatal("the leaf has no mark of its own and root owns every cgroup: not delegated")
	}
	if d := detectAt(leaf.Dir); d.Dir != r.Dir || !d.InLeaf {
		t.Fatalf("god in the leaf of the marked cgroup (after a re-exec): %+v, want the marked cgroup", d)
	}
	other, err := r.New("other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Remove()
	if d := detectAt(other.Dir); d.Dir != "" || !strings.Contains(d.Why, "not delegated") {
		t.Fatalf("god in an unmarked child of the marked cgroup: %+v, want subreaper mode", d)
	}
}
