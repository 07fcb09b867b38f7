package joblog

import (
	"context"
	"io"
	"log/slog"
	"sync"
)

// maxHeld is how many bytes of held records output keeps before it writes them anyway: a
// burst of job output then costs one write per maxHeld bytes, and a relay that never stops
// reading still reaches the log promptly.
const maxHeld = 64 << 10

// output is god's log file behind a buffer. Records written through its held side wait in the
// buffer until Flush or until maxHeld bytes are waiting; records written through its plain side
// write the whole buffer at once, theirs last. Order is thus kept across both sides, and a
// record god writes about itself never waits behind a relay.
type output struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// write appends p to the buffer and writes the buffer out unless held and still small. An
// error drops what was buffered: a log sink that fails mid-write cannot be retried in order.
func (o *output) write(p []byte, held bool) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	if held && len(o.buf) < maxHeld {
		return len(p), nil
	}
	return len(p), o.flushLocked()
}

// flush writes out whatever is buffered.
func (o *output) flush() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.flushLocked()
}

func (o *output) flushLocked() error {
	if len(o.buf) == 0 {
		return nil
	}
	_, err := o.w.Write(o.buf)
	o.buf = o.buf[:0]
	if cap(o.buf) > 4*maxHeld {
		o.buf = nil // one huge record must not keep its buffer forever
	}
	return err
}

// outputSide is one side of an output as an io.Writer, for the slog handlers.
type outputSide struct {
	o    *output
	held bool
}

func (s outputSide) Write(p []byte) (int, error) { return s.o.write(p, s.held) }

// bufferedHandler is the handler of NewLogger's loggers: two handlers of the same format, one
// writing at once (god's own records, and Hub.Add) and one whose records are held in the
// shared output until Flush (Hub.AddHeld, used by the relays of job output).
type bufferedHandler struct {
	now, held slog.Handler
	out       *output
}

// newBufferedHandler exists to build both sides from one constructor over one output.
func newBufferedHandler(w io.Writer, format func(io.Writer) slog.Handler) *bufferedHandler {
	out := &output{w: w}
	return &bufferedHandler{now: format(outputSide{out, false}), held: format(outputSide{out, true}), out: out}
}

// Enabled defers to the format's own handler.
func (h *bufferedHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.now.Enabled(ctx, l)
}

// Handle writes r, and everything held before it, at once.
func (h *bufferedHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.now.Handle(ctx, r)
}

// handleHeld formats r into the buffer, where it may wait until Flush.
func (h *bufferedHandler) handleHeld(ctx context.Context, r slog.Record) error {
	return h.held.Handle(ctx, r)
}

// Flush writes out the held records.
func (h *bufferedHandler) Flush() error { return h.out.flush() }

// WithAttrs adds the attrs to both sides; they keep sharing the output.
func (h *bufferedHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &bufferedHandler{now: h.now.WithAttrs(as), held: h.held.WithAttrs(as), out: h.out}
}

// WithGroup opens the group on both sides; they keep sharing the output.
func (h *bufferedHandler) WithGroup(name string) slog.Handler {
	return &bufferedHandler{now: h.now.WithGroup(name), held: h.held.WithGroup(name), out: h.out}
}

// Flush writes out the records that a logger made by NewLogger still holds (lines relayed
// with Hub.AddHeld whose relay has not flushed yet). god calls it before it exits or
// re-executes itself. For any other logger it does nothing.
func Flush(logger *slog.Logger) error {
	if logger == nil {
		return nil
	}
	if b, ok := logger.Handler().(*bufferedHandler); ok {
		return b.Flush()
	}
	return nil
}
