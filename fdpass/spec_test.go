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
