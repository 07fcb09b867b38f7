package joblog

import (
	"log/slog"
	"strings"
	"testing"
)

// attrsString renders attrs compactly so that table cases can state them
// in one string, types included (s: string, i: int64, f: float64, b: bool).
func attrsString(as []slog.Attr) string {
	var b strings.Builder
	var walk func(prefix string, as []slog.Attr)
	walk = func(prefix string, as []slog.Attr) {
		for _, a := range as {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			k := prefix + a.Key
			switch a.Value.Kind() {
			case slog.KindGroup:
				b.WriteString(k + "{")
				n := b.Len()
				walk(k+".", a.Value.Group())
				if b.Len() == n {
					b.WriteString("}")
				} else {
					b.WriteString(" }")
				}
			case slog.KindString:
				b.WriteString(k + "=s:" + a.Value.String())
			case slog.KindInt64:
				b.WriteString(k + "=i:" + a.Value.String())
			case slog.KindFloat64:
				b.WriteString(k + "=f:" + a.Value.String())
			case slog.KindBool:
				b.WriteString(k + "=b:" + a.Value.String())
			default:
				b.WriteString(k + "=?:" + a.Value.String())
			}
		}
	}
	walk("", as)
	return b.String()
}

func TestParse(t *testing.T) {
	const text = "text" // marker: the line comes back unparsed
	tests := []struct {
		name   string
		format Format
		raw    string
		level  slog.Level
		msg    string // text: raw itself
		attrs  string
	}{
		// JSON
		{"json slog", FormatJSON, `{"time":"2024-01-02T03:04:05Z","level":"WARN","msg":"disk low","free":12,"path":"/var"}`,
			slog.LevelWarn, "disk low", "free=i:12 path=s:/var"},
		{"json level offset", FormatJSON, `{"level":"INFO+2","msg":"m"}`, slog.LevelInfo + 2, "m", ""},
		{"json lvl and message", FormatJSON, `{"lvl":"error","message":"boom","ts":1700000000.5}`, slog.LevelError, "boom", ""},
		{"json severity gcp", FormatJSON, `{"severity":"WARNING","message":"x"}`, slog.LevelWarn, "x", ""},
		{"json fatal", FormatJSON, `{"level":"fatal","msg":"bye"}`, slog.LevelError + 4, "bye", ""},
		{"json trace", FormatJSON, `{"level":"Trace","msg":"t"}`, slog.LevelDebug - 4, "t", ""},
		{"json pino number", FormatJSON, `{"level":30,"time":1,"pid":7,"msg":"hi"}`, slog.LevelInfo, "hi", "pid=i:7"},
		{"json pino 50", FormatJSON, `{"level":50,"msg":"e"}`, slog.LevelError, "e", ""},
		{"json slog number", FormatJSON, `{"level":-4,"msg":"d"}`, slog.LevelDebug, "d", ""},
		{"json unknown level kept", FormatJSON, `{"level":"loud","msg":"m"}`, slog.LevelInfo, "m", "level=s:loud"},
		{"json keys case-insensitive", FormatJSON, `{"Level":"debug","MSG":"m","Time":"x"}`, slog.LevelDebug, "m", ""},
		{"json nested group", FormatJSON, `{"msg":"req","http":{"method":"GET","status":200,"h":{"a":true}}}`,
			slog.LevelInfo, "req", "http{ http.method=s:GET http.status=i:200 http.h{ http.h.a=b:true } }"},
		{"json empty object", FormatJSON, `{"msg":"m","o":{}}`, slog.LevelInfo, "m", "o=s:{}"},
		{"json array kept as text", FormatJSON, `{"msg":"m","a":[1, "two",{"x":[]}]}`, slog.LevelInfo, "m", `a=s:[1, "two",{"x":[]}]`},
		{"json types", FormatJSON, `{"f":1.5,"e":1e3,"neg":-3,"big":123456789012345678901,"huge":1e999,"n":null,"t":false}`,
			slog.LevelInfo, "", "f=f:1.5 e=f:1000 neg=i:-3 big=f:1.2345678901234568e+20 huge=s:1e999 n=s:null t=b:false"},
		{"json escapes", FormatJSON, `{"msg":"a\"b\\c\nd\u00e9\ud83d\ude00\ud800x","k\u0041":"v"}`,
			slog.LevelInfo, "a\"b\\c\nd\u00e9\U0001F600\uFFFDx", "kA=s:v"},
		{"json non-string msg", FormatJSON, `{"msg":42}`, slog.LevelInfo, "42", ""},
		{"json whitespace", FormatJSON, " \t{ \"msg\" : \"m\" , \"k\" : 1 } ", slog.LevelInfo, "m", "k=i:1"},
		{"json empty", FormatJSON, `{}`, slog.LevelInfo, "", ""},
		{"json not object", FormatJSON, `["a"]`, slog.LevelInfo, text, ""},
		{"json truncated", FormatJSON, `{"msg":"half`, slog.LevelInfo, text, ""},
		{"json trailing garbage", FormatJSON, `{"msg":"m"} x`, slog.LevelInfo, text, ""},
		{"json trailing comma", FormatJSON, `{"msg":"m",}`, slog.LevelInfo, text, ""},
		{"json bad number", FormatJSON, `{"n":01}`, slog.LevelInfo, text, ""},
		{"json bad escape", FormatJSON, `{"s":"\x"}`, slog.LevelInfo, text, ""},
		{"json control char", FormatJSON, "{\"s\":\"a\tb\"}", slog.LevelInfo, text, ""},
		{"json plain text", FormatJSON, `panic: runtime error`, slog.LevelInfo, text, ""},
		{"json too deep", FormatJSON, `{"a":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`, slog.LevelInfo, text, ""},
		// logfmt
		{"logfmt slog", FormatLogfmt, `time=2024-01-02T03:04:05Z level=ERROR msg="open failed" path=/x err="no such file"`,
			slog.LevelError, "open failed", "path=s:/x err=s:no such file"},
		{"logfmt escapes", FormatLogfmt, `msg="a \"q\"\n\tz" k="\u00e9"`, slog.LevelInfo, "a \"q\"\n\tz", "k=s:é"},
		{"logfmt bare with equals", FormatLogfmt, `lvl=warn url=/a?b=c empty= n=080`, slog.LevelWarn, "", "url=s:/a?b=c empty=s: n=s:080"},
		{"logfmt numeric level", FormatLogfmt, `level=40 msg=hi`, slog.LevelWarn, "hi", ""},
		{"logfmt unknown level", FormatLogfmt, `level=loud msg=hi`, slog.LevelInfo, "hi", "level=s:loud"},
		{"logfmt dotted keys", FormatLogfmt, `msg=m req.method=GET`, slog.LevelInfo, "m", "req.method=s:GET"},
		{"logfmt prose", FormatLogfmt, `starting server on port=80`, slog.LevelInfo, text, ""},
		{"logfmt unterminated quote", FormatLogfmt, `msg="half`, slog.LevelInfo, text, ""},
		{"logfmt quote then junk", FormatLogfmt, `msg="a"b`, slog.LevelInfo, text, ""},
		{"logfmt bad escape", FormatLogfmt, `msg="\q"`, slog.LevelInfo, text, ""},
		{"logfmt empty key", FormatLogfmt, `=v`, slog.LevelInfo, text, ""},
		{"logfmt empty line", FormatLogfmt, ``, slog.LevelInfo, text, ""},
		// text
		{"text", FormatText, `level=error msg=x`, slog.LevelInfo, text, ""},
		{"text json-looking", FormatText, `{"level":"error"}`, slog.LevelInfo, text, ""},
		{"unknown format is text", Format("yaml"), `{"level":"error"}`, slog.LevelInfo, text, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			level, msg, attrs := Parse(tt.format, tt.raw)
			want := tt.msg
			if want == text {
				want = tt.raw
				if attrs != nil {
					t.Errorf("text line has attrs %v", attrs)
				}
			}
			if level != tt.level {
				t.Errorf("level = %v, want %v", level, tt.level)
			}
			if msg != want {
				t.Errorf("msg = %q, want %q", msg, want)
			}
			if got := attrsString(attrs); got != tt.attrs {
				t.Errorf("attrs = %s\n want %s", got, tt.attrs)
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatText, "text": FormatText, "json": FormatJSON, "logfmt": FormatLogfmt} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("JSON"); err == nil || !strings.Contains(err.Error(), `"JSON"`) {
		t.Errorf("ParseFormat(JSON) error = %v, want one naming the value", err)
	}
}

// TestParseTextAllocs guards the hot path: a text line costs no allocation.
func TestParseTextAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { Parse(FormatText, "plain line") }); n != 0 {
		t.Errorf("Parse text allocates %v times", n)
	}
	if n := testing.AllocsPerRun(100, func() { Parse(FormatJSON, `{"level":"info","msg":"m","k":"v","n":1}`) }); n > 1 {
		t.Errorf("Parse json of 2 attrs allocates %v times, want <= 1", n)
	}
}
