// Package cgroup is the little of cgroup v2 god needs to hold a job's processes exactly: a
// directory per job process that the process is started in (clone3 CLONE_INTO_CGROUP, through
// SysProcAttr.UseCgroupFD), that every descendant stays in whatever it does (setsid, double
// fork), and that the kernel kills as one (cgroup.kill) and says when it is empty
// (cgroup.events). A process group does not hold a daemon that calls setsid(); a cgroup does.
package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Root is a cgroup v2 directory god may create groups in.
type Root struct{ Dir string }

// Open checks that dir is a writable cgroup v2 directory: on cgroup2fs, with cgroup.kill (kernel
// 5.14+). The error says which of these is missing.
func Open(dir string) (*Root, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	if fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup %s: not a cgroup v2 directory", dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return nil, fmt.Errorf("cgroup %s: not writable: %w", dir, err)
	}
	probe, err := os.MkdirTemp(dir, ".god-probe-")
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: cannot create a group: %w", dir, err)
	}
	defer os.Remove(probe)
	if _, err := os.Stat(filepath.Join(probe, "cgroup.kill")); err != nil {
		return nil, fmt.Errorf("cgroup %s: no cgroup.kill (kernel 5.14+ needed): %w", dir, err)
	}
	return &Root{Dir: dir}, nil
}

// Group is one cgroup god made.
type Group struct{ Dir string }

// New creates the group name under the root (an existing empty one is reused: left by a god
// that was killed).
func (r *Root) New(name string) (*Group, error) {
	dir := filepath.Join(r.Dir, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return &Group{Dir: dir}, nil
}

// OpenFD opens the group's directory for SysProcAttr.CgroupFD; the caller closes it.
func (g *Group) OpenFD() (int, error) {
	fd, err := unix.Open(g.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup %s: %w", g.Dir, err)
	}
	return fd, nil
}

// Populated reports whether any process is in the group (cgroup.events). A group that is gone
// is not populated.
func (g *Group) Populated() bool {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.events"))
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("populated ")); ok {
			return string(v) == "1"
		}
	}
	return false
}

// Procs lists the processes in the group.
func (g *Group) Procs() []int {
	b, err := os.ReadFile(filepath.Join(g.Dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Signal sends sig to every process in the group: SIGKILL through cgroup.kill, which the kernel
// applies to every member at once with no race against forks; any other signal to each member.
func (g *Group) Signal(sig syscall.Signal) error {
	if sig == syscall.SIGKILL {
		if err := os.WriteFile(filepath.Join(g.Dir, "cgroup.kill"), []byte("1"), 0); err == nil {
			return nil
		}
	}
	var first error
	for _, pid := range g.Procs() {
		if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH && first == nil {
			first = err
		}
	}
	return first
}

// Remove deletes the group once it is empty; a group still populated stays (an error).
func (g *Group) Remove() error {
	if err := unix.Rmdir(g.Dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("cgroup %s: %w", g.Dir, err)
	}
	return nil
}

// Controllers lists the controllers dir offers its processes and children (cgroup.controllers).
func Controllers(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	return strings.Fields(string(b)), nil
}

// Enable turns controllers on for dir's children (dir's cgroup.subtree_control), so that their
// limit files exist: a child's memory.max needs "memory" here. A controller dir does not offer
// is an error naming it; one already on costs a read.
func Enable(dir string, controllers ...string) error {
	offered, err := Controllers(dir)
	if err != nil {
		return err
	}
	for _, c := range controllers {
		if !slices.Contains(offered, c) {
			have := strings.Join(offered, " ")
			if have == "" {
				have = "none"
			}
			return fmt.Errorf("cgroup %s: the %s controller is not available here (cgroup.controllers: %s): "+
				"it must be enabled in the parent's cgroup.subtree_control (under systemd: Delegate=yes)", dir, c, have)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	on := strings.Fields(string(b))
	var add []string
	for _, c := range controllers {
		if !slices.Contains(on, c) && !slices.Contains(add, "+"+c) {
			add = append(add, "+"+c)
		}
	}
	if len(add) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(add, " ")), 0); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("cgroup %s: enable %s: the cgroup holds processes, and a cgroup with processes "+
				"cannot give controllers to its children: %w", dir, strings.Join(add, " "), err)
		}
		return fmt.Errorf("cgroup %s: enable %s: %w", dir, strings.Join(add, " "), err)
	}
	return nil
}

// Set writes value into the interface file of cgroup dir ("memory.max", "536870912"). A file
// that does not exist (its controller is not enabled for dir) is an error saying so.
func Set(dir, file, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, file), os.O_WRONLY, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cgroup %s: no %s: its controller is not enabled for this cgroup, or the kernel has no such file (memory.swap.* needs swap accounting)", dir, file)
		}
		return fmt.Errorf("cgroup %s: %w", dir, err)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroup %s: %s %q: %w", dir, file, value, err)
	}
	return nil
}
