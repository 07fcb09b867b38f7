package fdpass

import (
	"fmt"
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
