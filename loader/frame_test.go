package loader

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	msgs := []Message{
		nil,
		{},
		{"godv1", "web", "db"},
		{"web", "check", "4242"},
		{"", "quote\"back\\slash", "new\nline", "tab\t", "<html>&", "ünïcödé", "\x00nul"},
	}
	var buf bytes.Buffer
	for _, m := range msgs {
		if err := writeMessage(&buf, m); err != nil {
			t.Fatalf("writeMessage(%q): %v", m, err)
		}
	}
	if got := strings.Count(buf.String(), "\n"); got != len(msgs) {
		t.Fatalf("%d newlines for %d messages: %q", got, len(msgs), buf.String())
	}
	if !strings.HasPrefix(buf.String(), "[]\n[]\n") {
		t.Fatalf("nil and empty messages not written as []: %q", buf.String())
	}
	r := newMessageReader(&buf)
	for _, want := range msgs {
		got, err := r.Read()
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(got) != len(want) {
			t.Fatalf("Read = %q, want %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("Read = %q, want %q", got, want)
			}
		}
	}
	if _, err := r.Read(); err != io.EOF {
		t.Fatalf("Read at end = %v, want io.EOF", err)
	}
}

// TestReaderNullIsEmpty: a v0.1 loader (the watchgod package of v0.1) answered a property whose
// func() []string returned nil with the JSON null; such a line reads as the empty message, so
// the property (or hook reply) takes its default, as it did under v0.1's god.
func TestReaderNullIsEmpty(t *testing.T) {
	r := newMessageReader(strings.NewReader("null\n  null\r\n\tnull \n[\"after\"]\n"))
	for i := range 3 {
		m, err := r.Read()
		if err != nil || m == nil || len(m) != 0 {
			t.Fatalf("line %d: Read = %#v, %v; want an empty message", i, m, err)
		}
	}
	if m, err := r.Read(); err != nil || len(m) != 1 || m[0] != "after" {
		t.Fatalf("after the nulls: Read = %q, %v", m, err)
	}
}

func TestReaderRejectsGarbage(t *testing.T) {
	bad := []string{
		``,
		`   `,
		`nul`,
		`null x`,
		`nullnull`,
		`"a"`,
		`{}`,
		`[null]`,
		`["a",null]`,
		`[1]`,
		`["a",true]`,
		`[["a"]]`,
		`[{"a":"b"}]`,
		`["a"] x`,
		`["a"]]`,
		`["a"][]`,
		`["a",]`,
		`[`,
		`hello world`,
		"[\"a\"]\x00",
	}
	var in strings.Builder
	for _, line := range bad {
		in.WriteString(line + "\n")
	}
	in.WriteString(`["still","fine"]` + "\n")
	r := newMessageReader(strings.NewReader(in.String()))
	for _, line := range bad {
		m, err := r.Read()
		var fe *frameError
		if !errors.As(err, &fe) {
			t.Fatalf("Read(%q) = %q, %v; want *frameError", line, m, err)
		}
		if fe.Line != line {
			t.Errorf("frameError.Line = %q, want %q", fe.Line, line)
		}
		if !strings.Contains(fe.Error(), "bad message") {
			t.Errorf("frameError.Error() = %q", fe.Error())
		}
	}
	m, err := r.Read()
	if err != nil || len(m) != 2 || m[1] != "fine" {
		t.Fatalf("Read after bad lines = %q, %v; want [still fine]", m, err)
	}
}

func TestReaderAcceptsWhitespaceAndCRLF(t *testing.T) {
	r := newMessageReader(strings.NewReader(" [ \"a\" , \"b\" ] \r\n[]\n"))
	m, err := r.Read()
	if err != nil || len(m) != 2 || m[0] != "a" || m[1] != "b" {
		t.Fatalf("Read = %q, %v", m, err)
	}
	m, err = r.Read()
	if err != nil || m == nil || len(m) != 0 {
		t.Fatalf("Read [] = %#v, %v; want empty non-nil", m, err)
	}
}

