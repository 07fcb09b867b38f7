package joblog

import (
	"log/slog"
	"time"
)

// Stream names used in [Line.Stream]. StreamGod marks a line that god itself
// made for a follower, such as the notice that lines were dropped.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
	StreamGod    = "god"
)

// Line is one line of a job's output.
//
// Lines handed out by a [Hub] (from Tail or Follow) are shared with the Hub's
// ring and other followers: treat them, and Attrs in particular, as read-only.
type Line struct {
	Time       time.Time
	Job        string
	Generation int
	Pid        int
	Stream     string // "stdout" or "stderr"; "god" for notices made by the Hub
	Level      slog.Level
	// OwnLevel: Level came from the line itself (the level key of a json or logfmt line); false
	// for a text line and a structured line without a level, whose Level is Info. The journal
	// puts a stderr line without a level of its own at warning.
	OwnLevel bool
	Msg      string
	Attrs    []slog.Attr // parsed from json/logfmt; nil for text
	Seq      uint64      // set by the Hub: strictly increasing across the hub
	// Raw is the line as the job wrote it when its format is json or logfmt (Msg is then the
	// parsed message), for the log files; "" for text, whose Msg is the line. Lines the Hub keeps
	// in its ring have no Raw: `god logs` shows Msg and Attrs.
	Raw string
}

// Text is the line as the job wrote it: Raw, or Msg for a text line.
func (l *Line) Text() string {
	if l.Raw != "" {
		return l.Raw
	}
	return l.Msg
}
