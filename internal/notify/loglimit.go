package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LogLimiter writes at most one line per key and interval. What it holds back is counted and
// said in one line at the end of the interval. It exists for what strangers can cause at any
// rate (a flood of datagrams on the notify socket): god's log must not grow with it, and the
// first line of a kind still goes out at once.
type LogLimiter struct {
	log   func() *slog.Logger
	every time.Duration

	mu   sync.Mutex
	keys map[string]*limitedLine // keys are a fixed set of reasons: the map stays small
}

type limitedLine struct {
	last  time.Time
	held  int
	level slog.Level
	msg   string
	args  []any // of the last line held back
	timer *time.Timer
}

func NewLogLimiter(every time.Duration, log func() *slog.Logger) *LogLimiter {
	return &LogLimiter{log: log, every: every, keys: make(map[string]*limitedLine)}
}

// Log writes msg now, unless a line of key went out less than an interval ago: then it is
// counted, and the count goes out with the last such line when the interval ends.
func (l *LogLimiter) Log(level slog.Level, key, msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k == nil {
		k = &limitedLine{}
		l.keys[key] = k
	}
	now := time.Now()
	if k.held == 0 && now.Sub(k.last) >= l.every {
		k.last = now
		l.log().Log(context.Background(), level, msg, args...)
		return
	}
	k.held++
	k.level, k.msg, k.args = level, msg, args
	if k.timer == nil {
		k.timer = time.AfterFunc(max(k.last.Add(l.every).Sub(now), 0), func() { l.flush(key) })
	}
}

// flush says how many lines of key were held back.
func (l *LogLimiter) flush(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	k.timer = nil
	if k.held == 0 {
		return
	}
	args := append(append([]any(nil), k.args...), "repeated", k.held, "in", l.every.String())
	k.held, k.last = 0, time.Now()
	l.log().Log(context.Background(), k.level, k.msg, args...)
}

// stop ends the pending flushes (at god's end).
func (l *LogLimiter) Stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range l.keys {
		if k.timer != nil {
			k.timer.Stop()
			k.timer = nil
		}
	}
}