func TestReaderLongLines(t *testing.T) {
	// A message of exactly maxMessage bytes is fine.
	body := `["` + strings.Repeat("x", maxMessage-4) + `"]`
	r := newMessageReader(strings.NewReader(body + "\n[\"next\"]\n"))
	m, err := r.Read()
	if err != nil || len(m) != 1 || len(m[0]) != maxMessage-4 {
		t.Fatalf("Read of a maxMessage line: len %d, %v", len(m), err)
	}
	if m, err = r.Read(); err != nil || m[0] != "next" {
		t.Fatalf("Read after it = %q, %v", m, err)
	}

	// One byte more is errTooLong, and the messageReader stays failed.
	body = `["` + strings.Repeat("x", maxMessage-3) + `"]`
	r = newMessageReader(strings.NewReader(body + "\n[\"next\"]\n"))
	if _, err := r.Read(); !errors.Is(err, errTooLong) {
		t.Fatalf("Read of a maxMessage+1 line = %v, want errTooLong", err)
	}
	if _, err := r.Read(); !errors.Is(err, errTooLong) {
		t.Fatalf("second Read = %v, want errTooLong again", err)
	}
}

// endless is a stream of x without a newline that counts what was read.
type endless struct{ n int }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.n += len(p)
	if e.n > 100*maxMessage {
		return 0, errors.New("reader did not stop at maxMessage")
	}
	return len(p), nil
}

func TestReaderFloodWithoutNewline(t *testing.T) {
	src := &endless{}
	r := newMessageReader(src)
	if _, err := r.Read(); !errors.Is(err, errTooLong) {
		t.Fatalf("Read = %v, want errTooLong", err)
	}
	if src.n > maxMessage+2*readBufSize {
		t.Fatalf("read %d bytes before giving up, want about %d", src.n, maxMessage)
	}
}

func TestReaderUnterminatedLine(t *testing.T) {
	r := newMessageReader(strings.NewReader(`["a"]` + "\n" + `["b"]`))
	if m, err := r.Read(); err != nil || m[0] != "a" {
		t.Fatalf("Read = %q, %v", m, err)
	}
	if _, err := r.Read(); err != io.ErrUnexpectedEOF {
		t.Fatalf("Read of unterminated line = %v, want io.ErrUnexpectedEOF", err)
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"", "\n", "[]\n", `["godv1","a"]` + "\n", `["a",null]` + "\n", `[1,2]` + "\n",
		`["\u0000\ud800"]` + "\n", "[\"a\"]\n[\"b\"]\n", `["a"`, `[]]` + "\n", "\xff\xfe\n",
		`["a"] ["b"]` + "\n", " [ ] \r\n", "null\n", " null \r\n", "nul\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Each Read that returns a message or a *frameError consumes one line.
		lines := bytes.SplitAfter(data, []byte("\n"))
		r := newMessageReader(bytes.NewReader(data))
		for i := 0; i < len(lines); i++ {
			m, err := r.Read()
			var fe *frameError
			switch {
			case err == nil:
				if n := len(lines[i]) - 1; lines[i][n] != '\n' || n > maxMessage {
					t.Fatalf("message %q from line %q", m, lines[i])
				}
				var buf bytes.Buffer
				if err := writeMessage(&buf, m); err != nil {
					t.Fatalf("writeMessage(%q): %v", m, err)
				}
				again, err := newMessageReader(&buf).Read()
				if err != nil || len(again) != len(m) {
					t.Fatalf("round trip of %q: %q, %v", m, again, err)
				}
			case errors.As(err, &fe):
				if len(fe.Line) > frameLogMax {
					t.Fatalf("frameError.Line has %d bytes", len(fe.Line))
				}
			default:
				return
			}
		}
		if _, err := r.Read(); err == nil {
			t.Fatalf("message after the last line of %q", data)
		}
	})
}

func TestReaderNeverReturnsOverlongMessage(t *testing.T) {
	// FuzzReader's inputs are small; this checks the bound with a long line of
	// many short strings, which is valid JSON apart from its length.
	var b strings.Builder
	b.WriteString("[")
	for b.Len() < maxMessage+10 {
		b.WriteString(`"ab",`)
	}
	b.WriteString(`"z"]` + "\n")
	if _, err := newMessageReader(strings.NewReader(b.String())).Read(); !errors.Is(err, errTooLong) {
		t.Fatalf("Read = %v, want errTooLong", err)
	}
}
