package fdpass

import (
	"fmt"
	"strconv"
	"strings"
)

// Options are the socket options of a spec's query, named and valued as systemd.socket's
// (Backlog=, ReusePort=, BindIPv6Only=, FreeBind=, Transparent=, KeepAlive=, NoDelay=,
// DeferAcceptSec=, ReceiveBuffer=, SendBuffer=, Mark=, BindToDevice=). The zero Options leave
// every option to the kernel's (and Go's) default. Open applies them when it opens the socket.
type Options struct {
	Backlog      int    // listen(2) backlog; 0: the kernel's somaxconn, as Go uses
	ReusePort    bool   // SO_REUSEPORT, before bind
	IPv6Only     Switch // IPV6_V6ONLY, before bind; default: dual-stack for tcp and udp, v6 only for tcp6 and udp6
	FreeBind     bool   // IP_FREEBIND or IPV6_FREEBIND, before bind
	Transparent  bool   // IP_TRANSPARENT or IPV6_TRANSPARENT, before bind (needs CAP_NET_ADMIN)
	KeepAlive    bool   // SO_KEEPALIVE, inherited by accepted connections
	NoDelay      bool   // TCP_NODELAY, inherited by accepted connections
	DeferAccept  int    // TCP_DEFER_ACCEPT in seconds; 0: off
	RcvBuf       int    // SO_RCVBUF in bytes (the kernel doubles it); 0: default
	SndBuf       int    // SO_SNDBUF in bytes (the kernel doubles it); 0: default
	Mark         uint32 // SO_MARK (needs CAP_NET_ADMIN); 0: none
	BindToDevice string // SO_BINDTODEVICE, before bind; "": any interface
}

// Switch is a boolean option whose default depends on the socket: unset, off or on.
type Switch uint8

// The values of a Switch.
const (
	SwitchDefault Switch = iota
	SwitchOff
	SwitchOn
)

// maxOptInt bounds the integer options: they are C ints.
const maxOptInt = 1<<31 - 1

// optionKeys are the query keys of the socket options, in their canonical order.
var optionKeys = []string{"backlog", "reuseport", "ipv6only", "freebind", "transparent", "keepalive",
	"nodelay", "defer-accept", "rcvbuf", "sndbuf", "mark", "bind-to-device"}

// isOptionKey reports whether key names a socket option (as opposed to mode, owner, group).
func isOptionKey(key string) bool {
	for _, k := range optionKeys {
		if k == key {
			return true
		}
	}
	return false
}

// optionApplies reports whether the option key applies to the socket kind network, and if not
// names the kinds it applies to. It exists so that an option a kind ignores is refused when
// parsed rather than silently dropped.
func optionApplies(key, network string) (bool, string) {
	ip := isIP(network)
	tcp := strings.HasPrefix(network, "tcp")
	switch key {
	case "backlog":
		return listening(network), "tcp, tcp4, tcp6, unix, unixpacket"
	case "reuseport", "freebind", "transparent", "mark", "bind-to-device":
		return ip, "tcp and udp"
	case "ipv6only":
		return network == "tcp" || network == "tcp6" || network == "udp" || network == "udp6", "tcp, tcp6, udp, udp6"
	case "keepalive", "nodelay", "defer-accept":
		return tcp, "tcp, tcp4, tcp6"
	case "rcvbuf", "sndbuf":
		return network != "fifo", "sockets (not fifo)"
	}
	return false, ""
}

// set parses the value v of option key into o. Errors name the option and quote the value.
func (o *Options) set(key, v string) error {
	var err error
	switch key {
	case "backlog":
		o.Backlog, err = optInt(key, v, 1)
	case "reuseport":
		o.ReusePort, err = optBool(key, v)
	case "ipv6only":
		var b bool
		if b, err = optBool(key, v); err == nil {
			o.IPv6Only = SwitchOff
			if b {
				o.IPv6Only = SwitchOn
			}
		}
	case "freebind":
		o.FreeBind, err = optBool(key, v)
	case "transparent":
		o.Transparent, err = optBool(key, v)
	case "keepalive":
		o.KeepAlive, err = optBool(key, v)
	case "nodelay":
		o.NoDelay, err = optBool(key, v)
	case "defer-accept":
		o.DeferAccept, err = optInt(key, v, 0)
	case "rcvbuf":
		o.RcvBuf, err = optInt(key, v, 1)
	case "sndbuf":
		o.SndBuf, err = optInt(key, v, 1)
	case "mark":
		var m uint64
		m, err = strconv.ParseUint(v, 10, 32)
		if err != nil || v[0] == '+' {
			err = fmt.Errorf("mark %q: want a number from 0 to 4294967295", v)
		}
		o.Mark = uint32(m)
	case "bind-to-device":
		if !validIfName(v) {
			err = fmt.Errorf("bind-to-device %q: want an interface name (1 to 15 of A-Z a-z 0-9 _ . -)", v)
		}
		o.BindToDevice = v
	}
	return err
}

// optInt parses a decimal C int option of at least min.
func optInt(key, v string, min int) (int, error) {
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < int64(min) || v[0] == '+' {
		return 0, fmt.Errorf("%s %q: want a number from %d to %d", key, v, min, maxOptInt)
	}
	return int(n), nil
}

// optBool parses a boolean the way systemd does (1, yes, y, true, t, on and their opposites).
func optBool(key, v string) (bool, error) {
	switch v {
	case "1", "yes", "y", "true", "t", "on":
		return true, nil
	case "0", "no", "n", "false", "f", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s %q: want true or false", key, v)
}

// validIfName accepts the interface names a URL carries unescaped: 1 to 15 (IFNAMSIZ-1) of
// letters, digits, '_', '.', '-', and neither "." nor "..".
func validIfName(v string) bool {
	return len(v) <= 15 && v != "." && v != ".." && isHostName(v) // the same characters
}

// query appends the options that differ from the default to add, in canonical order.
func (o Options) query(add func(k, v string)) {
	num := func(k string, n int) {
		if n != 0 {
			add(k, strconv.Itoa(n))
		}
	}
	flag := func(k string, b bool) {
		if b {
			add(k, "true")
		}
	}
	num("backlog", o.Backlog)
	flag("reuseport", o.ReusePort)
	switch o.IPv6Only {
	case SwitchOn:
		add("ipv6only", "true")
	case SwitchOff:
		add("ipv6only", "false")
	}
	flag("freebind", o.FreeBind)
	flag("transparent", o.Transparent)
	flag("keepalive", o.KeepAlive)
	flag("nodelay", o.NoDelay)
	num("defer-accept", o.DeferAccept)
	num("rcvbuf", o.RcvBuf)
	num("sndbuf", o.SndBuf)
	if o.Mark != 0 {
		add("mark", strconv.FormatUint(uint64(o.Mark), 10))
	}
	if o.BindToDevice != "" {
		add("bind-to-device", o.BindToDevice)
	}
}

// isIP reports whether network is one of the tcp and udp kinds.
func isIP(network string) bool {
	return strings.HasPrefix(network, "tcp") || strings.HasPrefix(network, "udp")
}

// listening reports whether network is a kind that listens (and so has a backlog).
func listening(network string) bool {
	return strings.HasPrefix(network, "tcp") || network == "unix" || network == "unixpacket"
}
