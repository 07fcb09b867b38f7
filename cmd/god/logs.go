package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/emielm/watchgod/supervisor/control"
)

// setupLogs makes "god logs [-f] [-n N] [JOB...]".
func setupLogs(fs *flag.FlagSet) func(c *cli, args []string) int {
	follow := fs.Bool("f", false, "follow: keep printing new lines until interrupted")
	lines := fs.Int("n", control.DefaultLines, fmt.Sprintf("print the last `N` lines, of all the named jobs together (0..%d; 0 with -f: only new lines)", control.MaxLines))
	return func(c *cli, jobs []string) int {
		if code := c.checkJobs(jobs, false); code != exitOK {
			return code
		}
		if *lines < 0 || *lines > control.MaxLines {
			return c.usageError("-n %d out of range 0..%d", *lines, control.MaxLines)
		}
		n := *lines
		if n == 0 {
			n = control.NoLines // -n 0 is tail's: no past lines (the request's 0 means the default)
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
		_, code := c.do(ctx, control.Request{Cmd: control.CmdLogs, Jobs: jobs, Follow: *follow, Lines: n}, func(r control.Response) {
			if r.Type == control.TypeLog && r.Log != nil {
				printLogLine(out, r.Log)
			} else {
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

// printLogLine prints "TIME JOB[PID] stream: msg key=val ...", with a
// level=X pair first when the job's line had a level.
func printLogLine(w io.Writer, l *control.LogLine) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s[%d] %s: %s", l.Time.Local().Format("2006-01-02 15:04:05.000"), clean(l.Job), l.Pid, clean(l.Stream), clean(l.Msg))
	if l.Level != "" {
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
