package loader

import (
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseSettingsProps(t *testing.T) {
	u := func(v uint32) *uint32 { return &v }
	ident := func(m Message) (any, error) { return parseIdentity(m) }
	groups := func(m Message) (any, error) { return parseGroups(m) }
	umask := func(m Message) (any, error) { return parseUmask(m) }
	limits := func(m Message) (any, error) { return parseLimits(m) }
	envf := func(m Message) (any, error) { return parseEnvFiles(m) }
	crit := func(m Message) (any, error) { return parseCritical(m) }
	pidf := func(m Message) (any, error) { return parsePidFile(m) }
	lsize := func(m Message) (any, error) { return parseLogSize(m) }
	lkeep := func(m Message) (any, error) { return parseLogKeep(m) }
	i64 := func(v int64) *int64 { return &v }
	in := func(v int) *int { return &v }
	checkParses(t, []propCase{
		{ident, ``, ""},
		{ident, `nobody`, "nobody"},
		{ident, `65534`, "65534"},
		{ident, `www-data`, "www-data"},
		{ident, `4294967295`, nil},
		{ident, `99999999999`, nil},
		{ident, `1x`, nil},
		{ident, `a:b`, nil},
		{ident, `a b`, nil},
		{ident, "a\x00", nil},
		{ident, `a|b`, nil},
		{groups, ``, []string(nil)},
		{groups, `adm|100|adm`, []string{"adm", "100"}},
		{groups, `adm|`, nil},
		{umask, ``, (*uint32)(nil)},
		{umask, `0027`, u(0o27)},
		{umask, `077`, u(0o77)},
		{umask, `0`, u(0)},
		{umask, `7777`, u(0o7777)},
		{umask, `0008`, nil},
		{umask, `00027`, nil},
		{umask, `-1`, nil},
		{umask, `+27`, nil},
		{umask, `0x1f`, nil},
		{umask, `0027|1`, nil},
		{pidf, ``, ""},
		{pidf, `/run/web.pid`, "/run/web.pid"},
		{pidf, `/tmp/a b/web.pid`, "/tmp/a b/web.pid"},
		{pidf, `run/web.pid`, nil},
		{pidf, `/`, nil},
		{pidf, `/run/`, nil},
		{pidf, `/run//web.pid`, nil},
		{pidf, `/run/../web.pid`, nil},
		{pidf, `/run/./web.pid`, nil},
		{pidf, "/run/web\x00.pid", nil},
		{pidf, `/a|/b`, nil},
		{limits, ``, []Limit(nil)},
		{limits, `nofile=65536`, []Limit{{"nofile", unix.RLIMIT_NOFILE, 65536, 65536}}},
		{limits, `core=infinity|nproc=100:200`, []Limit{{"core", unix.RLIMIT_CORE, rlimInfinity, rlimInfinity}, {"nproc", unix.RLIMIT_NPROC, 100, 200}}},
		{limits, `memlock=0:infinity`, []Limit{{"memlock", unix.RLIMIT_MEMLOCK, 0, rlimInfinity}}},
		{limits, `nofile=2:1`, nil},
		{limits, `nofile=infinity:1`, nil},
		{limits, `nofile=1|nofile=2`, nil},
		{limits, `NOFILE=1`, nil},
		{limits, `files=1`, nil},
		{limits, `nofile`, nil},
		{limits, `nofile=`, nil},
		{limits, `nofile=1:`, nil},
		{limits, `nofile=:1`, nil},
		{limits, `nofile=-1`, nil},
		{limits, `nofile=1K`, nil},
		{limits, `nofile=1:2:3`, nil},
		{limits, `nofile=18446744073709551615`, nil},
		{limits, `nofile=18446744073709551616`, nil},
		{limits, `nofile= 1`, nil},
		{envf, ``, []EnvFile(nil)},
		{envf, `/etc/web.env|-/etc/web.local`, []EnvFile{{"/etc/web.env", false}, {"/etc/web.local", true}}},
		{envf, `web.env`, nil},
		{envf, `-`, nil},
		{envf, `--/a`, nil},
		{envf, "/a\x00", nil},
		{crit, ``, false},
		{crit, `true`, true},
		{crit, `false`, false},
		{crit, `yes`, nil},
		{crit, `true|true`, nil},
		{lsize, ``, (*int64)(nil)},
		{lsize, `1048576`, i64(1 << 20)},
		{lsize, `1`, i64(1)},
		{lsize, `1099511627776`, i64(1 << 40)},
		{lsize, `1099511627777`, nil},
		{lsize, `0`, nil},
		{lsize, `-5`, nil},
		{lsize, `+5`, nil},
		{lsize, `1M`, nil},
		{lsize, `1 `, nil},
		{lsize, `1|2`, nil},
		{lsize, `99999999999999999999`, nil},
		{lkeep, ``, (*int)(nil)},
		{lkeep, `0`, in(0)},
		{lkeep, `30`, in(30)},
		{lkeep, `100000`, in(100000)},
		{lkeep, `100001`, nil},
		{lkeep, `-1`, nil},
		{lkeep, `3x`, nil},
		{lkeep, `3|4`, nil},
	})
}

func TestLimitNames(t *testing.T) {
	for _, n := range []string{"nofile", "nproc", "core", "memlock", "as", "stack", "cpu", "fsize", "data", "rss",
		"locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime"} {
		l, err := parseLimit(n + "=1:infinity")
		if err != nil || l.String() != n+"=1:infinity" {
			t.Errorf("parseLimit(%s) = %+v, %v", n, l, err)
		}
	}
}

// FuzzParsePidFile: whatever "pid-file" accepts is a clean absolute path without NUL.
func FuzzParsePidFile(f *testing.F) {
	for _, s := range []string{"", "/run/web.pid", "run/x", "/", "/a//b", "/a/../b", "/a|/b", "/a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePidFile(split(s))
		if err != nil || p == "" {
			return
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" || strings.IndexByte(p, 0) >= 0 {
			t.Fatalf("parsePidFile(%q) accepted %q", s, p)
		}
	})
}

func FuzzParseLimits(f *testing.F) {
	for _, s := range []string{"", "nofile=65536", "core=infinity", "nproc=100:200", "nofile=2:1", "x=1",
		"nofile=1|nofile=2", "as=0:infinity", "nofile=1:2:3", "nice=40", "cpu=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := parseLimits(split(s))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, l := range list {
			if l.Soft > l.Hard || seen[l.Name] || limitResources[l.Name] != l.Resource {
				t.Fatalf("parseLimits(%q) accepted %+v", s, l)
			}
			seen[l.Name] = true
			back, err := parseLimit(l.String())
			if err != nil || back != l {
				t.Fatalf("parseLimit(%q) = %+v, %v; want %+v", l.String(), back, err, l)
			}
		}
		if u, err := parseUmask(split(s)); err == nil && u != nil && *u > 0o7777 {
			t.Fatalf("parseUmask(%q) = %o", s, *u)
		}
		if g, err := parseGroups(split(s)); err == nil {
			for _, x := range g {
				if x == "" || strings.ContainsAny(x, ":,\x00") {
					t.Fatalf("parseGroups(%q) accepted %q", s, x)
				}
			}
		}
	})
}
