package envfile

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                  nil,
		"\n\n  \n":                          nil,
		"# comment\n; also\n  # indented\n": nil,
		"A=1":                               {"A=1"},
		"A=1\nB=2\n":                        {"A=1", "B=2"},
		"  A = 1  \n":                       {"A=1"},
		"export A=1":                        {"A=1"},
		"exportA=1":                         {"exportA=1"},
		"A=":                                {"A="},
		"A=a b  c \t":                       {"A=a b  c"},
		"A=x # not a comment":               {"A=x # not a comment"},
		`A='single $x \n "q"'`:              {`A=single $x \n "q"`},
		`A="double \" \\ \$ \a"`:            {`A=double " \ $ \a`},
		`A="a"'b'c`:                         {"A=abc"},
		"A='  '":                            {"A=  "},
		"A=\"x  \"  ":                       {"A=x  "},
		"A='multi\nline'\nB=2":              {"A=multi\nline", "B=2"},
		"A=one\\\ntwo\nB=3":                 {"A=onetwo", "B=3"},
		"A=\"one\\\ntwo\"":                  {"A=onetwo"},
		`A=back\ slash\\`:                   {`A=back slash\`},
		"A=1\r\nB=2\r\n":                    {"A=1", "B=2"},
		"A=1\nA=2":                          {"A=1", "A=2"},
		"_x9=ok":                            {"_x9=ok"},
		"A==b":                              {"A==b"},
	} {
		got, err := Parse(strings.NewReader(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for in, line := range map[string]int{
		"A=1\nnoequals\n":     2,
		"=1":                  1,
		"9A=1":                1,
		"A-B=1":               1,
		"A B=1":               1,
		"A=1\nB='open\n\n":    2,
		"A=1\n\nB=\"open\\\"": 3,
		"A=1\nB=\x00":         2,
	} {
		_, err := Parse(strings.NewReader(in))
		var pe *Error
		if !errors.As(err, &pe) || pe.Line != line {
			t.Errorf("Parse(%q) = %v, want an error on line %d", in, err, line)
		}
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "web.env")
	if err := os.WriteFile(p, []byte("A=1\nB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(p); err == nil || err.Error() != p+":2: no '=' in \"B\"" {
		t.Errorf("Read = %v", err)
	}
	if _, err := Read(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Read(missing) = %v, want ErrNotExist", err)
	}
	if err := os.WriteFile(p, []byte("A='x'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if env, err := Read(p); err != nil || !reflect.DeepEqual(env, []string{"A=x"}) {
		t.Errorf("Read = %q, %v", env, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"", "A=1", "# c\nA='x'\nB=\"y\\\"z\"", "A=a\\\nb", "export A=1", "A='", "A=\"\\", "x", "A=1\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		env, err := Parse(strings.NewReader(s))
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Line < 1 || pe.Line > strings.Count(s, "\n")+1 {
				t.Fatalf("Parse(%q) error %v: bad line", s, err)
			}
			return
		}
		for _, kv := range env {
			k, _, ok := strings.Cut(kv, "=")
			if !ok || !validKey(k) || strings.IndexByte(kv, 0) >= 0 {
				t.Fatalf("Parse(%q) gave %q", s, kv)
			}
		}
	})
}
