package fdpass

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Spec is one declared socket, written "NAME=ADDR".
//
// ADDR is one of
//
//	tcp://HOST:PORT   tcp4://HOST:PORT   tcp6://HOST:PORT
//	udp://HOST:PORT   udp4://HOST:PORT   udp6://HOST:PORT
//	unix:///abs/path?mode=0660&owner=USER&group=GROUP
//	unixgram:///abs/path, unixpacket:///abs/path (same query)
//	unix://@name, unixgram://@name, unixpacket://@name (abstract: no file, no mode, owner, group)
//	fifo:///abs/path?mode=0660&owner=USER&group=GROUP
//
// each optionally followed by a query of socket options (Options), such as
// tcp://:80?backlog=128&reuseport=true&nodelay=true; an option that does
// not apply to the kind is an error.
//
// HOST may be empty (all addresses), a name, an IPv4 literal or a bracketed
// IPv6 literal ("[::1]:80"). PORT is decimal, 0 to 65535 (0: the kernel picks
// one). A unix path is taken literally up to the first '?': no percent
// decoding, it must be absolute and at most 107 bytes (the kernel's
// sun_path). An abstract name is '@' and 1 to 106 bytes, neither NUL nor '?'.
//
// The zero Spec is invalid. Build a Spec with ParseSpec or ParseAddr; a Spec
// built by hand is checked again by Open.
type Spec struct {
	Name string // 1..64 of A-Z a-z 0-9 _ . -
	// Network is "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6", "unix",
	// "unixgram", "unixpacket" or "fifo".
	Network string
	Address string      // host:port, path, or "@name" for an abstract unix socket
	Mode    os.FileMode // file-backed (IsFile) only; 0 = default (leave the umask result)
	// Owner and Group are user and group names or numeric ids for the socket
	// file (IsFile only). They are applied only when running as root; empty
	// leaves the file's owner or group alone.
	Owner, Group string
	Options      // socket options; part of the spec's identity
}

// maxNameLen is the longest socket name; the same rule as for job names.
const maxNameLen = 64

// maxUnixPath is the longest path that fits sun_path with its NUL.
const maxUnixPath = 107

// maxPath is the longest fifo path (PATH_MAX with its NUL).
const maxPath = 4095

// ValidName reports whether name is a valid socket name: 1 to 64 of
// A-Z a-z 0-9 _ . -. Such a name never contains ':', so it can be joined
// into LISTEN_FDNAMES.
func ValidName(name string) bool {
	if len(name) == 0 || len(name) > maxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// ParseSpec parses "NAME=ADDR", the form loaders send in a listen reply.
// The NAME ends at the first '='. Errors quote the offending text.
func ParseSpec(s string) (Spec, error) {
	name, addr, ok := strings.Cut(s, "=")
	if !ok {
		return Spec{}, fmt.Errorf("socket spec %q: want NAME=ADDR", s)
	}
	spec, err := ParseAddr(name, addr)
	if err != nil {
		return Spec{}, fmt.Errorf("socket spec %q: %w", s, err)
	}
	return spec, nil
}

// ParseAddr parses ADDR for the socket called name. It exists beside
// ParseSpec for callers that hold name and address apart. Errors quote the
// offending part.
func ParseAddr(name, addr string) (Spec, error) {
	if !ValidName(name) {
		return Spec{}, fmt.Errorf("socket name %q: want 1 to %d of A-Z a-z 0-9 _ . -", name, maxNameLen)
	}
	scheme, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return Spec{}, fmt.Errorf("address %q: want SCHEME://..., e.g. tcp://127.0.0.1:8080 or unix:///run/app.sock", addr)
	}
	s := Spec{Name: name, Network: scheme}
	var err error
	switch scheme {
	case "tcp", "tcp4", "tcp6", "udp", "udp4", "udp6":
		hp, query, _ := strings.Cut(rest, "?")
		if s.Address, err = parseHostPort(scheme, hp); err == nil {
			err = s.parseQuery(query)
		}
	case "unix", "unixgram", "unixpacket", "fifo":
		err = s.parseUnix(rest)
	default:
		return Spec{}, fmt.Errorf("address %q: unknown scheme %q (want tcp, tcp4, tcp6, udp, udp4, udp6, unix, unixgram, unixpacket or fifo)", addr, scheme)
	}
	if err != nil {
		return Spec{}, fmt.Errorf("address %q: %w", addr, err)
	}
	return s, nil
}

