package control

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// appendResponse appends r as encoding/json encodes it (json.Marshal: the same fields, order,
// omissions and escaping, byte for byte) followed by "\n", with V set to Version when zero.
//
// A status of thousands of jobs was encoded by reflection at about 3 µs a job, and grew the
// heap that god's GC then scanned; written out by hand the jobs cost a fraction of that. The
// rare parts (a log line, the metrics, text that needs escaping) go through encoding/json
// itself, so their bytes are its bytes. encode_test.go checks the whole against json.Marshal,
// also under fuzzing.
func appendResponse(b []byte, r Response) ([]byte, error) {
	if r.V == 0 {
		r.V = Version
	}
	start := len(b)
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(r.V), 10)
	b = append(b, `,"type":`...)
	b = appendString(b, r.Type)
	var err error
	if !r.Time.IsZero() {
		b = append(b, `,"time":`...)
		if b, err = appendTime(b, r.Time); err != nil {
			return b[:start], err
		}
	}
	if r.Job != "" {
		b = append(b, `,"job":`...)
		b = appendString(b, r.Job)
	}
	if r.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, r.Message)
	}
	if r.Log != nil {
		b = append(b, `,"log":`...)
		if b, err = appendMarshal(b, r.Log); err != nil {
			return b[:start], err
		}
	}
	b = append(b, `,"ok":`...)
	b = strconv.AppendBool(b, r.OK)
	if r.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, r.Error)
	}
	if len(r.Jobs) > 0 {
		b = append(b, `,"jobs":[`...)
		for i := range r.Jobs {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendJob(b, &r.Jobs[i]); err != nil {
				return b[:start], err
			}
		}
		b = append(b, ']')
	}
	if r.Version != "" {
		b = append(b, `,"version":`...)
		b = appendString(b, r.Version)
	}
	if r.Goroutines != 0 {
		b = append(b, `,"goroutines":`...)
		b = strconv.AppendInt(b, int64(r.Goroutines), 10)
	}
	if len(r.Metrics) > 0 {
		b = append(b, `,"metrics":`...)
		if b, err = appendMarshal(b, r.Metrics); err != nil {
			return b[:start], err
		}
	}
	return append(b, "}\n"...), nil
}

// appendJob appends j as encoding/json encodes a JobStatus.
func appendJob(b []byte, j *JobStatus) ([]byte, error) {
	var err error
	b = append(b, `{"name":`...)
	b = appendString(b, j.Name)
	b = append(b, `,"loader":`...)
	b = appendString(b, j.Loader)
	b = append(b, `,"state":`...)
	b = appendString(b, j.State)
	if j.Reason != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, j.Reason)
	}
	b = append(b, `,"generation":`...)
	b = strconv.AppendInt(b, int64(j.Generation), 10)
	if len(j.Processes) > 0 {
		b = append(b, `,"processes":[`...)
		for i := range j.Processes {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendProcess(b, &j.Processes[i]); err != nil {
				return b, err
			}
		}
		b = append(b, ']')
	}
	if !j.Since.IsZero() {
		b = append(b, `,"since":`...)
		if b, err = appendTime(b, j.Since); err != nil {
			return b, err
		}
	}
	b = append(b, `,"restarts":`...)
	b = strconv.AppendInt(b, int64(j.Restarts), 10)
	b = appendOmitEmpty(b, `,"last_exit":`, j.LastExit)
	b = appendOmitEmpty(b, `,"check":`, j.Check)
	if len(j.Sockets) > 0 {
		b = append(b, `,"sockets":[`...)
		for i, s := range j.Sockets {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, s)
		}
		b = append(b, ']')
	}
	b = appendOmitEmpty(b, `,"status":`, j.Status)
	b = appendOmitEmpty(b, `,"reload":`, j.Reload)
	b = appendOmitEmpty(b, `,"user":`, j.User)
	if !j.Next.IsZero() {
		b = append(b, `,"next":`...)
		if b, err = appendTime(b, j.Next); err != nil {
			return b, err
		}
	}
	if j.Connections != 0 {
		b = append(b, `,"connections":`...)
		b = strconv.AppendInt(b, int64(j.Connections), 10)
	}
	return append(b, '}'), nil
}

// appendOmitEmpty appends key and val unless val is empty, as encoding/json does a string field
// tagged omitempty; key holds the comma and the colon.
func appendOmitEmpty(b []byte, key, val string) []byte {
	if val == "" {
		return b
	}
	return appendString(append(b, key...), val)
}

// appendProcess appends p as encoding/json encodes a ProcessStatus.
func appendProcess(b []byte, p *ProcessStatus) ([]byte, error) {
	var err error
	b = append(b, `{"pid":`...)
	b = strconv.AppendInt(b, int64(p.Pid), 10)
	b = append(b, `,"gen":`...)
	b = strconv.AppendInt(b, int64(p.Generation), 10)
	b = append(b, `,"instance":`...)
	b = strconv.AppendInt(b, int64(p.Instance), 10)
	b = append(b, `,"started":`...)
	if b, err = appendTime(b, p.Started); err != nil {
		return b, err
	}
	b = appendOmitEmpty(b, `,"state":`, p.State)
	if len(p.Escaped) > 0 {
		b = append(b, `,"escaped":[`...)
		for i, pid := range p.Escaped {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(pid), 10)
		}
		b = append(b, ']')
	}
	if p.CPUSeconds != 0 {
		b = append(b, `,"cpu_seconds":`...)
		if b, err = appendFloat(b, p.CPUSeconds); err != nil {
			return b, err
		}
	}
	if p.RSSBytes != 0 {
		b = append(b, `,"rss_bytes":`...)
		b = strconv.AppendInt(b, p.RSSBytes, 10)
	}
	return append(b, '}'), nil
}

// appendString appends s as a JSON string. Text of printable ASCII that needs no escape (job
// names, states, paths: nearly all of it) is copied; anything else is left to encoding/json,
// with its escaping of HTML characters, control characters, U+2028 and U+2029 and invalid UTF-8.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			out, _ := json.Marshal(s) // a string always encodes
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendTime appends t as time.Time's MarshalJSON does (RFC 3339 with nanoseconds, quoted), and
// fails like it for a year it cannot write.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	out, err := t.AppendText(append(b, '"'))
	if err != nil {
		return b, fmt.Errorf("json: error calling MarshalJSON for type time.Time: Time.MarshalJSON: %w", err)
	}
	return append(out, '"'), nil
}

// appendFloat appends f as encoding/json writes a float64: the shortest form that reads back the
// same, in exponent form only below 1e-6 or from 1e21 on, with a one-digit negative exponent
// not padded (1e-7, not 1e-07). NaN and the infinities are errors, as there.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, fmt.Errorf("json: unsupported value: %s", strconv.FormatFloat(f, 'g', -1, 64))
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

// appendMarshal appends v as json.Marshal encodes it.
func appendMarshal(b []byte, v any) ([]byte, error) {
	out, err := json.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, out...), nil
}
