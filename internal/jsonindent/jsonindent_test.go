package jsonindent

import (
	"bytes"
	"encoding/json"
	"testing"
)

var seeds = []string{
	`[]`, `{}`, `null`, `true`, `-1.5e+7`, `"a\"b\\"`,
	`[{"name":"web","processes":[{"pid":1,"escaped":[]}],"sockets":[],"x":{}},{"a":[[],[1,[2,{}]]]}]`,
	`{"s":"\u003c\u0026 \"quoted\" \\ ]},:[{ \ud83d\ude00 é \n","n":-0.000001,"e":1e21,"t":true,"f":false,"z":null}`,
	" [ 1 ,\t2 ,\r\n { \"a\" : [ ] } ] ",
	`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`,
}

// check compares Append with json.Indent for valid src: the same bytes as json.Indent writes for
// src compacted (json.Indent keeps white space at the end of its input; Append drops it).
func check(t *testing.T, src []byte) {
	t.Helper()
	var compact, want bytes.Buffer
	if err := json.Compact(&compact, src); err != nil {
		t.Fatalf("%q: not valid JSON: %v", src, err)
	}
	if err := json.Indent(&want, compact.Bytes(), "", "  "); err != nil {
		t.Fatalf("%q: %v", src, err)
	}
	if got := Append([]byte("x"), src); !bytes.Equal(got[1:], want.Bytes()) || got[0] != 'x' {
		t.Fatalf("%q:\ngot  %q\nwant %q", src, got, "x"+want.String())
	}
}

func TestAppend(t *testing.T) {
	for _, s := range seeds {
		check(t, []byte(s))
	}
	// What god status --json printed before: the value encoded again by an indenting Encoder.
	v := []map[string]any{{"name": "a<b>&c", "p": []any{}, "q": map[string]any{}, "n": 1.25}}
	compact, _ := json.Marshal(v)
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetIndent("", "  ")
	enc.Encode(v)
	if got := append(Append(nil, compact), '\n'); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("got\n%s\nwant\n%s", got, want.Bytes())
	}
}

// FuzzAppend: for valid JSON Append writes what json.Indent does; for any input it does not
// panic.
func FuzzAppend(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`["unterminated`))
	f.Add([]byte(`]]]}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		out := Append(nil, src)
		if !json.Valid(src) {
			return
		}
		check(t, src)
		if !json.Valid(out) {
			t.Fatalf("%q: output %q is not valid JSON", src, out)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	item := `{"name":"s00001","loader":"/tmp/sf/base/dir/many","state":"run","generation":1,"processes":[{"pid":31440,"gen":1,"instance":0,"started":"2026-12-07T23:10:21.728141664Z","state":"ready","rss_bytes":1662976}],"since":"2026-12-07T23:10:21.731264335Z","restarts":0}`
	src := []byte("[" + item + ",")
	for range 1998 {
		src = append(src, item+","...)
	}
	src = append(src, item+"]"...)
	b.SetBytes(int64(len(src)))
	var dst []byte
	b.Run("Append", func(b *testing.B) {
		for b.Loop() {
			dst = Append(dst[:0], src)
		}
	})
	b.Run("json.Indent", func(b *testing.B) {
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			json.Indent(&out, src, "", "  ")
		}
	})
}
