package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// setupLogs makes "god logs [-f] [-n N] [--since TIME] [--stream S] [--json] [JOB...]".
func setupLogs(fs *flag.FlagSet) func(c *cli, args []string) int {
	follow := fs.Bool("f", false, "follow: keep printing new lines until interrupted")
	lines := fs.Int("n", control.DefaultLines, fmt.Sprintf("print the last `N` lines, of all the named jobs together (0..%d; 0 with -f: only new lines; with --since: all of them unless given)", control.MaxLines))
	since := fs.String("since", "", "print the lines since `TIME`: RFC 3339 (2026-12-07T14:00:00Z) or a duration ago (10m); older lines come from the log files (god --log-dir)")
	stream := fs.String("stream", "", "print only the lines of `STREAM`: stdout or stderr")
	asJSON := fs.Bool("json", false, "print each line as a JSON object: time, job, pid, gen, stream, level, msg (and attrs)")
	return func(c *cli, jobs []string) int {
		if code := c.checkJobs(jobs, false); code != exitOK {
			return code
		}
		if *lines < 0 || *lines > control.MaxLines {
			return c.usageError("-n %d out of range 0..%d", *lines, control.MaxLines)
		}
		nSet := false
		fs.Visit(func(f *flag.Flag) { nSet = nSet || f.Name == "n" })
		req := control.Request{Cmd: control.CmdLogs, Jobs: jobs, Follow: *follow, Lines: *lines, Stream: *stream}
		if req.Lines == 0 {
			req.Lines = control.NoLines // -n 0 is tail's: no past lines (the request's 0 means the default)
		}
		if *since != "" {
			t, err := parseSince(*since, time.Now())
			if err != nil {
				return c.usageError("--since %q: %v", *since, err)
			}
			req.Since = t
			if !nSet {
				req.Lines = 0 // every line since then
			}
		}
		switch *stream {
		case "", control.StreamStdout, control.StreamStderr:
		default:
			return c.usageError("--stream %q: want stdout or stderr", *stream)
		}
		ctx := context.Background()
		if *follow {
			// Ctrl-C ends a follow normally: close the connection, exit 0.
			var stop context.CancelFunc
			ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
		}
		// Lines are printed through a buffer flushed whenever no further line is waiting, so
		// a burst costs one write, not one per line, and a quiet follow shows each line at once.
		out := bufio.NewWriterSize(c.stdout, 64<<10)
		defer out.Flush()
		enc := json.NewEncoder(out)
		_, code := c.do(ctx, req, func(r control.Response) {
			switch {
			case r.Type == control.TypeLog && r.Log != nil && *asJSON:
				enc.Encode(r.Log) // one object per line; an error shows at the flush
			case r.Type == control.TypeLog && r.Log != nil:
				printLogLine(out, r.Log)
			default:
				out.Flush()
				c.printLine(r)
			}
			if !r.More {
				out.Flush()
			}
		})
		return code
	}
}

// parseSince reads the value of --since: an RFC 3339 time, or a duration meaning that long
// before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("a negative duration")
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("neither an RFC 3339 time (2026-12-07T14:00:00Z) nor a duration (10m)")
	}
	return t, nil
}

// printLogLine prints "TIME JOB[PID] stream: msg key=val ...", with a level=X pair first when
// the level is not INFO: every text line is at INFO, and a level=INFO at the end of each of
// them said nothing.
func printLogLine(w io.Writer, l *control.LogLine) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s[%d] %s: %s", l.Time.Local().Format("2006-01-02 15:04:05.000"), clean(l.Job), l.Pid, clean(l.Stream), clean(l.Msg))
	if l.Level != "" && l.Level != "INFO" {
		b.WriteString(" level=" + quoteValue(l.Level))
	}
	keys := make([]string, 0, len(l.Attrs))
	for k := range l.Attrs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteString(" " + quoteValue(k) + "=" + quoteValue(l.Attrs[k]))
	}
	b.WriteByte('\n')
	io.WriteString(w, b.String())
}

// quoteValue quotes a key or value (Go syntax) when it is empty or holds a
// space, quote, '=' or control character, so the pairs stay parseable.
func quoteValue(s string) string {
	if s == "" || strings.ContainsAny(s, " \"=") || clean(s) != s {
		return fmt.Sprintf("%q", s)
	}
	return s
}
