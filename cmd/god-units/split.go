package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// splitWords splits a unit-file value into words the way systemd does for ExecStart=,
// Environment= and the other list settings: words are separated by whitespace, "double" and
// 'single' quoted parts keep their spaces, and C-style backslash escapes (\n, \t, \\, \", \',
// \s, \xHH, \NNN) are decoded inside and outside quotes. An unterminated quote or a trailing
// backslash is an error, because systemd refuses such a line too.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote byte // 0, '"' or '\''
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			r, n, err := unescape(s[i+1:])
			if err != nil {
				return nil, fmt.Errorf("at byte %d: %w", i, err)
			}
			cur.WriteString(r)
			inWord = true
			i += n
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
			inWord = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// unescape decodes the C-style escape that follows a backslash (rest starts after it), as
// systemd's cunescape does, and says how many bytes of rest it used.
func unescape(rest string) (string, int, error) {
	if rest == "" {
		return "", 0, errors.New("trailing backslash")
	}
	switch c := rest[0]; c {
	case 'a':
		return "\a", 1, nil
	case 'b':
		return "\b", 1, nil
	case 'f':
		return "\f", 1, nil
	case 'n':
		return "\n", 1, nil
	case 'r':
		return "\r", 1, nil
	case 't':
		return "\t", 1, nil
	case 'v':
		return "\v", 1, nil
	case 's':
		return " ", 1, nil
	case '\\', '"', '\'', ' ', '$', ';':
		return string(c), 1, nil
	case '\n':
		return " ", 1, nil // a continuation line that reached us: a word break in systemd too
	case 'x':
		if len(rest) < 3 {
			return "", 0, errors.New(`short \x escape`)
		}
		n, err := strconv.ParseUint(rest[1:3], 16, 8)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf(`bad \x escape %q`, rest[:3])
		}
		return string([]byte{byte(n)}), 3, nil
	case '0', '1', '2', '3', '4', '5', '6', '7':
		if len(rest) < 3 {
			return "", 0, errors.New("short octal escape")
		}
		n, err := strconv.ParseUint(rest[:3], 8, 8)
		if err != nil || n == 0 {
			return "", 0, fmt.Errorf("bad octal escape %q", rest[:3])
		}
		return string([]byte{byte(n)}), 3, nil
	default:
		return "", 0, fmt.Errorf(`unknown escape \%c`, c)
	}
}

// timeUnits are systemd's time span units (systemd.time(7)); a unit is read as a whole run of
// letters after its number.
var timeUnits = map[string]time.Duration{
	"us": time.Microsecond, "usec": time.Microsecond, "µs": time.Microsecond,
	"ms": time.Millisecond, "msec": time.Millisecond,
	"s": time.Second, "sec": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hr": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
}

// errInfinity is what parseTimespan returns for "infinity", which god's millisecond properties
// cannot say; the caller decides what to do with it.
var errInfinity = errors.New("infinity")

// parseTimespan reads a systemd time span ("90", "500ms", "1min 30s", "2.5s") into a duration;
// a bare number is seconds, as in every *Sec= setting.
func parseTimespan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "infinity" {
		return 0, errInfinity
	}
	if s == "" {
		return 0, errors.New("empty time span")
	}
	var total time.Duration
	for rest := s; rest != ""; {
		rest = strings.TrimLeft(rest, " \t")
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("time span %q: expected a number at %q", s, rest)
		}
		num, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("time span %q: %w", s, err)
		}
		rest = strings.TrimLeft(rest[i:], " \t")
		j := 0
		for j < len(rest) && !(rest[j] >= '0' && rest[j] <= '9') && rest[j] != ' ' && rest[j] != '\t' {
			j++
		}
		unit := time.Second
		if j > 0 {
			u, ok := timeUnits[rest[:j]]
			if !ok {
				return 0, fmt.Errorf("time span %q: unknown unit %q", s, rest[:j])
			}
			unit = u
		}
		rest = rest[j:]
		total += time.Duration(num * float64(unit))
	}
	return total, nil
}
