package joblog

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// journalHandler writes slog text lines prefixed with the syslog priority
// "<N>", which journald reads from a service's stdout/stderr (the default
// SyslogLevelPrefix=yes) to set the entry's PRIORITY, and strips it from the
// message. The time is left out: the journal stamps every entry itself.
//
// It wraps a slog.TextHandler that formats into a buffer shared by all its
// clones, so that the prefix and the line reach w in one Write.
type journalHandler struct {
	inner slog.Handler
	out   *journalOut
}

// journalOut is the writer side shared by a journalHandler and its clones.
type journalOut struct {
	mu  sync.Mutex
	w   io.Writer
	buf bytes.Buffer
}

// newJournalHandler exists to tie the inner handler to the shared buffer.
func newJournalHandler(w io.Writer, level slog.Level) *journalHandler {
	out := &journalOut{w: w}
	return &journalHandler{
		inner: slog.NewTextHandler(&out.buf, &slog.HandlerOptions{Level: level}),
		out:   out,
	}
}

// Enabled defers to the inner handler's level.
func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

// Handle writes "<N>" and the record's text, without its time, in one Write.
func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{} // TextHandler omits a zero time
	o := h.out
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Reset()
	o.buf.WriteString(syslogPrefix(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := o.w.Write(o.buf.Bytes())
	if o.buf.Cap() > 64<<10 {
		o.buf = bytes.Buffer{} // do not keep one huge record's buffer forever
	}
	return err
}

// WithAttrs keeps the shared output and adds the attrs to the inner handler.
func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

// WithGroup keeps the shared output and opens the group in the inner handler.
func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// syslogPrefix maps a slog level to the syslog priority prefix journald reads.
func syslogPrefix(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "<7>" // debug
	case l < slog.LevelWarn:
		return "<6>" // info
	case l < slog.LevelError:
		return "<4>" // warning
	case l < levelFatal:
		return "<3>" // err
	default:
		return "<2>" // crit
	}
}
