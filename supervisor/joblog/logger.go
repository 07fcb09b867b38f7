package joblog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/lmittmann/tint"
	"golang.org/x/sys/unix"
)

// Modes of NewLogger.
const (
	ModeAuto    = "auto"
	ModeText    = "text"
	ModeColor   = "color"
	ModeJSON    = "json"
	ModeJournal = "journal"
)

// tintTime is the time format of the text modes: a daemon's log spans days,
// so it carries the date, and milliseconds to order close events.
const tintTime = "2006-01-02 15:04:05.000"

// NewLogger returns god's own logger, writing records at or above level to w.
//
// Every record is written to w as soon as it is logged, except the job lines a Hub relays with
// AddHeld: those wait in a buffer until the relay flushes (once per read of the job's pipe),
// until 64 KiB wait, or until the next record of god's own, which writes them first. Call
// Flush before god exits or re-executes itself.
//
// Modes:
//   - "auto" (or ""): "journal" when w is the stream systemd's journal gave
//     god (JOURNAL_STREAM names w's device and inode); else "color" when w is
//     a terminal and NO_COLOR is unset or empty; else "json".
//   - "text": tint's human format without colour.
//   - "color": tint's human format with ANSI colour.
//   - "json": slog's JSONHandler, one object per line.
//   - "journal": one line per record in slog's key=value text, without the
//     time (the journal stamps each line) and prefixed by the syslog priority
//     "<N>" that journald reads from a stream (debug 7, info 6, warn 4,
//     error 3, above error 2). It writes to w rather than to the journal's
//     native socket, so it needs no socket and works wherever the stream goes.
func NewLogger(w *os.File, mode string, level slog.Level) (*slog.Logger, error) {
	if w == nil {
		return nil, errors.New("joblog: NewLogger: nil file")
	}
	if mode == "" || mode == ModeAuto {
		mode = autoMode(w)
	}
	var format func(io.Writer) slog.Handler
	switch mode {
	case ModeText, ModeColor:
		format = func(w io.Writer) slog.Handler {
			return tint.NewTextHandler(w, &tint.Options{Level: level, TimeFormat: tintTime, NoColor: mode == ModeText})
		}
	case ModeJSON:
		format = func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}) }
	case ModeJournal:
		format = func(w io.Writer) slog.Handler { return newJournalHandler(w, level) }
	default:
		return nil, fmt.Errorf("joblog: unknown log mode %q (want auto, text, color, json or journal)", mode)
	}
	return slog.New(newBufferedHandler(w, format)), nil
}

// IsJournalMode reports whether NewLogger(w, mode, ...) writes in the journal mode: mode
// "journal", or "auto" under systemd's journal. god then sends job lines to the journal as
// entries of their own (NewJournal, Hub.SetJournal).
func IsJournalMode(w *os.File, mode string) bool {
	if mode == "" || mode == ModeAuto {
		mode = autoMode(w)
	}
	return mode == ModeJournal
}

// autoMode picks the mode for "auto" from what w is connected to.
func autoMode(w *os.File) string {
	if isJournalStream(w, os.Getenv("JOURNAL_STREAM")) {
		return ModeJournal
	}
	if isTerminal(w) {
		if os.Getenv("NO_COLOR") != "" {
			return ModeText
		}
		return ModeColor
	}
	return ModeJSON
}

// isJournalStream reports whether w is the stream that JOURNAL_STREAM
// ("DEV:INO" in decimal) describes. systemd sets it for the service's stdout
// and stderr; comparing dev:ino keeps a redirected stderr (god 2>file under
// systemd) from being mistaken for the journal.
func isJournalStream(w *os.File, env string) bool {
	devs, inos, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devs, 10, 64)
	ino, err2 := strconv.ParseUint(inos, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	fi, err := w.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == dev && st.Ino == ino
}

// isTerminal reports whether w is a terminal. It goes through SyscallConn
// rather than Fd, which would switch a non-blocking file to blocking mode.
func isTerminal(w *os.File) bool {
	rc, err := w.SyscallConn()
	if err != nil {
		return false
	}
	var terr error
	if err := rc.Control(func(fd uintptr) {
		_, terr = unix.IoctlGetTermios(int(fd), unix.TCGETS)
	}); err != nil {
		return false
	}
	return terr == nil
}
