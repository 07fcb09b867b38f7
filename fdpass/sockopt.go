package fdpass

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// apply sets the options on the socket fd, before it is bound: the options that bind looks at
// (reuseport, ipv6only, freebind, transparent, bind-to-device, the buffer sizes for tcp's window
// scale) must be set by then, and the others are inherited by accepted connections. Errors name
// the option and its value.
func (o Options) apply(fd int) error {
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("getsockopt SO_DOMAIN: %w", err)
	}
	v6 := domain == unix.AF_INET6
	type opt struct {
		on          bool
		key, val    string
		level, name int
		v           int
	}
	b := func(on bool) string { return strconv.FormatBool(on) }
	ipLevel, freebind, transparent := unix.IPPROTO_IP, unix.IP_FREEBIND, unix.IP_TRANSPARENT
	if v6 {
		ipLevel, freebind, transparent = unix.IPPROTO_IPV6, unix.IPV6_FREEBIND, unix.IPV6_TRANSPARENT
	}
	opts := []opt{
		{o.ReusePort, "reuseport", "true", unix.SOL_SOCKET, unix.SO_REUSEPORT, 1},
		{o.IPv6Only != SwitchDefault, "ipv6only", b(o.IPv6Only == SwitchOn), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(o.IPv6Only == SwitchOn)},
		{o.FreeBind, "freebind", "true", ipLevel, freebind, 1},
		{o.Transparent, "transparent", "true", ipLevel, transparent, 1},
		{o.KeepAlive, "keepalive", "true", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{o.NoDelay, "nodelay", "true", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{o.DeferAccept != 0, "defer-accept", strconv.Itoa(o.DeferAccept), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, o.DeferAccept},
		{o.RcvBuf != 0, "rcvbuf", strconv.Itoa(o.RcvBuf), unix.SOL_SOCKET, unix.SO_RCVBUF, o.RcvBuf},
		{o.SndBuf != 0, "sndbuf", strconv.Itoa(o.SndBuf), unix.SOL_SOCKET, unix.SO_SNDBUF, o.SndBuf},
		{o.Mark != 0, "mark", strconv.FormatUint(uint64(o.Mark), 10), unix.SOL_SOCKET, unix.SO_MARK, int(int32(o.Mark))},
	}
	for _, p := range opts {
		if !p.on {
			continue
		}
		if p.key == "ipv6only" && !v6 {
			return fmt.Errorf("option ipv6only=%s: the socket is IPv4 (the host resolved to an IPv4 address)", p.val)
		}
		if err := unix.SetsockoptInt(fd, p.level, p.name, p.v); err != nil {
			return fmt.Errorf("option %s=%s: setsockopt: %w", p.key, p.val, err)
		}
	}
	if o.BindToDevice != "" {
		if err := unix.BindToDevice(fd, o.BindToDevice); err != nil {
			return fmt.Errorf("option bind-to-device=%s: setsockopt: %w", o.BindToDevice, err)
		}
	}
	return nil
}

// boolInt is 1 for true, 0 for false: a boolean socket option's value.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Reconfigure changes the socket f, opened for spec from, into one for spec to, in place, when
// the two differ only in what a bound socket can still change: mode, owner and group of its
// file, backlog, keepalive, nodelay, defer-accept, mark, and buffer sizes being set (not reset to
// the kernel's default). It exists so that a reload that changes such an option keeps the socket
// and the connections queued in it: opening a second socket on the same address would fail
// (address in use) or, with reuseport, split the queue. It returns false, changing nothing, when
// the specs differ in anything else (address, kind, a bind-time option); the error names the
// option the kernel refused.
func Reconfigure(f *os.File, from, to Spec) (bool, error) {
	if !reconfigurable(from, to) {
		return false, nil
	}
	fd, err := RawFd(f)
	if err != nil {
		return false, err
	}
	defer keepAlive(f)
	a, b := from.Options, to.Options
	ints := []struct {
		key         string
		old, new    int
		level, name int
	}{
		{"keepalive", boolInt(a.KeepAlive), boolInt(b.KeepAlive), unix.SOL_SOCKET, unix.SO_KEEPALIVE},
		{"nodelay", boolInt(a.NoDelay), boolInt(b.NoDelay), unix.IPPROTO_TCP, unix.TCP_NODELAY},
		{"defer-accept", a.DeferAccept, b.DeferAccept, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT},
		{"mark", int(int32(a.Mark)), int(int32(b.Mark)), unix.SOL_SOCKET, unix.SO_MARK},
		{"rcvbuf", a.RcvBuf, b.RcvBuf, unix.SOL_SOCKET, unix.SO_RCVBUF},
		{"sndbuf", a.SndBuf, b.SndBuf, unix.SOL_SOCKET, unix.SO_SNDBUF},
	}
	for _, o := range ints {
		if o.old == o.new {
			continue
		}
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.new); err != nil {
			return false, fmt.Errorf("socket %s: option %s: setsockopt: %w", to, o.key, err)
		}
	}
	if a.Backlog != b.Backlog {
		backlog := b.Backlog
		if backlog == 0 {
			backlog = maxOptInt // the kernel clamps it to somaxconn, Go's default
		}
		if err := unix.Listen(fd, backlog); err != nil {
			return false, fmt.Errorf("socket %s: option backlog: listen: %w", to, err)
		}
	}
	if to.IsFile() && (from.Mode != to.Mode || from.Owner != to.Owner || from.Group != to.Group) {
		if err := applyPerms(to); err != nil {
			return false, fmt.Errorf("socket %s: %w", to, err)
		}
	}
	return true, nil
}

// reconfigurable reports whether a socket opened for from can become one for to in place (see
// Reconfigure).
func reconfigurable(from, to Spec) bool {
	if to.Validate() != nil || from.Validate() != nil {
		return false
	}
	// A buffer size or mode back to the default cannot be undone: the default is not known here.
	if to.RcvBuf == 0 && from.RcvBuf != 0 || to.SndBuf == 0 && from.SndBuf != 0 || to.Mode == 0 && from.Mode != 0 {
		return false
	}
	// An owner or group dropped leaves the file as it is: not the same as never set.
	if to.Owner == "" && from.Owner != "" || to.Group == "" && from.Group != "" {
		return false
	}
	x := from
	x.Mode, x.Owner, x.Group = to.Mode, to.Owner, to.Group
	x.Backlog, x.KeepAlive, x.NoDelay, x.DeferAccept = to.Backlog, to.KeepAlive, to.NoDelay, to.DeferAccept
	x.Mark, x.RcvBuf, x.SndBuf = to.Mark, to.RcvBuf, to.SndBuf
	return x == to
}
