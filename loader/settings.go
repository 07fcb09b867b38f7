package loader

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Properties that set up the environment a job's processes run in: identity (user, group,
// groups), umask, resource limits, environment files, and whether god lives and dies with
// the job (critical). Names are resolved when a process starts, not here: /etc/passwd may
// change between a definition and a start, and an unknown name is the job's failure to
// start, not its loader's.

// rlimInfinity is a resource limit without bound (RLIM_INFINITY).
const rlimInfinity = ^uint64(0)

// Limit is one resource limit of a job's processes: systemd's name, the resource's
// number (RLIMIT_*) and its soft and hard values (RLIM_INFINITY, all ones, for "infinity").
type Limit struct {
	Name     string
	Resource int
	Soft     uint64
	Hard     uint64
}

// limitResources maps systemd's Limit*= names to RLIMIT_* numbers.
var limitResources = map[string]int{
	"cpu": unix.RLIMIT_CPU, "fsize": unix.RLIMIT_FSIZE, "data": unix.RLIMIT_DATA,
	"stack": unix.RLIMIT_STACK, "core": unix.RLIMIT_CORE, "rss": unix.RLIMIT_RSS,
	"nproc": unix.RLIMIT_NPROC, "nofile": unix.RLIMIT_NOFILE, "memlock": unix.RLIMIT_MEMLOCK,
	"as": unix.RLIMIT_AS, "locks": unix.RLIMIT_LOCKS, "sigpending": unix.RLIMIT_SIGPENDING,
	"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "rtprio": unix.RLIMIT_RTPRIO,
	"rttime": unix.RLIMIT_RTTIME,
}

// EnvFile is one entry of "env-file": a file in systemd's EnvironmentFile= syntax.
type EnvFile struct {
	Path     string // absolute
	Optional bool   // written "-PATH": a missing file is no error
}

// parseIdentity reads [NAME] or [ID] for "user" and "group"; [] gives "" (god's own).
// The name is checked for shape only (no NUL, no ':' or ',' or white space, which
// /etc/passwd and /etc/group cannot hold).
func parseIdentity(m Message) (string, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return "", err
	}
	if len(m) == 0 {
		return "", nil
	}
	return checkIdentity(m[0])
}

// parseGroups reads [NAME|GID...]: the supplementary groups, replacing the user's own
// from /etc/group. [] gives nil (the user's groups).
func parseGroups(m Message) ([]string, error) {
	if len(m) == 0 {
		return nil, nil
	}
	seen := make(map[string]bool, len(m))
	out := make([]string, 0, len(m))
	for _, g := range m {
		if _, err := checkIdentity(g); err != nil {
			return nil, err
		}
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	return out, nil
}

// checkIdentity accepts a user or group name or a numeric id below 2^32-1.
func checkIdentity(s string) (string, error) {
	if s == "" || len(s) > 256 || strings.ContainsAny(s, "\x00:,/ \t\n\r") {
		return "", fmt.Errorf("invalid user or group %.80q", s)
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 1<<32-1 {
			return "", fmt.Errorf("invalid numeric id %.80q", s)
		}
	}
	return s, nil
}

// parseUmask reads [OCTAL] ("0027", "027", "77"); [] gives nil (god's own umask).
func parseUmask(m Message) (*uint32, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	s := m[0]
	if s == "" || len(s) > 4 || strings.Trim(s, "01234567") != "" {
		return nil, fmt.Errorf("umask %.20q: want 1 to 4 octal digits (0027)", s)
	}
	v, _ := strconv.ParseUint(s, 8, 32) // checked above
	u := uint32(v)
	return &u, nil
}

// parseLimits reads ["NAME=VALUE", "NAME=SOFT:HARD", ...] with systemd's resource names;
// a value is a decimal number or "infinity", SOFT <= HARD, each name at most once.
// [] gives nil (the limits god was started with).
func parseLimits(m Message) ([]Limit, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]Limit, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, item := range m {
		l, err := parseLimit(item)
		if err != nil {
			return nil, err
		}
		if seen[l.Name] {
			return nil, fmt.Errorf("limit %s given twice", l.Name)
		}
		seen[l.Name] = true
		out = append(out, l)
	}
	return out, nil
}

