package main

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/loader"
)

// sockOpt is a [Socket] option as god's query option: key=value (an empty value: the default,
// nothing to write).
type sockOpt struct {
	directive, key, value string
	line                  int
}

// socketOption maps one of systemd's socket options to god's query option (fdpass.Options),
// checking its value the way god will.
func socketOption(o option) (sockOpt, error) {
	out := sockOpt{directive: o.name, line: o.line}
	boolean := map[string]string{"ReusePort": "reuseport", "FreeBind": "freebind", "Transparent": "transparent",
		"KeepAlive": "keepalive", "NoDelay": "nodelay"}
	v := strings.TrimSpace(o.value)
	switch o.name {
	case "BindIPv6Only":
		out.key = "ipv6only"
		switch v {
		case "default", "":
		case "both":
			out.value = "false"
		case "ipv6-only":
			out.value = "true"
		default:
			return out, fmt.Errorf("want default, both or ipv6-only")
		}
		return out, nil
	case "Backlog":
		out.key, out.value = "backlog", v
	case "DeferAcceptSec":
		out.key = "defer-accept"
		d, err := parseSeconds(v)
		if err != nil {
			return out, err
		}
		if d > 0 {
			out.value = strconv.Itoa(d)
		}
		return out, nil
	case "ReceiveBuffer", "SendBuffer":
		out.key = map[string]string{"ReceiveBuffer": "rcvbuf", "SendBuffer": "sndbuf"}[o.name]
		n, err := parseSize(v)
		if err != nil {
			return out, err
		}
		out.value = strconv.FormatUint(n, 10)
	case "Mark":
		out.key, out.value = "mark", v
	case "BindToDevice":
		out.key, out.value = "bind-to-device", v
	default:
		out.key = boolean[o.name]
		if isTrue(v) {
			out.value = "true"
		}
		return out, nil
	}
	// Check the value on a socket it applies to.
	probe := "tcp://:1?" + out.key + "=" + out.value
	if _, err := fdpass.ParseAddr("x", probe); err != nil {
		_, why, _ := strings.Cut(err.Error(), "option ")
		return out, fmt.Errorf("%s", why)
	}
	return out, nil
}

