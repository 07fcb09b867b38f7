package joblog

import (
	"log/slog"
	"math"
	"strconv"
)

// Levels above Error that job loggers name: fatal, panic and the syslog
// severities more urgent than err.
const levelFatal = slog.LevelError + 4

// levelNames maps lower-case level names that job loggers write to slog
// levels. It is scanned linearly: it is short and the names are short.
var levelNames = [...]struct {
	name  string
	level slog.Level
}{
	{"info", slog.LevelInfo},
	{"debug", slog.LevelDebug},
	{"warn", slog.LevelWarn},
	{"error", slog.LevelError},
	{"warning", slog.LevelWarn},
	{"err", slog.LevelError},
	{"trace", slog.LevelDebug - 4},
	{"dbg", slog.LevelDebug},
	{"information", slog.LevelInfo},
	{"notice", slog.LevelInfo},
	{"fatal", levelFatal},
	{"critical", levelFatal},
	{"crit", levelFatal},
	{"panic", levelFatal},
	{"dpanic", levelFatal},
	{"alert", levelFatal},
	{"emerg", levelFatal},
	{"emergency", levelFatal},
}

// maxLevelOffset bounds the "+N" of "INFO+N" so that a hostile line cannot
// overflow the level.
const maxLevelOffset = 1000

// levelFromName reads a level name, optionally with a slog-style offset
// ("INFO+2", "error-1"), case-insensitively and without allocating.
func levelFromName(s string) (slog.Level, bool) {
	name, offset := s, 0
	for i := 1; i < len(s); i++ {
		if s[i] == '+' || s[i] == '-' {
			n, err := strconv.Atoi(s[i:])
			if err != nil || n > maxLevelOffset || n < -maxLevelOffset {
				return 0, false
			}
			name, offset = s[:i], n
			break
		}
	}
	for _, ln := range levelNames {
		if eqFold(name, ln.name) {
			return ln.level + slog.Level(offset), true
		}
	}
	return 0, false
}

// levelFromNumber reads a numeric level: slog's own numbers, except the
// bunyan/pino levels 10 (trace) to 60 (fatal), which are far more common in
// JSON logs than slog levels of that height.
func levelFromNumber(f float64) (slog.Level, bool) {
	if f > maxLevelOffset || f < -maxLevelOffset || f != math.Trunc(f) {
		return 0, false
	}
	switch n := int(f); n {
	case 10:
		return slog.LevelDebug - 4, true
	case 20:
		return slog.LevelDebug, true
	case 30:
		return slog.LevelInfo, true
	case 40:
		return slog.LevelWarn, true
	case 50:
		return slog.LevelError, true
	case 60:
		return levelFatal, true
	default:
		return slog.Level(n), true
	}
}

// levelFromText reads a level written as text: a name, or a number in a
// string ("30", as some logfmt writers put it).
func levelFromText(s string) (slog.Level, bool) {
	if l, ok := levelFromName(s); ok {
		return l, true
	}
	if n, err := strconv.Atoi(s); err == nil {
		return levelFromNumber(float64(n))
	}
	return 0, false
}
