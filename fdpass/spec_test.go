package fdpass

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in    string
		want  Spec
		canon string // String(); "" means the input itself
	}{
		{in: "web=tcp://127.0.0.1:8080", want: Spec{Name: "web", Network: "tcp", Address: "127.0.0.1:8080"}},
		{in: "web=tcp://:80", want: Spec{Name: "web", Network: "tcp", Address: ":80"}},
		{in: "a.b-c_D9=tcp4://0.0.0.0:0", want: Spec{Name: "a.b-c_D9", Network: "tcp4", Address: "0.0.0.0:0"}},
		{in: "v6=tcp6://[::1]:443", want: Spec{Name: "v6", Network: "tcp6", Address: "[::1]:443"}},
		{in: "v6=tcp://[fe80::1%eth0]:443", want: Spec{Name: "v6", Network: "tcp", Address: "[fe80::1%eth0]:443"}},
		{in: "h=tcp://localhost:080", want: Spec{Name: "h", Network: "tcp", Address: "localhost:80"}, canon: "h=tcp://localhost:80"},
		{in: "dns=udp://127.0.0.1:53", want: Spec{Name: "dns", Network: "udp", Address: "127.0.0.1:53"}},
		{in: "d4=udp4://:53", want: Spec{Name: "d4", Network: "udp4", Address: ":53"}},
		{in: "d6=udp6://[::]:53", want: Spec{Name: "d6", Network: "udp6", Address: "[::]:53"}},
		{in: "api=unix:///run/api.sock", want: Spec{Name: "api", Network: "unix", Address: "/run/api.sock"}},
		{in: "api=unix:///run/api.sock?mode=660", want: Spec{Name: "api", Network: "unix", Address: "/run/api.sock", Mode: 0o660},
			canon: "api=unix:///run/api.sock?mode=0660"},
		{in: "api=unix:///run/api.sock?group=www&owner=1000&mode=0600",
			want:  Spec{Name: "api", Network: "unix", Address: "/run/api.sock", Mode: 0o600, Owner: "1000", Group: "www"},
			canon: "api=unix:///run/api.sock?mode=0600&owner=1000&group=www"},
		{in: "log=unixgram:///dev/log", want: Spec{Name: "log", Network: "unixgram", Address: "/dev/log"}},
		{in: "x=unix:///a=b", want: Spec{Name: "x", Network: "unix", Address: "/a=b"}},
		{in: "a=unix://@app/ctl", want: Spec{Name: "a", Network: "unix", Address: "@app/ctl"}},
		{in: "a=unixgram://@log?sndbuf=8192", want: Spec{Name: "a", Network: "unixgram", Address: "@log", Options: Options{SndBuf: 8192}}},
		{in: "p=unixpacket:///run/p.sock?mode=0600&backlog=16",
			want: Spec{Name: "p", Network: "unixpacket", Address: "/run/p.sock", Mode: 0o600, Options: Options{Backlog: 16}}},
		{in: "p=unixpacket://@pk", want: Spec{Name: "p", Network: "unixpacket", Address: "@pk"}},
		{in: "f=fifo:///run/app.fifo?mode=0660&group=adm", want: Spec{Name: "f", Network: "fifo", Address: "/run/app.fifo", Mode: 0o660, Group: "adm"}},
		{in: "w=tcp://:80?nodelay=1&reuseport=yes&backlog=0128&keepalive=on&defer-accept=5",
			want:  Spec{Name: "w", Network: "tcp", Address: ":80", Options: Options{Backlog: 128, ReusePort: true, KeepAlive: true, NoDelay: true, DeferAccept: 5}},
			canon: "w=tcp://:80?backlog=128&reuseport=true&keepalive=true&nodelay=true&defer-accept=5"},
		{in: "w=tcp://[::]:80?ipv6only=false", want: Spec{Name: "w", Network: "tcp", Address: "[::]:80", Options: Options{IPv6Only: SwitchOff}}},
		{in: "w=tcp6://[::]:80?ipv6only=true", want: Spec{Name: "w", Network: "tcp6", Address: "[::]:80", Options: Options{IPv6Only: SwitchOn}}},
		{in: "w=tcp://127.0.0.1:80?reuseport=false&nodelay=0", want: Spec{Name: "w", Network: "tcp", Address: "127.0.0.1:80"},
			canon: "w=tcp://127.0.0.1:80"},
		{in: "w=tcp4://10.1.2.3:80?freebind=true&transparent=true&mark=4294967295&bind-to-device=eth0.1&rcvbuf=65536&sndbuf=1",
			want: Spec{Name: "w", Network: "tcp4", Address: "10.1.2.3:80", Options: Options{FreeBind: true, Transparent: true,
				Mark: 4294967295, BindToDevice: "eth0.1", RcvBuf: 65536, SndBuf: 1}},
			canon: "w=tcp4://10.1.2.3:80?freebind=true&transparent=true&rcvbuf=65536&sndbuf=1&mark=4294967295&bind-to-device=eth0.1"},
		{in: "d=udp://:53?reuseport=true&ipv6only=true&rcvbuf=4096", want: Spec{Name: "d", Network: "udp", Address: ":53",
			Options: Options{ReusePort: true, IPv6Only: SwitchOn, RcvBuf: 4096}}},
	}
	for _, tt := range tests {
		got, err := ParseSpec(tt.in)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.in, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
		canon := tt.canon
		if canon == "" {
			canon = tt.in
		}
		if got.String() != canon {
			t.Errorf("ParseSpec(%q).String() = %q, want %q", tt.in, got.String(), canon)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("ParseSpec(%q).Validate(): %v", tt.in, err)
		}
	}
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // a part of the error; the input is always quoted in it
	}{
		{"", "want NAME=ADDR"},
		{"web", "want NAME=ADDR"},
		{"=tcp://:80", "socket name"},
		{"we b=tcp://:80", "socket name"},
		{strings.Repeat("n", 65) + "=tcp://:80", "socket name"},
		{"web=:80", "want SCHEME://"},
		{"web=http://:80", `unknown scheme "http"`},
		{"web=TCP://:80", `unknown scheme "TCP"`},
		{"web=tcp://127.0.0.1", "not HOST:PORT"},
		{"web=tcp://127.0.0.1:http", `port "http"`},
		{"web=tcp://127.0.0.1:65536", `port "65536"`},
		{"web=tcp://127.0.0.1:-1", `port "-1"`},
		{"web=tcp://127.0.0.1:+1", `port "+1"`},
		{"web=tcp://127.0.0.1:80/x", "not HOST:PORT"},
		{"web=tcp://127.0.0.1:80?mode=0600", "option mode: does not apply to tcp"},
		{"web=tcp://user@host:80", "not HOST:PORT"},
		{"web=tcp4://[::1]:80", "IPv6 address for tcp4"},
		{"web=tcp6://127.0.0.1:80", "IPv4 address for tcp6"},
		{"web=tcp://ex$ample:80", "not an IP address or host name"},
		{"web=tcp://999.1.1.1:80", "not an IP address or host name"},
		{"web=tcp://10.0.0:80", "not an IP address or host name"},
		{"web=tcp://1234:80", "not an IP address or host name"},
		{"web=tcp://127.0.0.1%eth0:80", "bad zone"},
		{"sock=unix://run/x.sock", "relative"},
		{"sock=unix://", "empty path"},
		{"sock=unix:///run/", "ends in '/'"},
		{"sock=unix:///" + strings.Repeat("p", 107), "at most 107"},
		{"sock=unix:///x?mode=0", `mode "0"`},
		{"sock=unix:///x?mode=1777", `mode "1777"`},
		{"sock=unix:///x?mode=rw", `mode "rw"`},
		{"sock=unix:///x?mode=0600&mode=0600", "mode given 2 times"},
		{"sock=unix:///x?owner=a:b", `owner "a:b"`},
		{"sock=unix:///x?group=", `group ""`},
		{"sock=unix:///x?user=root", `unknown key "user"`},
		{"sock=unix:///x?mode=%zz", "invalid URL escape"},
		{"sock=unix://@", "abstract name \"@\" is empty"},
		{"sock=unix://@" + strings.Repeat("a", 107), "at most 106"},
		{"sock=unix://@a?mode=0600", "option mode: does not apply to an abstract unix socket"},
		{"sock=unixpacket://@a?owner=root", "option owner: does not apply to an abstract unixpacket socket"},
		{"f=fifo://@a", "a fifo has no abstract name"},
		{"f=fifo://rel", "relative"},
		{"f=fifo:///" + strings.Repeat("p", 4095), "at most 4095"},
		{"f=fifo:///x?backlog=1", "option backlog: does not apply to fifo"},
		{"f=fifo:///x?rcvbuf=1", "option rcvbuf: does not apply to fifo"},
		{"u=udp://:53?backlog=5", "option backlog: does not apply to udp (only to tcp, tcp4, tcp6, unix, unixpacket)"},
		{"u=udp://:53?nodelay=true", "option nodelay: does not apply to udp"},
		{"u=unixgram:///x?defer-accept=1", "option defer-accept: does not apply to unixgram"},
		{"u=unix:///x?reuseport=true", "option reuseport: does not apply to unix"},
		{"u=unix:///x?mark=1", "option mark: does not apply to unix"},
		{"u=unix:///x?bind-to-device=lo", "option bind-to-device: does not apply to unix"},
		{"w=tcp4://:80?ipv6only=true", "option ipv6only: does not apply to tcp4"},
		{"w=tcp://127.0.0.1:80?ipv6only=true", "option ipv6only: does not apply to the IPv4 address 127.0.0.1"},
		{"w=tcp://:80?backlog=0", `option backlog "0": want a number from 1`},
		{"w=tcp://:80?backlog=2147483648", `option backlog "2147483648"`},
		{"w=tcp://:80?backlog=-1", `option backlog "-1"`},
		{"w=tcp://:80?backlog=+1", `option backlog " 1"`},
		{"w=tcp://:80?backlog=%2B1", `option backlog "+1"`},
		{"w=tcp://:80?reuseport=maybe", `option reuseport "maybe": want true or false`},
		{"w=tcp://:80?reuseport=", `option reuseport "": want true or false`},
		{"w=tcp://:80?defer-accept=x", `option defer-accept "x"`},
		{"w=tcp://:80?mark=4294967296", `option mark "4294967296"`},
		{"w=tcp://:80?bind-to-device=" + strings.Repeat("e", 16), "option bind-to-device"},
		{"w=tcp://:80?bind-to-device=a/b", "option bind-to-device"},
		{"w=tcp://:80?bind-to-device=..", "option bind-to-device"},
		{"w=tcp://:80?nodelay=true&nodelay=true", "nodelay given 2 times"},
		{"w=tcp://:80?fastopen=1", `unknown key "fastopen"`},
	}
	for _, tt := range tests {
		_, err := ParseSpec(tt.in)
		if err == nil {
			t.Errorf("ParseSpec(%q): no error, want one containing %q", tt.in, tt.wantErr)
			continue
		}
		if !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("ParseSpec(%q) error %q does not contain %q", tt.in, err, tt.wantErr)
		}
		if !strings.Contains(err.Error(), "socket spec "+quote(tt.in)) {
			t.Errorf("ParseSpec(%q) error %q does not quote the spec", tt.in, err)
		}
	}
}

