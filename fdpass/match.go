package fdpass

import (
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Matches reports whether f is a socket that can serve spec s. It exists so
// that god can adopt a socket it received from its own parent (systemd, or
// itself before a re-exec) instead of opening a new one, and refuse one that
// was declared differently.
//
// The family and type must fit the network (tcp: AF_INET or AF_INET6 stream;
// tcp4: AF_INET only; unix: AF_UNIX stream; unixpacket: AF_UNIX seqpacket;
// udp*, unixgram: datagram), a
// stream socket must be listening, tcp and udp sockets must be bound to the
// spec's port (any port when the spec says 0) and, when the spec's host is
// an IP literal other than the unspecified address, to that IP; a unix
// socket must be bound to the spec's path or abstract name. A fifo matches
// when it is the fifo at the spec's path. Options are not compared: a socket
// systemd opened is used as it is. Any other file never matches.
func Matches(f *os.File, s Spec) bool {
	fd, err := RawFd(f)
	if err != nil {
		return false
	}
	defer keepAlive(f)
	if s.Network == "fifo" {
		return sameFIFO(fd, s.Address)
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return false
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return false
	}
	wantType := unix.SOCK_DGRAM
	if s.isStream() {
		wantType = unix.SOCK_STREAM
		if s.Network == "unixpacket" {
			wantType = unix.SOCK_SEQPACKET
		}
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			return false
		}
	}
	if typ != wantType {
		return false
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return false
	}
	if s.isUnix() {
		u, ok := sa.(*unix.SockaddrUnix)
		return ok && domain == unix.AF_UNIX && u.Name == s.Address
	}
	switch {
	case strings.HasSuffix(s.Network, "4") && domain != unix.AF_INET,
		strings.HasSuffix(s.Network, "6") && domain != unix.AF_INET6,
		domain != unix.AF_INET && domain != unix.AF_INET6:
		return false
	}
	var ip net.IP
	var port int
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		ip, port = net.IP(a.Addr[:]), a.Port
	case *unix.SockaddrInet6:
		ip, port = net.IP(a.Addr[:]), a.Port
	default:
		return false
	}
	host, sport, err := net.SplitHostPort(s.Address)
	if err != nil {
		return false
	}
	if want, _ := strconv.Atoi(sport); want != 0 && want != port {
		return false
	}
	host, _, _ = strings.Cut(host, "%")
	if want := net.ParseIP(host); want != nil && !want.IsUnspecified() && !want.Equal(ip) {
		return false
	}
	return true
}

// sameFIFO reports whether fd is the fifo at path (same device and inode).
func sameFIFO(fd int, path string) bool {
	var st, pst unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return false
	}
	if unix.Stat(path, &pst) != nil {
		return false
	}
	return st.Dev == pst.Dev && st.Ino == pst.Ino
}
