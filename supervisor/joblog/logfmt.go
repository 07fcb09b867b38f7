package joblog

import (
	"log/slog"
	"strconv"
)

// parseLogfmt implements Parse for FormatLogfmt; ok is false when raw is not
// a sequence of key=value pairs. Values are strings: logfmt has no types, and
// guessing numbers would make "port=080" lose its zero.
func parseLogfmt(raw string) (level slog.Level, msg string, attrs []slog.Attr, ok bool) {
	level = levelUnset // Parse makes it Info
	pairs := 0
	i := 0
	for {
		for i < len(raw) && isLogfmtSpace(raw[i]) {
			i++
		}
		if i == len(raw) {
			break
		}
		// Key: up to '=', never empty, never holding a space or a quote.
		start := i
		for i < len(raw) && raw[i] != '=' && raw[i] != '"' && !isLogfmtSpace(raw[i]) {
			i++
		}
		if i == start || i == len(raw) || raw[i] != '=' {
			return 0, "", nil, false
		}
		key := raw[start:i]
		i++ // '='
		var val string
		if i < len(raw) && raw[i] == '"' {
			end, closed := quotedEnd(raw, i)
			if !closed {
				return 0, "", nil, false
			}
			v, err := strconv.Unquote(raw[i:end])
			if err != nil || (end < len(raw) && !isLogfmtSpace(raw[end])) {
				return 0, "", nil, false
			}
			val, i = v, end
		} else {
			// A bare value runs to the next space; '=' and '"' inside it
			// are kept, as in "url=/a?b=c".
			start := i
			for i < len(raw) && !isLogfmtSpace(raw[i]) {
				i++
			}
			val = raw[start:i]
		}
		pairs++
		switch classifyKey(key) {
		case fieldLevel:
			if l, known := levelFromText(val); known {
				level = l
			} else {
				attrs = append(attrs, slog.String(key, val))
			}
		case fieldMsg:
			msg = val
		case fieldAttr:
			if attrs == nil {
				attrs = make([]slog.Attr, 0, 8)
			}
			attrs = append(attrs, slog.String(key, val))
		}
	}
	return level, msg, attrs, pairs > 0
}

// quotedEnd finds the end (one past the closing quote) of the Go-quoted
// string that starts at raw[i] == '"', skipping escaped characters.
func quotedEnd(raw string, i int) (end int, closed bool) {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// isLogfmtSpace reports the separators between logfmt pairs.
func isLogfmtSpace(c byte) bool { return c == ' ' || c == '\t' }
