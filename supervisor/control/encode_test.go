package control

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"
)

// marshalLine is what appendResponse must write: json.Marshal's bytes and a newline.
func marshalLine(r Response) ([]byte, error) {
	if r.V == 0 {
		r.V = Version
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// checkEncode compares appendResponse with json.Marshal for r: the same bytes, or both an error.
func checkEncode(t *testing.T, r Response) {
	t.Helper()
	want, werr := marshalLine(r)
	got, err := appendResponse([]byte("x"), r)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%+v: error %v, json.Marshal's %v", r, err, werr)
	}
	if err != nil {
		if string(got) != "x" {
			t.Fatalf("%+v: failed but appended %q", r, got)
		}
		return
	}
	if !bytes.Equal(got[1:], want) {
		t.Fatalf("%+v:\ngot  %s\nwant %s", r, got[1:], want)
	}
}

// oddStrings are texts that encoding/json escapes, and some that it does not.
var oddStrings = []string{
	"", "web", "a<b>&c", `"q" \ /`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029", "é 😀 \ufffd",
	"\xff", "a\xc3", "\xed\xa0\x80", "http=tcp://127.0.0.1:8080", "fail: timeout",
}

func TestAppendResponse(t *testing.T) {
	since := time.Date(2026, 12, 7, 23, 10, 21, 728141664, time.FixedZone("x", 3600))
	for _, s := range oddStrings {
		checkEncode(t, Response{Type: TypeResult, OK: true, Jobs: []JobStatus{{
			Name: s, Loader: s, State: s, Reason: s, Generation: -3, Since: since, Restarts: 7,
			Processes: []ProcessStatus{
				{Pid: 42, Generation: 3, Instance: 2, Started: since, State: s, Escaped: []int{1, -2}, CPUSeconds: 1.25, RSSBytes: 1 << 40},
				{},
			},
			LastExit: s, Check: s, Sockets: []string{s, s}, Status: s, Reload: s, User: s, Next: since.UTC(), Connections: -1,
		}, {}, {Processes: []ProcessStatus{}, Sockets: []string{}}}})
		checkEncode(t, Response{Type: s, Time: since, Job: s, Message: s, Error: s, Version: s, Goroutines: 12})
		checkEncode(t, Response{V: 2, Type: TypeLog, Time: since, Log: &LogLine{Time: since, Job: s, Msg: s, Attrs: map[string]string{s: s, "b": "<"}}})
	}
	checkEncode(t, Response{})
	checkEncode(t, Response{Type: TypeResult, OK: true, Metrics: json.RawMessage(` {"a": "<x>", "b": [1, 2]} `)})
	checkEncode(t, Response{Type: TypeResult, Metrics: json.RawMessage(`{"a":`)}) // invalid: both fail
	for _, f := range []float64{0, 1, -1, 0.1, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20, 1e21, 123456789.125, -2e-300, math.MaxFloat64, math.SmallestNonzeroFloat64, math.Inf(1), math.NaN()} {
		checkEncode(t, Response{Jobs: []JobStatus{{Processes: []ProcessStatus{{CPUSeconds: f}}}}})
	}
	for _, tm := range []time.Time{{}, time.Unix(0, 1), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("odd", 3600+17))} {
		checkEncode(t, Response{Time: tm})
		checkEncode(t, Response{Jobs: []JobStatus{{Since: tm, Next: tm, Processes: []ProcessStatus{{Started: tm}}}}})
	}
}

// FuzzAppendResponse: for any text, numbers and times in a status result and a progress line,
// appendResponse writes what json.Marshal writes, or fails where it fails.
func FuzzAppendResponse(f *testing.F) {
	for i, s := range oddStrings {
		f.Add(s, oddStrings[(i+1)%len(oddStrings)], 4242, 1.25, int64(1700000000), int64(i))
	}
	f.Add("x", "y", -1, 1e-7, int64(-62135596800), int64(0))
	f.Add("x", "y", 0, 1e21, int64(253402300800), int64(999999999))
	f.Fuzz(func(t *testing.T, a, b string, n int, cpu float64, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		checkEncode(t, Response{Type: TypeResult, OK: n%2 == 0, Error: b, Jobs: []JobStatus{{
			Name: a, Loader: b, State: a, Reason: b, Generation: n, Since: tm, Restarts: n,
			Processes: []ProcessStatus{{Pid: n, Generation: n, Instance: n, Started: tm, State: b, Escaped: []int{n}, CPUSeconds: cpu, RSSBytes: int64(n)}},
			LastExit:  a, Check: b, Sockets: []string{a, b}, Status: a, Reload: b, User: a, Next: tm.UTC(), Connections: n,
		}}})
		checkEncode(t, Response{Type: a, Time: tm, Job: a, Message: b, Version: a, Goroutines: n})
	})
}

func BenchmarkAppendResponse(b *testing.B) {
	since := time.Now()
	jobs := make([]JobStatus, 2000)
	for i := range jobs {
		jobs[i] = JobStatus{Name: "s00001", Loader: "/tmp/sf/base/dir/many", State: "run", Generation: 1, Since: since,
			Processes: []ProcessStatus{{Pid: 31440, Generation: 1, Started: since, State: "ready", RSSBytes: 1662976, CPUSeconds: 0.01}}}
	}
	r := Response{Type: TypeResult, OK: true, Jobs: jobs}
	b.Run("append", func(b *testing.B) {
		var buf []byte
		for b.Loop() {
			buf, _ = appendResponse(buf[:0], r)
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			enc.Encode(r)
		}
	})
}
