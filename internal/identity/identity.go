// Package identity resolves the user, group and groups of a job (the job properties user,
// group, groups) to the ids its processes run with and the passwd fields that go into their
// environment. It reads /etc/passwd itself (os/user gives no login shell) and /etc/group
// through os/user, whose pure-Go readers god uses (it is built with CGO_ENABLED=0).
package identity

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
)

// ErrUnknownUser and ErrUnknownGroup name a name (or id) with no entry where one is needed.
var (
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownGroup = errors.New("unknown group")
)

// PasswdFile and GroupFile are the files read; tests point them elsewhere.
var PasswdFile = "/etc/passwd"

// Identity is what a process is started with.
type Identity struct {
	Uid, Gid uint32
	Groups   []uint32
	// From the user's passwd entry; empty when the job names no user or a numeric uid without one.
	Name, Home, Shell string
}

// Env is HOME, USER, LOGNAME and SHELL from the passwd entry, as systemd sets them for User=.
func (id Identity) Env() []string {
	if id.Name == "" {
		return nil
	}
	env := []string{"HOME=" + id.Home, "USER=" + id.Name, "LOGNAME=" + id.Name}
	if id.Shell != "" {
		env = append(env, "SHELL="+id.Shell)
	}
	return env
}

// Resolve gives the identity for the job properties: userName (name or uid; "" keeps god's
// uid), group (name or gid; "" is the user's primary group, or god's gid without a user) and
// groups (nil: the user's groups from /etc/group, like initgroups(3); none without a user).
// A name without an entry is an error wrapping ErrUnknownUser or ErrUnknownGroup; a numeric id
// without an entry is used as it is.
func Resolve(userName, group string, groups []string) (Identity, error) {
	id := Identity{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), Groups: []uint32{}}
	if userName != "" {
		e, err := lookupPasswd(userName)
		switch {
		case err == nil:
			id.Uid, id.Gid, id.Name, id.Home, id.Shell = e.uid, e.gid, e.name, e.home, e.shell
			if groups == nil {
				u := &user.User{Username: e.name, Uid: strconv.FormatUint(uint64(e.uid), 10), Gid: strconv.FormatUint(uint64(e.gid), 10)}
				ids, err := u.GroupIds()
				if err != nil {
					return Identity{}, fmt.Errorf("user %q: groups: %w", userName, err)
				}
				for _, s := range ids {
					if n, err := strconv.ParseUint(s, 10, 32); err == nil {
						id.Groups = append(id.Groups, uint32(n))
					}
				}
			}
		case errors.Is(err, ErrUnknownUser) && isNumeric(userName):
			n, _ := strconv.ParseUint(userName, 10, 32)
			id.Uid, id.Gid = uint32(n), uint32(n)
		default:
			return Identity{}, fmt.Errorf("user %q: %w", userName, err)
		}
	}
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return Identity{}, fmt.Errorf("group %q: %w", group, err)
		}
		id.Gid = g
	}
	if groups != nil {
		id.Groups = make([]uint32, 0, len(groups))
		for _, s := range groups {
			g, err := lookupGroup(s)
			if err != nil {
				return Identity{}, fmt.Errorf("groups: group %q: %w", s, err)
			}
			id.Groups = append(id.Groups, g)
		}
	}
	return id, nil
}

func isNumeric(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }

// lookupGroup gives a group's gid; a numeric gid without an entry is taken as it is.
func lookupGroup(s string) (uint32, error) {
	if isNumeric(s) {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return 0, err
		}
		return uint32(n), nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		var unknown user.UnknownGroupError
		if errors.As(err, &unknown) {
			return 0, ErrUnknownGroup
		}
		return 0, err
	}
	n, err := strconv.ParseUint(g.Gid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad gid %q", g.Gid)
	}
	return uint32(n), nil
}

type passwdEntry struct {
	name        string
	uid, gid    uint32
	home, shell string
}

// lookupPasswd finds a user by name, or by uid when s is numeric, in PasswdFile.
func lookupPasswd(s string) (passwdEntry, error) {
	f, err := os.Open(PasswdFile)
	if err != nil {
		return passwdEntry{}, err
	}
	defer f.Close()
	byID := isNumeric(s)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		fs := strings.Split(line, ":")
		if len(fs) < 7 {
			continue
		}
		if byID && fs[2] != s || !byID && fs[0] != s {
			continue
		}
		uid, err1 := strconv.ParseUint(fs[2], 10, 32)
		gid, err2 := strconv.ParseUint(fs[3], 10, 32)
		if err1 != nil || err2 != nil {
			return passwdEntry{}, fmt.Errorf("%s: bad entry for %q", PasswdFile, fs[0])
		}
		return passwdEntry{name: fs[0], uid: uint32(uid), gid: uint32(gid), home: fs[5], shell: fs[6]}, nil
	}
	if err := sc.Err(); err != nil {
		return passwdEntry{}, fmt.Errorf("%s: %w", PasswdFile, err)
	}
	return passwdEntry{}, ErrUnknownUser
}
