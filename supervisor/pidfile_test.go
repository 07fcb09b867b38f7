package supervisor

import "testing"

func TestParsePid(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int // 0: an error
	}{
		{"1234\n", 1234}, {"1234", 1234}, {"  42 \n", 42}, {"", 0}, {"\n", 0}, {"0", 0}, {"1", 0},
		{"-5", 0}, {"+5", 0}, {"012", 0}, {"12 13", 0}, {"12\n13", 0}, {"abc", 0}, {"99999999999", 0},
		{"0x10", 0}, {"12\x00", 0},
	} {
		got, err := parsePid(c.in)
		if c.want == 0 && err == nil || c.want != 0 && (err != nil || got != c.want) {
			t.Errorf("parsePid(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}

// FuzzParsePid: a pid file's content is outside input; what parsePid accepts is a pid above 1.
func FuzzParsePid(f *testing.F) {
	for _, s := range []string{"1234\n", "", "0", "-1", "012", "1 2", "99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if pid, err := parsePid(s); err == nil && pid <= 1 {
			t.Fatalf("parsePid(%q) = %d", s, pid)
		}
	})
}