// parseLimit reads one "NAME=VALUE" or "NAME=SOFT:HARD" item of "limit".
func parseLimit(item string) (Limit, error) {
	name, val, ok := strings.Cut(item, "=")
	if !ok {
		return Limit{}, fmt.Errorf("limit %.80q is not NAME=VALUE", item)
	}
	res, ok := limitResources[name]
	if !ok {
		return Limit{}, fmt.Errorf("limit %.80q: unknown resource %.20q (want nofile, nproc, core, ...)", item, name)
	}
	soft, hard, pair := strings.Cut(val, ":")
	if !pair {
		hard = soft
	}
	s, err := parseLimitValue(soft)
	if err != nil {
		return Limit{}, fmt.Errorf("limit %.80q: %w", item, err)
	}
	h, err := parseLimitValue(hard)
	if err != nil {
		return Limit{}, fmt.Errorf("limit %.80q: %w", item, err)
	}
	if s > h {
		return Limit{}, fmt.Errorf("limit %.80q: soft limit above the hard one", item)
	}
	return Limit{Name: name, Resource: res, Soft: s, Hard: h}, nil
}

// parseLimitValue reads a decimal number (no sign, no suffix) or "infinity".
func parseLimitValue(s string) (uint64, error) {
	if s == "infinity" {
		return rlimInfinity, nil
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("value %.30q: want a number or infinity", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v == rlimInfinity {
		return 0, fmt.Errorf("value %.30q: out of range", s)
	}
	return v, nil
}

// String gives the item back as "NAME=SOFT:HARD".
func (l Limit) String() string {
	f := func(v uint64) string {
		if v == rlimInfinity {
			return "infinity"
		}
		return strconv.FormatUint(v, 10)
	}
	return l.Name + "=" + f(l.Soft) + ":" + f(l.Hard)
}

// parseEnvFiles reads [PATH...], each absolute, "-" in front for a file that may be missing.
func parseEnvFiles(m Message) ([]EnvFile, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]EnvFile, 0, len(m))
	for _, item := range m {
		f := EnvFile{Path: item}
		if p, ok := strings.CutPrefix(item, "-"); ok {
			f = EnvFile{Path: p, Optional: true}
		}
		if !filepath.IsAbs(f.Path) || strings.IndexByte(f.Path, 0) >= 0 {
			return nil, fmt.Errorf("env-file %.80q: want an absolute path (\"-\" in front: may be missing)", item)
		}
		out = append(out, f)
	}
	return out, nil
}

// parsePidFile reads [PATH] for "pid-file": an absolute, clean path of a file (not a directory,
// no NUL); [] gives "" (none). A path that is not clean ("/run/../x", "/run//x", "/run/x/") is
// refused rather than cleaned, so that the path god watches is the one the loader wrote.
func parsePidFile(m Message) (string, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return "", err
	}
	if len(m) == 0 {
		return "", nil
	}
	p := m[0]
	if !filepath.IsAbs(p) || p == "/" || filepath.Clean(p) != p || len(p) > 4096 || strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("pid-file %.80q: want a clean absolute path of a file", p)
	}
	return p, nil
}

// parseCritical reads ["true"] or ["false"]; [] is false.
func parseCritical(m Message) (bool, error) { return parseFlag("critical", m) }

// parseFlag reads a yes-or-no property, prop: ["true"] or ["false"]; [] is false.
func parseFlag(prop string, m Message) (bool, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return false, err
	}
	if len(m) == 0 {
		return false, nil
	}
	switch m[0] {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%s: want true or false", prop)
}

// Bounds of the log-size and log-keep properties.
const (
	maxLogSize = 1 << 40 // log-size: a TiB per file is more than any disk wants
	maxLogKeep = 100000  // log-keep
)

// parseLogSize reads [BYTES], 1 <= BYTES <= maxLogSize, in decimal digits; [] is nil (god's
// --log-size).
func parseLogSize(m Message) (*int64, error) {
	if err := wantLen(m, 0, 1); err != nil || len(m) == 0 {
		return nil, err
	}
	n, err := strconv.ParseInt(m[0], 10, 64)
	if err != nil || !isDigits(m[0]) || n < 1 || n > maxLogSize {
		return nil, fmt.Errorf("log-size %.20q: want a number of bytes from 1 to %d", m[0], int64(maxLogSize))
	}
	return &n, nil
}

// parseLogKeep reads [N], 0 <= N <= maxLogKeep; [] is nil (god's --log-keep).
func parseLogKeep(m Message) (*int, error) {
	if err := wantLen(m, 0, 1); err != nil || len(m) == 0 {
		return nil, err
	}
	n, err := strconv.Atoi(m[0])
	if err != nil || !isDigits(m[0]) || n < 0 || n > maxLogKeep {
		return nil, fmt.Errorf("log-keep %.20q: want a number of files from 0 to %d", m[0], maxLogKeep)
	}
	return &n, nil
}
