// Package envfile reads environment files in the syntax of systemd's EnvironmentFile=, for
// the job property env-file: one KEY=VALUE per line, comments, quotes and backslash
// continuations. It exists so that god reads the files systemd units already use, strictly:
// where systemd warns and skips a bad line, Parse fails with its line number.
package envfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// Error is a syntax error with the line (1-based) it was found on.
type Error struct {
	Line int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// maxSize bounds what Parse reads: an environment file is small, and a huge one (a wrong
// path to a log file) must not grow god.
const maxSize = 1 << 20

// Parse reads assignments from r and returns them as KEY=VALUE items, in file order (a key
// repeated later wins when they are merged). The syntax is systemd's:
//
//   - blank lines and lines whose first non-blank character is # or ; are skipped;
//   - KEY=VALUE, white space around KEY and before VALUE ignored, an optional "export " before KEY;
//     KEY is a shell variable name ([A-Za-z_][A-Za-z0-9_]*);
//   - in VALUE, 'single quotes' keep everything literally (newlines too); "double quotes" keep
//     everything but \" \\ \` \$ (the character) and backslash-newline (nothing); outside
//     quotes a backslash takes the next character literally, backslash-newline continues the
//     value on the next line, and trailing white space is dropped; a # inside a value is kept.
//
// A line without '=', a bad KEY, an unterminated quote or a NUL byte is an *Error.
func Parse(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("larger than %d bytes", maxSize)
	}
	p := parser{s: string(data), line: 1}
	return p.parse()
}

// Read is Parse for the file at path; its errors name the file (and line).
func Read(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "PATH: no such file or directory", still errors.Is fs.ErrNotExist
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	env, err := Parse(bufio.NewReader(f))
	if err != nil {
		var pe *Error
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Line, pe.Msg)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}

type parser struct {
	s    string
	i    int
	line int
}

func (p *parser) errorf(format string, args ...any) error {
	return &Error{Line: p.line, Msg: fmt.Sprintf(format, args...)}
}

// next returns the next byte and advances, counting lines; ok is false at the end.
func (p *parser) next() (byte, bool) {
	if p.i >= len(p.s) {
		return 0, false
	}
	c := p.s[p.i]
	p.i++
	if c == '\n' {
		p.line++
	}
	return c, true
}

func (p *parser) parse() ([]string, error) {
	if strings.IndexByte(p.s, 0) >= 0 {
		p.line = 1 + strings.Count(p.s[:strings.IndexByte(p.s, 0)], "\n")
		return nil, p.errorf("NUL byte")
	}
	var out []string
	for {
		// Start of a line: blanks, blank lines, comments.
		for p.i < len(p.s) && isBlank(p.s[p.i]) {
			p.next()
		}
		if p.i >= len(p.s) {
			return out, nil
		}
		if c := p.s[p.i]; c == '\n' || c == '#' || c == ';' {
			for c, ok := p.next(); ok && c != '\n'; c, ok = p.next() {
			}
			continue
		}
		end := strings.IndexAny(p.s[p.i:], "=\n")
		if end < 0 || p.s[p.i+end] != '=' {
			return nil, p.errorf("no '=' in %.40q", strings.TrimSpace(lineAt(p.s[p.i:])))
		}
		key := strings.TrimRight(p.s[p.i:p.i+end], " \t\r")
		if k, ok := strings.CutPrefix(key, "export"); ok && k != "" && isBlank(k[0]) {
			key = strings.TrimLeft(k, " \t")
		}
		if !validKey(key) {
			return nil, p.errorf("invalid variable name %.40q", key)
		}
		p.i += end + 1
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		out = append(out, key+"="+val)
	}
}

// value reads a VALUE up to the end of its (logical) line and consumes the newline.
func (p *parser) value() (string, error) {
	for p.i < len(p.s) && isBlank(p.s[p.i]) {
		p.next()
	}
	var b strings.Builder
	keep := 0 // length of b up to its last character that is not trailing unquoted white space
	for {
		c, ok := p.next()
		if !ok || c == '\n' {
			return b.String()[:keep], nil
		}
		switch c {
		case '\\':
			d, ok := p.next()
			if !ok {
				return b.String()[:keep], nil
			}
			if d == '\n' {
				continue // line continuation
			}
			b.WriteByte(d)
		case '\'':
			start := p.line
			j := strings.IndexByte(p.s[p.i:], '\'')
			if j < 0 {
				p.line = start
				return "", p.errorf("unterminated single quote")
			}
			for range j {
				c, _ := p.next()
				b.WriteByte(c)
			}
			p.next() // the closing quote
		case '"':
			start := p.line
			for {
				d, ok := p.next()
				if !ok {
					p.line = start
					return "", p.errorf("unterminated double quote")
				}
				if d == '"' {
					break
				}
				if d == '\\' {
					e, ok := p.next()
					if !ok {
						p.line = start
						return "", p.errorf("unterminated double quote")
					}
					switch e {
					case '"', '\\', '`', '$':
						b.WriteByte(e)
					case '\n':
					default:
						b.WriteByte('\\')
						b.WriteByte(e)
					}
					continue
				}
				b.WriteByte(d)
			}
		default:
			b.WriteByte(c)
			if isBlank(c) {
				continue
			}
		}
		keep = b.Len()
	}
}

// lineAt is s up to its first newline.
func lineAt(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// validKey: a shell variable name, as systemd requires for EnvironmentFile=.
func validKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
