package joblog

import (
	"log/slog"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/journal"
)

// Journal sends job lines to systemd's journal through its native socket, each an entry of
// its own with fields of the job rather than god's, so that `journalctl -t JOB` shows a job's
// lines as if it were a service of its own (see JournalEntry). A line the journal refuses goes
// to god's logger as before.
type Journal struct {
	send func(msg string, pri journal.Priority, vars map[string]string) error
}

// NewJournal returns a Journal when the journal's socket is there (journal.Enabled), else nil.
func NewJournal() *Journal {
	if !journal.Enabled() {
		return nil
	}
	return &Journal{send: journal.Send}
}

// JournalEntry maps a job line to a journal entry:
//
//   - MESSAGE: the message, then the line's attrs (a json or logfmt line's other keys) as
//     key=value, quoted where needed, as god's text log shows them;
//   - PRIORITY: from the line's level (debug 7, info 6, warning 4, error 3, above error 2); a
//     stderr line without a level of its own is a warning (4), a stdout line info (6);
//   - SYSLOG_IDENTIFIER: the job, so that `journalctl -t JOB` selects it; SYSLOG_PID: its process,
//     which journalctl shows as JOB[PID];
//   - GOD_PID, GOD_GENERATION, GOD_STREAM, GOD_JOB: the process, its job's generation, stdout or
//     stderr, and the job (god's own prefix: _PID and the other trusted fields are god's, the
//     sender's).
func JournalEntry(l *Line) (msg string, pri journal.Priority, vars map[string]string) {
	level := l.Level
	if !l.OwnLevel && l.Stream == StreamStderr {
		level = slog.LevelWarn
	}
	msg = l.Msg
	if len(l.Attrs) > 0 {
		var b strings.Builder
		b.WriteString(l.Msg)
		for _, a := range l.Attrs {
			b.WriteByte(' ')
			b.WriteString(a.Key)
			b.WriteByte('=')
			v := a.Value.Resolve().String()
			if v == "" || strings.ContainsAny(v, " \"=\n") {
				v = strconv.Quote(v)
			}
			b.WriteString(v)
		}
		msg = b.String()
	}
	pid := strconv.Itoa(l.Pid)
	vars = map[string]string{
		"SYSLOG_IDENTIFIER": l.Job,
		"SYSLOG_PID":        pid,
		"GOD_JOB":           l.Job,
		"GOD_PID":           pid,
		"GOD_GENERATION":    strconv.Itoa(l.Generation),
		"GOD_STREAM":        l.Stream,
	}
	return msg, journalPriority(level), vars
}

// journalPriority maps a slog level to a syslog priority, as the journal log mode's "<N>" does.
func journalPriority(l slog.Level) journal.Priority {
	switch {
	case l < slog.LevelInfo:
		return journal.PriDebug
	case l < slog.LevelWarn:
		return journal.PriInfo
	case l < slog.LevelError:
		return journal.PriWarning
	case l < levelFatal:
		return journal.PriErr
	default:
		return journal.PriCrit
	}
}

// level is the level a line has in the journal: what Hub checks against god's --log-level.
func (j *Journal) level(l *Line) slog.Level {
	if !l.OwnLevel && l.Stream == StreamStderr {
		return slog.LevelWarn
	}
	return l.Level
}

// Send sends l as a journal entry; an error says the journal did not take it.
func (j *Journal) Send(l *Line) error {
	msg, pri, vars := JournalEntry(l)
	return j.send(msg, pri, vars)
}
