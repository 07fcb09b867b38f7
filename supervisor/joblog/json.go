package joblog

import (
	"log/slog"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxJSONDepth bounds the nesting of objects and arrays in a JSON line. The
// parser recurses, so the bound keeps a hostile line from using deep stack;
// real log lines are nowhere near it.
const maxJSONDepth = 32

// jsonParser reads one JSON value from s at i. It is a small hand-written
// scanner instead of encoding/json because a log line is parsed on the hot
// path: strings without escapes are slices of the line (no copy), the order
// of keys is kept, and no reflection or map is involved. It accepts exactly
// the JSON that encoding/json's Valid accepts (fuzzed against it), up to
// maxJSONDepth.
type jsonParser struct {
	s string
	i int
}

// parseJSON implements Parse for FormatJSON; ok is false when raw is not one
// JSON object.
func parseJSON(raw string) (level slog.Level, msg string, attrs []slog.Attr, ok bool) {
	p := jsonParser{s: raw}
	level = levelUnset // Parse makes it Info
	p.ws()
	if !p.eat('{') {
		return 0, "", nil, false
	}
	p.ws()
	if p.eat('}') {
		return level, "", nil, p.end()
	}
	for {
		p.ws()
		key, ok := p.str(true)
		if !ok {
			return 0, "", nil, false
		}
		p.ws()
		if !p.eat(':') {
			return 0, "", nil, false
		}
		p.ws()
		start := p.i
		kind := classifyKey(key)
		v, isStr, ok := p.value(1, kind != fieldTime)
		if !ok {
			return 0, "", nil, false
		}
		switch kind {
		case fieldLevel:
			var l slog.Level
			var known bool
			switch v.Kind() {
			case slog.KindString:
				l, known = levelFromText(v.String())
			case slog.KindInt64:
				l, known = levelFromNumber(float64(v.Int64()))
			case slog.KindFloat64:
				l, known = levelFromNumber(v.Float64())
			}
			if known {
				level = l
			} else {
				attrs = append(attrs, slog.Attr{Key: key, Value: v})
			}
		case fieldMsg:
			if isStr {
				msg = v.String()
			} else {
				msg = raw[start:p.i]
			}
		case fieldAttr:
			if attrs == nil {
				attrs = make([]slog.Attr, 0, 8)
			}
			attrs = append(attrs, slog.Attr{Key: key, Value: v})
		}
		p.ws()
		if p.eat('}') {
			return level, msg, attrs, p.end()
		}
		if !p.eat(',') {
			return 0, "", nil, false
		}
	}
}

// value reads any JSON value. With keep false it only validates (for arrays
// and dropped keys), so that nothing is allocated for values not kept.
// isStr reports a JSON string, so that callers can tell "1" from 1.
func (p *jsonParser) value(depth int, keep bool) (v slog.Value, isStr, ok bool) {
	if p.i >= len(p.s) {
		return v, false, false
	}
	switch c := p.s[p.i]; {
	case c == '"':
		s, ok := p.str(keep)
		return slog.StringValue(s), true, ok
	case c == '{':
		return p.object(depth+1, keep)
	case c == '[':
		return p.array(depth+1, keep)
	case c == '-' || ('0' <= c && c <= '9'):
		return p.number(keep)
	case p.lit("true"):
		return slog.BoolValue(true), false, true
	case p.lit("false"):
		return slog.BoolValue(false), false, true
	case p.lit("null"):
		return slog.StringValue("null"), false, true
	}
	return v, false, false
}

// object reads a nested object into a group; keys keep their order and no
// key is special below the top level.
func (p *jsonParser) object(depth int, keep bool) (v slog.Value, isStr, ok bool) {
	if depth > maxJSONDepth {
		return v, false, false
	}
	p.i++ // '{'
	p.ws()
	if p.eat('}') {
		return slog.StringValue("{}"), false, true
	}
	var attrs []slog.Attr
	for {
		p.ws()
		key, ok := p.str(keep)
		if !ok {
			return v, false, false
		}
		p.ws()
		if !p.eat(':') {
			return v, false, false
		}
		p.ws()
		val, _, ok := p.value(depth, keep)
		if !ok {
			return v, false, false
		}
		if keep {
			attrs = append(attrs, slog.Attr{Key: key, Value: val})
		}
		p.ws()
		if p.eat('}') {
			return slog.GroupValue(attrs...), false, true
		}
		if !p.eat(',') {
			return v, false, false
		}
	}
}

// array validates an array and keeps its JSON text: slog has no list kind
// that every handler prints well, and the text is what the job wrote.
func (p *jsonParser) array(depth int, keep bool) (v slog.Value, isStr, ok bool) {
	if depth > maxJSONDepth {
		return v, false, false
	}
	start := p.i
	p.i++ // '['
	p.ws()
	if !p.eat(']') {
		for {
			p.ws()
			if _, _, ok := p.value(depth, false); !ok {
				return v, false, false
			}
			p.ws()
			if p.eat(']') {
				break
			}
			if !p.eat(',') {
				return v, false, false
			}
		}
	}
	return slog.StringValue(p.s[start:p.i]), false, true
}

// number reads a JSON number: int64 when it has no fraction or exponent and
// fits, float64 when finite, else its text (1e999 is valid JSON).
func (p *jsonParser) number(keep bool) (v slog.Value, isStr, ok bool) {
	start := p.i
	p.eat('-')
	switch {
	case p.eat('0'):
	case p.digits() > 0:
	default:
		return v, false, false
	}
	integral := true
	if p.eat('.') {
		integral = false
		if p.digits() == 0 {
			return v, false, false
		}
	}
	if p.eat('e') || p.eat('E') {
		integral = false
		if !p.eat('+') {
			p.eat('-')
		}
		if p.digits() == 0 {
			return v, false, false
		}
	}
	if !keep {
		return v, false, true
	}
	text := p.s[start:p.i]
	if integral {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return slog.Int64Value(n), false, true
		}
	}
	if f, err := strconv.ParseFloat(text, 64); err == nil {
		return slog.Float64Value(f), false, true
	}
	return slog.StringValue(text), false, true
}

