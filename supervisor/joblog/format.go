package joblog

import (
	"fmt"
	"log/slog"
)

// Format says how to read a job's output lines. The strings are those of the
// godv1 `log` property.
type Format string

// The formats a job may declare. Any other value is read as FormatText.
const (
	FormatText   Format = "text"
	FormatJSON   Format = "json"
	FormatLogfmt Format = "logfmt"
)

// ParseFormat checks the value of a godv1 `log` reply, so that a typo in a
// loader is reported instead of silently reading the job as text. The empty
// string is FormatText (the godv1 default).
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatText:
		return FormatText, nil
	case FormatJSON, FormatLogfmt:
		return Format(s), nil
	}
	return "", fmt.Errorf("joblog: unknown log format %q (want text, json or logfmt)", s)
}

// Parse fills Level, Msg and Attrs of a line from its raw text according to
// format.
//
// FormatJSON reads one JSON object. The level comes from the key "level",
// "lvl" or "severity" (see the level rules below), the message from "msg" or
// "message"; the time keys "time", "ts", "timestamp" and "@timestamp" are
// dropped (the Line has god's own receive time); all other keys become attrs
// in their order. Strings, numbers (int64 when integral, else float64) and
// booleans keep their type, null becomes the string "null", nested objects
// become groups (an empty object the string "{}"), and arrays are kept as
// their JSON text. Keys are matched case-insensitively, only at the top level.
//
// FormatLogfmt reads space-separated key=value pairs, where a value is either
// bare (up to the next space) or a Go-quoted string as slog's TextHandler
// writes it ("a \"b\"\n"). The same keys as for JSON give the level and the
// message; all values are strings. A token without "=" makes the line text,
// so that prose is not torn into empty keys.
//
// Levels are read case-insensitively from names: trace, debug/dbg,
// info/information/notice, warn/warning, error/err, and fatal, critical, crit,
// panic, dpanic, alert, emerg, emergency (all four above error); slog's own
// names with offsets ("INFO+2") are understood. Numbers are slog levels (-4
// debug, 0 info, 4 warn, 8 error), except 10, 20, ..., 60, which are the
// bunyan/pino levels trace to fatal. A level that is not understood leaves the
// line at Info and keeps the key as an attr.
//
// A line that is not valid in its format, and every FormatText line, is
// returned as is with level Info and nil attrs. Parse never panics, and its
// work is linear in len(raw); JSON nested deeper than 32 levels is text.
func Parse(format Format, raw string) (level slog.Level, msg string, attrs []slog.Attr) {
	level, _, msg, attrs = parseOwn(format, raw)
	return level, msg, attrs
}

// levelUnset is the level the structured parsers start from: a line that leaves it has no
// level of its own. No level name or number maps to it.
const levelUnset = slog.Level(-1 << 30)

// parseOwn is Parse that also says whether the level came from the line (own).
func parseOwn(format Format, raw string) (level slog.Level, own bool, msg string, attrs []slog.Attr) {
	var ok bool
	switch format {
	case FormatJSON:
		level, msg, attrs, ok = parseJSON(raw)
	case FormatLogfmt:
		level, msg, attrs, ok = parseLogfmt(raw)
	}
	if !ok {
		return slog.LevelInfo, false, raw, nil
	}
	if level == levelUnset {
		return slog.LevelInfo, false, msg, attrs
	}
	return level, true, msg, attrs
}

// fieldKind classifies a top-level key of a structured line, so that JSON and
// logfmt agree on which keys carry the level, the message and the time.
type fieldKind int

const (
	fieldAttr fieldKind = iota
	fieldLevel
	fieldMsg
	fieldTime
)

// classifyKey exists so both parsers share one list of well-known keys.
func classifyKey(k string) fieldKind {
	if eqFold(k, "time") || eqFold(k, "ts") || eqFold(k, "timestamp") || eqFold(k, "@timestamp") {
		return fieldTime
	}
	if eqFold(k, "level") || eqFold(k, "lvl") || eqFold(k, "severity") {
		return fieldLevel
	}
	if eqFold(k, "msg") || eqFold(k, "message") {
		return fieldMsg
	}
	return fieldAttr
}

// eqFold is an ASCII-only strings.EqualFold for short keys: it costs no
// Unicode tables and no allocation on the per-line path. want is lower case.
func eqFold(s, want string) bool {
	if len(s) != len(want) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}
