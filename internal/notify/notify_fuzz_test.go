package notify

import (
	"bytes"
	"sort"
	"strings"
	"testing"
)

// FuzzParseNotify checks that any payload a job can send either fails or
// yields fields that obey the limits, and that those fields, written back
// out, parse to the same message.
func FuzzParseNotify(f *testing.F) {
	for _, s := range []string{
		"READY=1",
		"READY=1\n",
		"STATUS=serving 12 clients\n",
		"MAINPID=4242\nREADY=1",
		"RELOADING=1\nMONOTONIC_USEC=123456789\n",
		"EXTEND_TIMEOUT_USEC=5000000\n", "FDSTOREREMOVE=1\nFDNAME=db\n",
		"STOPPING=1\nSTATUS=bye",
		"WATCHDOG=1", "WATCHDOG=trigger",
		"FDSTORE=1\nFDNAME=conn",
		"ERRNO=2\nSTATUS=failed",
		"X_UNKNOWN=é",
		"", "\n", "=", "READY", "ready=1", "1X=2", "READY=1\x00", "STATUS=\xff\xfe",
		"MAINPID=-1", "MAINPID=99999999999", "FDNAME=a:b",
		"\x00\x01garbage\n\n==",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := Parse(payload)
		if err != nil {
			if m.Fields != nil {
				t.Fatalf("error %v with fields %v", err, m.Fields)
			}
			return
		}
		if len(payload) == 0 || len(payload) > notifyMaxPayload || bytes.IndexByte(payload, 0) >= 0 {
			t.Fatalf("accepted a payload that breaks the limits: %q", payload)
		}
		keys := make([]string, 0, len(m.Fields))
		for k, v := range m.Fields {
			if !notifyValidKey(k) || len(v) > notifyMaxValue || strings.ContainsAny(v, "\n\x00") {
				t.Fatalf("accepted field %q=%q", k, v)
			}
			keys = append(keys, k)
		}
		if m.Ready != (m.Fields["READY"] == "1") || m.Status != m.Fields["STATUS"] {
			t.Fatalf("typed fields disagree with Fields: %+v", m)
		}
		sort.Strings(keys)
		var out bytes.Buffer
		for _, k := range keys {
			out.WriteString(k + "=" + m.Fields[k] + "\n")
		}
		again, err := Parse(out.Bytes())
		if err != nil {
			t.Fatalf("re-encoded %q: %v", out.Bytes(), err)
		}
		if again.Ready != m.Ready || again.Status != m.Status || again.MainPid != m.MainPid ||
			again.FdName != m.FdName || again.MonotonicUsec != m.MonotonicUsec || len(again.Fields) != len(m.Fields) {
			t.Fatalf("re-encoded message differs:\n%+v\n%+v", m, again)
		}
	})
}
