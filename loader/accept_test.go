package loader

import "testing"

// TestParseAccept checks that accept takes only true or false, one of them.
func TestParseAccept(t *testing.T) {
	for _, c := range []struct {
		in   Message
		want bool
		ok   bool
	}{
		{nil, false, true}, {Message{"true"}, true, true}, {Message{"false"}, false, true},
		{Message{"yes"}, false, false}, {Message{"TRUE"}, false, false}, {Message{""}, false, false},
		{Message{"true", "true"}, false, false}, {Message{"1"}, false, false},
	} {
		got, err := parseAccept(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseAccept(%q) = %v, %v; want %v, ok %v", []string(c.in), got, err, c.want, c.ok)
		}
	}
}

// TestParseMaxConnections checks the default, the bounds and the strict digits.
func TestParseMaxConnections(t *testing.T) {
	for _, c := range []struct {
		in   Message
		want int
		ok   bool
	}{
		{nil, DefaultMaxConnections, true}, {Message{"1"}, 1, true}, {Message{"5"}, 5, true},
		{Message{"65536"}, 65536, true}, {Message{"0"}, 0, false}, {Message{"65537"}, 0, false},
		{Message{"-1"}, 0, false}, {Message{"+5"}, 0, false}, {Message{" 5"}, 0, false},
		{Message{"5x"}, 0, false}, {Message{""}, 0, false}, {Message{"5", "6"}, 0, false},
		{Message{"99999999999999999999"}, 0, false},
	} {
		got, err := parseMaxConnections(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseMaxConnections(%q) = %d, %v; want %d, ok %v", []string(c.in), got, err, c.want, c.ok)
		}
	}
}

// FuzzParseMaxConnections checks that no reply gives a bound outside 1..MaxMaxConnections.
func FuzzParseMaxConnections(f *testing.F) {
	for _, s := range []string{"", "5", "0", "65536", "65537", "-1", "+1", "a|b", "true"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := split(s)
		if n, err := parseMaxConnections(m); err == nil && (n < 1 || n > maxMaxConnections) {
			t.Fatalf("parseMaxConnections(%q) = %d", s, n)
		}
		if a, err := parseAccept(m); err == nil && a && (len(m) != 1 || m[0] != "true") {
			t.Fatalf("parseAccept(%q) = true", s)
		}
	})
}