// parseHostPort checks the HOST:PORT of an IP address and returns it in
// canonical form (port without leading zeros). A literal IP must fit the
// network's family: tcp4 takes no IPv6 literal, tcp6 no IPv4 literal.
func parseHostPort(network, hp string) (string, error) {
	if strings.ContainsAny(hp, "/?#@ \t") {
		return "", fmt.Errorf("%q is not HOST:PORT", hp)
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", fmt.Errorf("%q is not HOST:PORT: %w", hp, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || port == "" || port[0] == '+' {
		return "", fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if host != "" {
		if err := checkHost(network, host); err != nil {
			return "", err
		}
	}
	return net.JoinHostPort(host, strconv.FormatUint(p, 10)), nil
}

// checkHost accepts an IP literal of the network's family (an IPv6 literal
// may carry a %zone) or a host name.
func checkHost(network, host string) error {
	ipPart, zone, hasZone := strings.Cut(host, "%")
	if ip := net.ParseIP(ipPart); ip != nil {
		is4 := ip.To4() != nil && !strings.Contains(ipPart, ":")
		switch {
		case hasZone && (is4 || zone == "" || !isHostName(zone)):
			return fmt.Errorf("host %q: bad zone", host)
		case is4 && strings.HasSuffix(network, "6"):
			return fmt.Errorf("host %q: an IPv4 address for %s", host, network)
		case !is4 && strings.HasSuffix(network, "4"):
			return fmt.Errorf("host %q: an IPv6 address for %s", host, network)
		}
		return nil
	}
	if hasZone || !isHostName(host) || numericName(host) {
		return fmt.Errorf("host %q: not an IP address or host name", host)
	}
	return nil
}

// isHostName reports whether h is made of the characters of DNS names
// (letters, digits, '-', '.', '_'), at most 253 of them.
func isHostName(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// numericName reports whether the last label of h is all digits ("999.1.1.1", "10.0.0"): a
// mistyped IP address, never a DNS name (RFC 1123 2.1). It exists so that such a host is refused
// when parsed instead of being looked up in DNS when the socket is opened.
func numericName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	last := h[strings.LastIndexByte(h, '.')+1:]
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// parseUnix fills Address and the query's fields from "/path?query" or "@name?query".
func (s *Spec) parseUnix(rest string) error {
	path, query, _ := strings.Cut(rest, "?")
	switch {
	case path == "":
		return fmt.Errorf("empty path")
	case strings.IndexByte(path, 0) >= 0:
		return fmt.Errorf("path %q contains a NUL byte", path)
	case path[0] == '@' && s.Network == "fifo":
		return fmt.Errorf("path %q: a fifo has no abstract name: want an absolute path", path)
	case path[0] == '@' && len(path) == 1:
		return fmt.Errorf("abstract name %q is empty", path)
	case path[0] == '@' && len(path) > maxUnixPath:
		return fmt.Errorf("abstract name %q is %d bytes: at most %d fit a unix socket address", path, len(path)-1, maxUnixPath-1)
	case path[0] == '@':
	case path[0] != '/':
		return fmt.Errorf("path %q is relative: want an absolute path (%s:///dir/file) or an abstract name (%s://@name)", path, s.Network, s.Network)
	case len(path) > maxUnixPath && s.Network != "fifo":
		return fmt.Errorf("path %q is %d bytes: at most %d fit a unix socket address", path, len(path), maxUnixPath)
	case len(path) > maxPath:
		return fmt.Errorf("path %q is %d bytes: at most %d", path, len(path), maxPath)
	case path[len(path)-1] == '/':
		return fmt.Errorf("path %q ends in '/': want a file name", path)
	}
	s.Address = path
	return s.parseQuery(query)
}

// parseQuery fills Mode, Owner, Group and Options from the query, refusing a key that does not
// apply to the kind of socket (mode, owner and group need a file: IsFile).
func (s *Spec) parseQuery(query string) error {
	if query == "" {
		return nil
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return fmt.Errorf("query %q: %w", query, err)
	}
	for _, key := range slices.Sorted(maps.Keys(q)) { // sorted: the same error every time
		vals := q[key]
		if len(vals) != 1 {
			return fmt.Errorf("query %q: %s given %d times", query, key, len(vals))
		}
		v := vals[0]
		switch key {
		case "mode", "owner", "group":
			if !s.IsFile() {
				return fmt.Errorf("option %s: does not apply to %s (only to a socket or fifo with a path)", key, s.kind())
			}
		default:
			if !isOptionKey(key) {
				return fmt.Errorf("query %q: unknown key %q (want %s)", query, key, strings.Join(append([]string{"mode", "owner", "group"}, optionKeys...), ", "))
			}
			if ok, where := optionApplies(key, s.Network); !ok {
				return fmt.Errorf("option %s: does not apply to %s (only to %s)", key, s.kind(), where)
			}
		}
		switch key {
		case "mode":
			m, err := strconv.ParseUint(v, 8, 32)
			if err != nil || m == 0 || m > 0o777 || v[0] == '+' {
				return fmt.Errorf("mode %q: want octal permissions from 1 to 0777, e.g. 0660", v)
			}
			s.Mode = os.FileMode(m)
		case "owner", "group":
			if !isAccount(v) {
				return fmt.Errorf("%s %q: want a user or group name or a numeric id", key, v)
			}
			if key == "owner" {
				s.Owner = v
			} else {
				s.Group = v
			}
		default:
			if err := s.Options.set(key, v); err != nil {
				return fmt.Errorf("option %w", err)
			}
		}
	}
	if s.IPv6Only != SwitchDefault {
		host, _, _ := net.SplitHostPort(s.Address)
		if ip := net.ParseIP(host); ip != nil && ip.To4() != nil && !strings.Contains(host, ":") {
			return fmt.Errorf("option ipv6only: does not apply to the IPv4 address %s", host)
		}
	}
	return nil
}

// kind names the socket's kind in errors: "tcp", "an abstract unix socket", ...
func (s Spec) kind() string {
	if s.IsAbstract() {
		return "an abstract " + s.Network + " socket"
	}
	return s.Network
}

// isAccount accepts what useradd accepts for names, plus numeric ids: 1 to
// 32 of letters, digits, '_', '.', '-', with an optional trailing '$'.
func isAccount(v string) bool {
	v = strings.TrimSuffix(v, "$")
	if len(v) == 0 || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// String returns the canonical "NAME=ADDR", which ParseSpec turns back into
// the same Spec. It exists for logs, errors and the state god hands to its
// next image.
func (s Spec) String() string {
	return s.Name + "=" + s.URL()
}

// URL returns the ADDR part of the spec in canonical form: query keys in the
// order mode, owner, group, then the options in the order of optionKeys;
// mode as four octal digits, booleans as true (false only for ipv6only),
// options at their default left out.
func (s Spec) URL() string {
	var b strings.Builder
	b.WriteString(s.Network)
	b.WriteString("://")
	b.WriteString(s.Address)
	sep := byte('?')
	add := func(k, v string) {
		b.WriteByte(sep)
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		sep = '&'
	}
	if s.Mode != 0 {
		add("mode", fmt.Sprintf("%04o", uint32(s.Mode.Perm())))
	}
	if s.Owner != "" {
		add("owner", s.Owner)
	}
	if s.Group != "" {
		add("group", s.Group)
	}
	s.Options.query(add)
	return b.String()
}

// Validate reports whether s is exactly what ParseSpec makes of s.String().
// It exists because a Spec may be built by hand; Open calls it.
func (s Spec) Validate() error {
	p, err := ParseAddr(s.Name, s.URL())
	if err != nil {
		return err
	}
	if p != s {
		return fmt.Errorf("socket spec %+v is not canonical (want %+v)", s, p)
	}
	return nil
}

// isUnix reports whether the spec is a unix-domain socket.
func (s Spec) isUnix() bool {
	return s.Network == "unix" || s.Network == "unixgram" || s.Network == "unixpacket"
}

// isStream reports whether the spec is a listening socket (stream or seqpacket).
func (s Spec) isStream() bool { return listening(s.Network) }

// IsAbstract reports whether the spec is a unix socket in the abstract namespace ("@name"),
// which has no file.
func (s Spec) IsAbstract() bool { return s.isUnix() && strings.HasPrefix(s.Address, "@") }

// IsFile reports whether the spec has a file at its Address (a unix socket with a path, or a
// fifo). Only such a spec takes mode, owner and group, and its file is god's to remove when the
// socket goes away.
func (s Spec) IsFile() bool {
	return s.Network == "fifo" || s.isUnix() && strings.HasPrefix(s.Address, "/")
}
