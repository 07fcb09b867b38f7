package joblog

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Clean makes text from god or a job safe to print on a terminal: control characters (escape
// sequences, newlines that would fake extra lines) are shown escaped, as \x1b or \n, and bytes
// that are not UTF-8 become U+FFFD. It exists once, here, for `god logs` and the log files alike.
func Clean(s string) string {
	if isClean(s) {
		return s
	}
	return string(AppendClean(nil, s))
}

// isClean is Clean's fast path: most lines hold nothing to escape and cost no copy. Printable
// ASCII is checked a byte at a time; the runes are decoded only from the first byte above it.
func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		} else if c >= utf8.RuneSelf {
			return isCleanRunes(s[i:])
		}
	}
	return true
}

// isCleanRunes is isClean for text that is not all ASCII.
func isCleanRunes(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}

// AppendClean appends Clean(s) to dst without an intermediate string, for writers that format
// many lines into one buffer (the log files).
func AppendClean(dst []byte, s string) []byte {
	if isClean(s) {
		return append(dst, s...)
	}
	for _, r := range s {
		switch {
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '\t':
			dst = append(dst, `\t`...)
		case r == '\r':
			dst = append(dst, `\r`...)
		case unicode.IsControl(r):
			dst = append(dst, `\x`...)
			if r < 0x10 {
				dst = append(dst, '0')
			}
			dst = strconv.AppendInt(dst, int64(r), 16)
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return dst
}