func TestValidateHandBuilt(t *testing.T) {
	bad := []Spec{
		{},
		{Name: "x", Network: "tcp", Address: "127.0.0.1:080"},
		{Name: "x", Network: "unix", Address: "/x", Mode: 0o4755},
		{Name: "x", Network: "tcp", Address: "127.0.0.1:80", Mode: 0o600},
		{Name: "x", Network: "sctp", Address: "127.0.0.1:80"},
	}
	for _, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("Validate(%+v): no error", s)
		}
		if _, err := Open(s); err == nil {
			t.Errorf("Open(%+v): no error", s)
		}
	}
}

// quote is %q, as errors quote the input.
func quote(s string) string { return strconv.Quote(s) }

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{
		"web=tcp://127.0.0.1:8080", "web=tcp://:80", "v6=tcp6://[::1]:443", "v6=tcp://[fe80::1%eth0]:1",
		"dns=udp://127.0.0.1:53", "d=udp4://:0", "api=unix:///run/api.sock?mode=0660&owner=www&group=www",
		"log=unixgram:///dev/log", "x=unix://rel", "x=tcp://h:http", "=", "a=b=c", "x=unix:///a?mode=%30",
		"x=tcp://[::ffff:1.2.3.4]:1", "x=unix:///a?owner=a$",
		"a=unix://@app/ctl?backlog=5&rcvbuf=4096", "g=unixgram://@g", "p=unixpacket:///p?mode=600&sndbuf=1",
		"f=fifo:///run/x.fifo?mode=0660&owner=root", "w=tcp://[::]:80?ipv6only=false&reuseport=1&nodelay=true",
		"w=tcp4://1.2.3.4:80?freebind=on&transparent=t&keepalive=yes&defer-accept=3&mark=7&bind-to-device=lo",
		"d=udp6://[::1]:53?ipv6only=no&sndbuf=00100", "w=tcp://:1?backlog=2147483647", "w=tcp://:1?mark=+1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSpec(in)
		if err != nil {
			if !strings.Contains(err.Error(), "socket spec") {
				t.Fatalf("error %q does not name the spec", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("ParseSpec(%q) = %+v, which does not validate: %v", in, s, err)
		}
		again, err := ParseSpec(s.String())
		if err != nil || again != s {
			t.Fatalf("ParseSpec(%q).String() = %q does not round-trip: %+v, %v", in, s.String(), again, err)
		}
		if !ValidName(s.Name) || strings.Contains(s.Name, ":") {
			t.Fatalf("bad name %q accepted", s.Name)
		}
	})
}