// parseSeconds reads systemd's time span as whole seconds: "5", "5s", "2min", "1h" (one unit).
func parseSeconds(v string) (int, error) {
	num := strings.TrimRight(v, "abcdefghijklmnopqrstuvwxyz")
	unit := strings.TrimSpace(v[len(num):])
	n, err := strconv.Atoi(strings.TrimSpace(num))
	mult := map[string]int{"": 1, "s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60,
		"minutes": 60, "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}[unit]
	if err != nil || n < 0 || mult == 0 {
		return 0, fmt.Errorf("want whole seconds, e.g. 5 or 5s or 2min")
	}
	return n * mult, nil
}

// parseSize reads systemd's size: bytes with an optional K, M or G suffix (base 1024).
func parseSize(v string) (uint64, error) {
	mult := uint64(1)
	switch {
	case strings.HasSuffix(v, "K"):
		mult = 1 << 10
	case strings.HasSuffix(v, "M"):
		mult = 1 << 20
	case strings.HasSuffix(v, "G"):
		mult = 1 << 30
	}
	if mult > 1 {
		v = v[:len(v)-1]
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 || n*mult > 1<<31-1 {
		return 0, fmt.Errorf("want a size from 1 to 2G-1 bytes (K, M, G suffixes)")
	}
	return n * mult, nil
}

// silentSocket are [Socket] directives with nothing to do in god: Accept=no is the only mode
// god has, and Service= is read by mapSocket.
var silentSocket = map[string]bool{"Service": true}

// mapSocket adds the sockets of a .socket unit to the listen property of its service: the one
// named by Service=, else the service of the same name.
func (us *units) mapSocket(u *unitFile) {
	us.warnSections(u)
	target := u.name
	var (
		addrs     []option // ListenStream= etc., in order
		fdName    string
		owner     string
		group     string
		mode      string
		modeLine  int
		ownerLine int
		sockOpts  []sockOpt // Backlog= etc., as god's query options
		installed bool      // [Install] WantedBy=/RequiredBy=
	)
	for _, o := range u.options {
		switch o.section {
		case "Unit":
			if !silentUnit[o.name] {
				us.warn(u.warnf(o.line, "%s= is not supported in a .socket unit by god-units (ignored)", o.name))
			}
		case "Install":
			// god opens a job's sockets when the job is defined: sockets.target is implied. An
			// installed socket starts its service on the first connection.
			if o.name != "WantedBy" && o.name != "RequiredBy" {
				us.warn(u.warnf(o.line, "%s= is not supported by god-units (ignored)", o.name))
			} else {
				installed = true
			}
		case "Socket":
			switch o.name {
			case "ListenStream", "ListenDatagram", "ListenSequentialPacket", "ListenFIFO":
				if o.value == "" {
					addrs = nil
					continue
				}
				addrs = append(addrs, o)
			case "Service":
				target = strings.TrimSuffix(o.value, ".service")
			case "FileDescriptorName":
				if !loader.ValidJobName(o.value) {
					us.warn(u.warnf(o.line, "FileDescriptorName=%s: god's socket names are 1 to 64 of A-Z a-z 0-9 _ . - (ignored)", o.value))
					continue
				}
				fdName = o.value
			case "SocketUser":
				owner, ownerLine = o.value, o.line
			case "SocketGroup":
				group, ownerLine = o.value, o.line
			case "SocketMode":
				if _, err := strconv.ParseUint(o.value, 8, 32); err != nil {
					us.warn(u.warnf(o.line, "SocketMode=%s: not an octal mode (ignored)", o.value))
					continue
				}
				mode, modeLine = o.value, o.line
			case "Accept":
				if isTrue(o.value) {
					us.warn(u.warnf(o.line, "Accept=yes needs a template service (NAME@.service), which god-units does not read; god's accept property runs a process per connection (ignored: the service gets the listening socket)"))
				}
			case "Backlog", "ReusePort", "BindIPv6Only", "FreeBind", "Transparent", "KeepAlive", "NoDelay",
				"DeferAcceptSec", "ReceiveBuffer", "SendBuffer", "Mark", "BindToDevice":
				opt, err := socketOption(o)
				if err != nil {
					us.warn(u.warnf(o.line, "%s=%s: %v (ignored)", o.name, o.value, err))
					continue
				}
				sockOpts = slices.DeleteFunc(sockOpts, func(s sockOpt) bool { return s.key == opt.key }) // the last one wins
				if opt.value != "" {
					sockOpts = append(sockOpts, opt)
				}
			default:
				if !silentSocket[o.name] {
					us.warn(u.warnf(o.line, "%s= is not supported by god-units (ignored)", o.name))
				}
			}
		}
	}
	j := us.byName[target]
	if j == nil {
		us.warn(u.warnf(0, "no service %s.service in this directory for this socket (ignored)", target))
		return
	}
	j.socketInstalled = j.socketInstalled || installed
	base := fdName
	if base == "" {
		base = u.file // systemd's default name: the socket unit's name
	}
	unixUsed := false
	n := 0
	for _, o := range addrs {
		addr, isUnix, err := listenAddr(o.name, o.value)
		if err != nil {
			us.warn(u.warnf(o.line, "%s=%s: %v (ignored)", o.name, o.value, err))
			continue
		}
		if isUnix {
			unixUsed = true
			var q []string
			if mode != "" {
				q = append(q, "mode="+mode)
			}
			if owner != "" {
				q = append(q, "owner="+owner)
			}
			if group != "" {
				q = append(q, "group="+group)
			}
			if len(q) > 0 {
				addr += "?" + strings.Join(q, "&")
			}
		}
		for _, opt := range sockOpts {
			sep := "?"
			if strings.Contains(addr, "?") {
				sep = "&"
			}
			with := addr + sep + opt.key + "=" + opt.value
			if _, err := fdpass.ParseAddr("x", with); err != nil {
				us.warn(u.warnf(opt.line, "%s= does not apply to %s=%s (ignored for it)", opt.directive, o.name, o.value))
				continue
			}
			addr = with
		}
		n++
		name := base
		if n > 1 {
			name = base + "-" + strconv.Itoa(n)
			us.warn(u.warnf(o.line, "%s=%s: god needs a socket name of its own; this one is %s", o.name, o.value, name))
		}
		if slices.ContainsFunc(j.props["listen"], func(s string) bool { return strings.HasPrefix(s, name+"=") }) {
			us.warn(u.warnf(o.line, "%s=%s: socket name %s is already used by job %s (ignored)", o.name, o.value, name, j.name))
			continue
		}
		j.props["listen"] = append(j.props["listen"], name+"="+addr)
	}
	if !unixUsed && (mode != "" || owner != "" || group != "") {
		us.warn(u.warnf(max(modeLine, ownerLine), "SocketUser=, SocketGroup= and SocketMode= only apply to unix sockets (ignored)"))
	}
}

// listenAddr turns a systemd Listen*= value into god's address syntax (tcp://, udp://,
// unix://, unixgram://, unixpacket://, fifo://), and says whether it has a file (which takes
// mode and owner).
func listenAddr(directive, v string) (string, bool, error) {
	unixScheme := map[string]string{"ListenStream": "unix", "ListenDatagram": "unixgram", "ListenSequentialPacket": "unixpacket"}
	switch {
	case directive == "ListenFIFO":
		if !strings.HasPrefix(v, "/") || strings.Contains(v, "?") {
			return "", false, fmt.Errorf("want an absolute path without ?")
		}
		return "fifo://" + v, true, nil
	case strings.HasPrefix(v, "@"):
		if strings.Contains(v, "?") {
			return "", false, fmt.Errorf("an abstract name with ? cannot be written in god's address syntax")
		}
		return unixScheme[directive] + "://" + v, false, nil
	case strings.HasPrefix(v, "vsock:"):
		return "", false, fmt.Errorf("vsock sockets are not supported by god")
	case strings.HasPrefix(v, "/"):
		if strings.Contains(v, "?") {
			return "", false, fmt.Errorf("a unix socket path with ? cannot be written in god's address syntax")
		}
		return unixScheme[directive] + "://" + v, true, nil
	}
	if directive == "ListenSequentialPacket" {
		return "", false, fmt.Errorf("sequential-packet sockets are unix sockets: want an absolute path")
	}
	scheme := "tcp"
	if directive == "ListenDatagram" {
		scheme = "udp"
	}
	if p, err := strconv.Atoi(v); err == nil {
		if p < 1 || p > 65535 {
			return "", false, fmt.Errorf("port %d out of range", p)
		}
		return scheme + "://:" + v, false, nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", false, fmt.Errorf("not a port, HOST:PORT or absolute path: %w", err)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return "", false, fmt.Errorf("bad port %q", port)
	}
	if strings.Contains(host, "%") {
		return "", false, fmt.Errorf("scoped addresses (%%IFACE) are not supported by god")
	}
	return scheme + "://" + net.JoinHostPort(host, port), false, nil
}

// resolveDeps turns Requires=/Wants=/After=/Before= into god's auto property. A job starts by
// itself when it is installed ([Install] WantedBy=) or pulled in by a job that does; it waits
// for the jobs of this directory it is ordered after. A job that does not start by itself but
// has an installed socket starts on its first connection (auto ["socket"]). Dependencies on units this loader does not
// define (targets, other directories) are warnings.
func (us *units) resolveDeps(sockets map[string]bool) {
	// Before= of one job is After= of the other.
	for _, j := range us.jobs {
		for _, r := range j.before {
			name, ok := strings.CutSuffix(r.unit, ".service")
			if o := us.byName[name]; ok && o != nil {
				o.orders = append(o.orders, ref{unit: j.name + ".service", directive: "Before", line: r.line, from: j.unit})
			} else if !sockets[r.unit] {
				us.warn(j.unit.warnf(r.line, "Before=%s: not a service of this directory (ignored)", r.unit))
			}
		}
	}
	auto := map[string]bool{}
	for _, j := range us.jobs {
		if j.installed {
			auto[j.name] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for _, j := range us.jobs {
			if !auto[j.name] {
				continue
			}
			for _, r := range j.pulls {
				if name, ok := strings.CutSuffix(r.unit, ".service"); ok && us.byName[name] != nil && !auto[name] {
					auto[name] = true
					changed = true
				}
			}
		}
	}
	for _, j := range us.jobs {
		var deps []string
		for _, r := range j.orders {
			name, ok := strings.CutSuffix(r.unit, ".service")
			switch {
			case ok && us.byName[name] != nil:
				if name == j.name || slices.Contains(deps, name) {
					continue
				}
				if !auto[name] && auto[j.name] {
					if r.from != nil { // name's own Before=j.service
						us.warn(r.from.warnf(r.line, "Before=%s.service: %s does not start by itself (no WantedBy=, not required by a job that does), so %s does not wait for it", j.name, name, j.name))
					} else {
						us.warn(j.unit.warnf(r.line, "%s=%s: %s does not start by itself (no WantedBy=, not required by a job that does), so it is not waited for", r.directive, r.unit, name))
					}
					continue
				}
				deps = append(deps, name)
			case sockets[r.unit]:
				// god opens a job's sockets before it starts it.
			default:
				us.warn(j.unit.warnf(r.line, "%s=%s: not a service of this directory (ignored)", r.directive, r.unit))
			}
		}
		switch {
		case !auto[j.name] && j.socketInstalled && len(j.props["listen"]) > 0:
			j.props["auto"] = []string{"socket"} // systemd's socket activation: god starts it on demand
		case !auto[j.name]:
			j.props["auto"] = []string{"false"}
		case len(deps) > 0:
			j.props["auto"] = deps
		default:
			j.props["auto"] = []string{"true"}
		}
	}
}
