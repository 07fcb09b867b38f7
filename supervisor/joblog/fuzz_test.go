package joblog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// jsonDepth returns the nesting depth of valid JSON text (strings skipped).
func jsonDepth(s string) int {
	depth, deepest, inStr, esc := 0, 0, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// FuzzParse checks that Parse never panics in any format, that a line it
// cannot read comes back whole, and that the JSON reader accepts exactly the
// objects encoding/json accepts and decodes attr values the same way (but
// for invalid UTF-8, which Parse keeps as is).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"level":"warn","msg":"m","k":1}`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"msg":"\ud83d\ude00\ud800\u0041"}`, `{"n":-0.5e+3,"t":true,"f":false}`, `{"level":30}`,
		`{"x":1e999}`, `{"a":"b"`, `[1]`, `{"level":"INFO+2000"}`, `{"k":"\u12"}`,
		`level=info msg="hello \"world\"" a=1 b= c=x=y`, `msg="\xff\u00e9"`, `k="unterminated`,
		`plain text line`, "tab\tsep=1", `=`, `a==b`, `"quoted"=x`, "{\"s\":\"\x01\"}", "\xff\xfe",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		for _, format := range []Format{FormatText, FormatJSON, FormatLogfmt} {
			if l, own, _, _ := parseOwn(format, raw); l == levelUnset || (own && format == FormatText) || (!own && l != slog.LevelInfo) {
				t.Fatalf("parseOwn(%s, %q): level %v own %v", format, raw, l, own)
			}
			level, msg, attrs := Parse(format, raw)
			if attrs == nil && level == slog.LevelInfo && msg == raw {
				continue // unparsed, or parsed to the same thing
			}
			if format == FormatText {
				t.Fatalf("text line changed: %v %q %v", level, msg, attrs)
			}
		}

		_, _, attrs, ok := parseJSON(raw)
		trimmed := strings.TrimLeft(raw, " \t\r\n")
		valid := json.Valid([]byte(raw)) && strings.HasPrefix(trimmed, "{")
		if ok && !valid {
			t.Fatalf("parseJSON accepted invalid JSON %q", raw)
		}
		if !ok && valid && jsonDepth(raw) <= maxJSONDepth {
			t.Fatalf("parseJSON refused valid JSON %q", raw)
		}
		if !ok {
			return
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader([]byte(raw)))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			return // e.g. too deep for encoding/json
		}
		count := map[string]int{}
		for _, a := range attrs {
			count[string([]rune(a.Key))]++
		}
		for _, a := range attrs {
			if count[string([]rune(a.Key))] != 1 || classifyKey(a.Key) != fieldAttr {
				continue
			}
			want, found := m[string([]rune(a.Key))]
			if !found {
				t.Fatalf("attr %q not in encoding/json's decoding of %q", a.Key, raw)
			}
			switch w := want.(type) {
			case string:
				// Parse keeps invalid UTF-8 bytes (slog's handlers escape
				// them); encoding/json turns each into U+FFFD.
				if a.Value.Kind() != slog.KindString || string([]rune(a.Value.String())) != w {
					t.Fatalf("attr %q = %v, encoding/json says %q (line %q)", a.Key, a.Value, w, raw)
				}
			case bool:
				if a.Value.Kind() != slog.KindBool || a.Value.Bool() != w {
					t.Fatalf("attr %q = %v, encoding/json says %v (line %q)", a.Key, a.Value, w, raw)
				}
			case json.Number:
				wf, err := w.Float64()
				var got float64
				switch a.Value.Kind() {
				case slog.KindInt64:
					got = float64(a.Value.Int64())
				case slog.KindFloat64:
					got = a.Value.Float64()
				default:
					if err == nil {
						t.Fatalf("attr %q = %v, encoding/json says number %v", a.Key, a.Value, w)
					}
					continue
				}
				if err != nil || got != wf {
					t.Fatalf("attr %q = %v, encoding/json says %v (line %q)", a.Key, a.Value, w, raw)
				}
			}
		}
	})
}