// digits skips decimal digits and says how many there were.
func (p *jsonParser) digits() int {
	start := p.i
	for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// str reads a JSON string at p.i. Without escapes the result is a slice of
// the line; with escapes it is decoded into a new string (when keep). Lone
// surrogates in \u escapes become U+FFFD, as encoding/json does.
func (p *jsonParser) str(keep bool) (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return p.s[start : p.i-1], true
		case c == '\\':
			return p.strEscaped(start, keep)
		case c < 0x20:
			return "", false
		}
		p.i++
	}
	return "", false
}

// strEscaped continues str from the first backslash, decoding escapes.
func (p *jsonParser) strEscaped(start int, keep bool) (string, bool) {
	var b []byte
	if keep {
		b = make([]byte, 0, len(p.s)-start)
		b = append(b, p.s[start:p.i]...)
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return string(b), true
		case c < 0x20:
			return "", false
		case c != '\\':
			b = appendIf(b, keep, c)
			p.i++
			continue
		}
		p.i++ // '\\'
		if p.i >= len(p.s) {
			return "", false
		}
		e := p.s[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			b = appendIf(b, keep, e)
		case 'b':
			b = appendIf(b, keep, '\b')
		case 'f':
			b = appendIf(b, keep, '\f')
		case 'n':
			b = appendIf(b, keep, '\n')
		case 'r':
			b = appendIf(b, keep, '\r')
		case 't':
			b = appendIf(b, keep, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low one is one
				// rune; anything else leaves U+FFFD and is read again.
				dec, save := utf8.RuneError, p.i
				if p.eat('\\') && p.eat('u') {
					if r2, ok := p.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							dec, save = d, p.i
						}
					}
				}
				r, p.i = dec, save
			}
			if keep {
				b = utf8.AppendRune(b, r)
			}
		default:
			return "", false
		}
	}
	return "", false
}

// appendIf appends c only when the caller keeps the decoded string.
func appendIf(b []byte, keep bool, c byte) []byte {
	if keep {
		return append(b, c)
	}
	return b
}

// hex4 reads the four hex digits of a \u escape.
func (p *jsonParser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}

// ws skips JSON whitespace.
func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// eat consumes c if it is next.
func (p *jsonParser) eat(c byte) bool {
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// lit consumes the literal word if it is next.
func (p *jsonParser) lit(word string) bool {
	if len(p.s)-p.i >= len(word) && p.s[p.i:p.i+len(word)] == word {
		p.i += len(word)
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (p *jsonParser) end() bool {
	p.ws()
	return p.i == len(p.s)
}
