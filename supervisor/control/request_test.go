package control

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestValidJobName(t *testing.T) {
	for name, want := range map[string]bool{
		"web": true, "a": true, "A-Z_0.9": true, strings.Repeat("x", 64): true, "-lead": true,
		"": false, strings.Repeat("x", 65): false, "we b": false, "web/1": false, "wéb": false, "a\n": false,
	} {
		if got := ValidJobName(name); got != want {
			t.Errorf("ValidJobName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRequestValidate(t *testing.T) {
	many := make([]string, MaxJobs+1)
	for i := range many {
		many[i] = "j" + strings.Repeat("x", i%60) + string(rune('a'+i%26))
	}
	tests := []struct {
		req     Request
		wantErr string // "" means valid
	}{
		{Request{V: 1, Cmd: "status"}, ""},
		{Request{V: 1, Cmd: "status", Jobs: []string{"web", "db"}}, ""},
		{Request{V: 1, Cmd: "start", Jobs: []string{"web"}}, ""},
		{Request{V: 1, Cmd: "logs", Follow: true, Lines: MaxLines}, ""},
		{Request{V: 1, Cmd: "fds", Jobs: []string{"web"}}, ""},
		{Request{V: 1, Cmd: "shutdown"}, ""},
		{Request{V: 1, Cmd: "metrics"}, ""},
		{Request{V: 1, Cmd: "metrics", Jobs: []string{"web"}}, `metrics: takes no job names (got "web")`},
		{Request{Cmd: "status"}, "missing protocol version"},
		{Request{V: 2, Cmd: "status"}, "unsupported protocol version 2"},
		{Request{V: 1}, "missing command"},
		{Request{V: 1, Cmd: "explode"}, `unknown command "explode"`},
		{Request{V: 1, Cmd: "start"}, "start: needs at least one job"},
		{Request{V: 1, Cmd: "reload"}, "reload: needs at least one job"},
		{Request{V: 1, Cmd: "shutdown", Jobs: []string{"web"}}, `shutdown: takes no job names (got "web")`},
		{Request{V: 1, Cmd: "stop", Jobs: []string{"web", "../x"}}, `invalid job name "../x"`},
		{Request{V: 1, Cmd: "stop", Jobs: []string{"web", "web"}}, `job "web" named twice`},
		{Request{V: 1, Cmd: "status", Jobs: many}, "too many jobs: 1025"},
		{Request{V: 1, Cmd: "logs", Lines: -2}, "lines -2 out of range"},
		{Request{V: 1, Cmd: "logs", Lines: MaxLines + 1}, "out of range"},
		{Request{V: 1, Cmd: "status", Follow: true}, "follow is only for logs"},
		{Request{V: 1, Cmd: "status", Lines: 3}, "lines is only for logs"},
		{Request{V: 1, Cmd: "logs", Since: time.Unix(1e9, 0), Stream: "stderr"}, ""},
		{Request{V: 1, Cmd: "logs", Stream: "god"}, `unknown stream "god"`},
		{Request{V: 1, Cmd: "status", Since: time.Unix(1e9, 0)}, "since is only for logs"},
		{Request{V: 1, Cmd: "status", Stream: "stdout"}, "stream is only for logs"},
	}
	for _, tt := range tests {
		err := tt.req.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tt.req, err)
		case tt.wantErr != "" && err == nil:
			t.Errorf("%+v: no error, want %q", tt.req, tt.wantErr)
		case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
			t.Errorf("%+v: error %q, want it to contain %q", tt.req, err, tt.wantErr)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	req, err := DecodeRequest([]byte(`{"v":1,"cmd":"logs","jobs":["web"],"follow":true,"lines":10,"future":{"x":1}}` + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Request{V: 1, Cmd: "logs", Jobs: []string{"web"}, Follow: true, Lines: 10}
	if !reflect.DeepEqual(req, want) {
		t.Fatalf("got %+v, want %+v", req, want)
	}
	for line, wantErr := range map[string]string{
		``:                                    "empty request line",
		`null`:                                "not a JSON object",
		`["status"]`:                          "not a JSON object",
		`{"v":1,"cmd":"status"} {}`:           "malformed request",
		`{"v":1,"cmd":"status"`:               "malformed request",
		`{"v":"1","cmd":"status"}`:            "malformed request",
		`{"v":1,"cmd":"status","jobs":"web"}`: "malformed request",
		`{"v":7,"cmd":"status"}`:              "unsupported protocol version 7",
		`{"v":1,"cmd":"nope"}`:                `unknown command "nope"`,
		`{"v":1,"cmd":"status","jobs":["` + strings.Repeat("a", MaxRequestSize) + `"]}`: "request too large",
	} {
		_, err := DecodeRequest([]byte(line))
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("DecodeRequest(%.60q) = %v, want error containing %q", line, err, wantErr)
		}
	}
}

// FuzzDecodeRequest checks that any line either decodes to a valid request
// that survives a round trip, or gives an error; never a panic.
func FuzzDecodeRequest(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"cmd":"status"}`,
		`{"v":1,"cmd":"status","jobs":["web","db"]}` + "\n",
		`{"v":1,"cmd":"start","jobs":["web"]}`,
		`{"v":1,"cmd":"logs","jobs":["web"],"follow":true,"lines":100}`,
		`{"v":1,"cmd":"shutdown","extra":[1,2,{"a":null}]}`,
		`{"v":1,"cmd":"metrics"}`,
		`{"v":1,"cmd":"metrics","jobs":["web"]}`,
		`{"v":2,"cmd":"status"}`,
		`{"v":1,"cmd":"stop","jobs":["web","web"]}`,
		`{"v":1,"cmd":"stop","jobs":["we\u0000b"]}`,
		`{"v":1e0,"cmd":"status"}`,
		`{"v":1,"cmd":"status","v":2}`,
		`{"V":1,"CMD":"status"}`,
		`[]`, `null`, `"x"`, `{`, ``, "\n", `{"v":1,"cmd":"logs","lines":-5}`,
		`{"v":1,"cmd":"logs","jobs":["web"],"since":"2026-12-07T14:39:25.123456Z","stream":"stderr"}`,
		`{"v":1,"cmd":"logs","since":"2026-12-07T15:39:25+01:00","stream":"stdout","lines":10}`,
		`{"v":1,"cmd":"logs","stream":"god"}`, `{"v":1,"cmd":"status","since":"2026-12-07T14:39:25Z"}`,
		`{"v":1,"cmd":"stop","jobs":["web"],"stream":"stdout"}`, `{"v":1,"cmd":"logs","since":"yesterday"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		req, err := DecodeRequest(line)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("DecodeRequest returned an invalid request %+v: %v", req, err)
		}
		again, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeRequest(again)
		if err != nil {
			t.Fatalf("re-encoded request %s does not decode: %v", again, err)
		}
		if !reflect.DeepEqual(normalize(req), normalize(back)) {
			t.Fatalf("round trip changed the request: %+v -> %+v", req, back)
		}
	})
}

// normalize treats an empty job list like a missing one, as omitempty does.
func normalize(r Request) Request {
	if len(r.Jobs) == 0 {
		r.Jobs = nil
	}
	r.Since = r.Since.UTC() // the same instant; the offset it was written with may differ
	return r
}
