package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/jsonindent"
	"github.com/emielm/watchgod/supervisor/control"
	"golang.org/x/sys/unix"
)

// setupStatus makes "god status [--json] [--state STATE]... [JOB...]".
func setupStatus(fs *flag.FlagSet) func(c *cli, args []string) int {
	asJSON := fs.Bool("json", false, "print the jobs as indented JSON")
	var states stateFilter
	fs.Var(&states, "state", "list only the jobs in `STATE` (repeat the flag or separate states by commas: --state failed,backoff); one of "+validStates())
	return func(c *cli, jobs []string) int {
		if code := c.checkJobs(jobs, false); code != exitOK {
			return code
		}
		if err := states.check(); err != nil {
			return c.usageError("%v", err)
		}
		req := control.Request{Cmd: control.CmdStatus, Jobs: jobs}
		if *asJSON {
			_, raw, code := c.doRaw(context.Background(), req)
			if code != exitOK {
				return code
			}
			return printStatusJSON(c, raw, states)
		}
		res, code := c.do(context.Background(), req, nil)
		if code != exitOK {
			return code
		}
		list := states.filter(res.Jobs)
		// More jobs than fit a screen: say how many are in each state first, and list the ones
		// that need a look (not run) before the running ones, so they are not scrolled away.
		if len(list) > tableRows(c.stdout) {
			fmt.Fprintln(c.stdout, statusSummary(list))
			list = notRunningFirst(list)
		}
		printStatusTable(c.stdout, list, time.Now())
		return exitOK
	}
}

// stateFilter is status's --state: the states a listed job must be in, from repeated flags and
// comma-separated lists. Empty means every state.
type stateFilter []string

func (s *stateFilter) String() string {
	if s == nil {
		return ""
	}
	return strings.Join(*s, ",")
}

func (s *stateFilter) Set(v string) error {
	for p := range strings.SplitSeq(v, ",") {
		*s = append(*s, strings.TrimSpace(p))
	}
	return nil
}

// check refuses a state that is not one of jobstate.States, naming it and the valid ones, so a
// typo (--state runing) is a usage error rather than a table that is silently empty.
func (s stateFilter) check() error {
	for _, st := range s {
		if !slices.Contains(jobstate.States, jobstate.State(st)) {
			return fmt.Errorf("unknown state %q for --state (valid states: %s)", st, validStates())
		}
	}
	return nil
}

// filter keeps the jobs in one of the states, in their order; all of them when s is empty.
func (s stateFilter) filter(jobs []control.JobStatus) []control.JobStatus {
	if len(s) == 0 {
		return jobs
	}
	var out []control.JobStatus
	for _, j := range jobs {
		if slices.Contains(s, j.State) {
			out = append(out, j)
		}
	}
	return out
}

// filterJSON is filter for a JSON array of jobs: the elements whose state is one of s, in their
// order, as an array (all of jobs when s is empty).
func (s stateFilter) filterJSON(jobs json.RawMessage) (json.RawMessage, error) {
	if len(s) == 0 || len(jobs) == 0 {
		return jobs, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(jobs, &items); err != nil {
		return nil, fmt.Errorf("status from god: %w", err)
	}
	out := json.RawMessage{'['}
	for _, item := range items {
		var j struct {
			State string `json:"state"`
		}
		if err := json.Unmarshal(item, &j); err != nil {
			return nil, fmt.Errorf("status from god: job %.40s: %w", item, err)
		}
		if slices.Contains(s, j.State) {
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = append(out, item...)
		}
	}
	return append(out, ']'), nil
}

// validStates is the list of states for help and errors: "wait, listen, start, ...".
func validStates() string {
	names := make([]string, len(jobstate.States))
	for i, st := range jobstate.States {
		names[i] = string(st)
	}
	return strings.Join(names, ", ")
}

// pipeRows is how many jobs the status table lists as it is when its output is not a terminal
// (a pipe, a file, a terminal whose size is unknown): about one screen. Past it the table gets
// the summary line and the order of tableRows.
const pipeRows = 40

// tableRows is how many jobs fit on w's screen, below the header and above the shell's next
// prompt: the terminal's rows minus 2 when w is a terminal that knows its size, else pipeRows.
func tableRows(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return pipeRows
	}
	rc, err := f.SyscallConn() // not Fd, which would switch a non-blocking file to blocking mode
	if err != nil {
		return pipeRows
	}
	var ws *unix.Winsize
	var werr error
	if err := rc.Control(func(fd uintptr) { ws, werr = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ) }); err != nil || werr != nil || ws.Row == 0 {
		return pipeRows
	}
	return max(int(ws.Row)-2, 1)
}

// statusSummary is the line above a long table: how many jobs, and how many in each state that
// has any, in the order of jobstate.States ("250 jobs: 240 run, 8 backoff, 2 failed"). A state
// this client does not know (a newer god's) is counted after the known ones.
func statusSummary(jobs []control.JobStatus) string {
	counts := map[string]int{}
	var unknown []string
	for _, j := range jobs {
		if counts[j.State] == 0 && !slices.Contains(jobstate.States, jobstate.State(j.State)) {
			unknown = append(unknown, j.State)
		}
		counts[j.State]++
	}
	var parts []string
	for _, st := range jobstate.States {
		if n := counts[string(st)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, st))
		}
	}
	slices.Sort(unknown)
	for _, st := range unknown {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], cell(st)))
	}
	noun := "jobs"
	if len(jobs) == 1 {
		noun = "job"
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d %s", len(jobs), noun)
	}
	return fmt.Sprintf("%d %s: %s", len(jobs), noun, strings.Join(parts, ", "))
}

// notRunningFirst orders a long table: the jobs not in state run (what needs a look: failed,
// backing off, starting, stopped, ...) first, then the running ones, each group in god's order
// (by name).
func notRunningFirst(jobs []control.JobStatus) []control.JobStatus {
	out := slices.Clone(jobs)
	slices.SortStableFunc(out, func(a, b control.JobStatus) int {
		ra, rb := a.State == string(jobstate.StateRun), b.State == string(jobstate.StateRun)
		switch {
		case ra == rb:
			return 0
		case rb:
			return -1
		}
		return 1
	})
	return out
}

// exitInactive is is-active's answer for a job that does not run (systemctl is-active says 3,
// which god already uses for "god not reachable").
const exitInactive = 4

// setupIsActive answers "is JOB running" by exit code, for scripts: 0 when every named job is in
// run or degrade (it serves), 4 when one is not, 1 for an unknown job, 3 when god is not reachable.
// It prints each job's state, one per line.
func setupIsActive(fs *flag.FlagSet) func(c *cli, args []string) int {
	return func(c *cli, jobs []string) int {
		if code := c.checkJobs(jobs, true); code != exitOK {
			return code
		}
		res, code := c.do(context.Background(), control.Request{Cmd: control.CmdStatus, Jobs: jobs}, nil)
		if code != exitOK {
			return code
		}
		code = exitOK
		for _, j := range res.Jobs {
			fmt.Fprintln(c.stdout, clean(j.State))
			if j.State != "run" && j.State != "degrade" {
				code = exitInactive
			}
		}
		return code
	}
}

// printStatusJSON prints the jobs array (never null) for scripts and shell completion, indented,
// as god sent it, less the jobs that states leaves out. It is not decoded into structs and
// encoded again: with thousands of jobs that was most of the client's time. For god's JSON the
// output is the same, byte for byte, as encoding the decoded jobs with an indenting Encoder.
func printStatusJSON(c *cli, jobs json.RawMessage, states stateFilter) int {
	jobs, err := states.filterJSON(jobs)
	if err != nil {
		fmt.Fprintf(c.stderr, "god: %v\n", err)
		return exitFailed
	}
	if len(jobs) == 0 {
		jobs = json.RawMessage("[]")
	}
	out := jsonindent.Append(make([]byte, 0, 2*len(jobs)), jobs)
	if _, err := c.stdout.Write(append(out, '\n')); err != nil {
		fmt.Fprintf(c.stderr, "god: %v\n", err)
		return exitFailed
	}
	return exitOK
}

// printStatusTable prints one aligned row per job. The last column carries
// why a job is not running (Reason) and what it says about itself (STATUS=).
func printStatusTable(w io.Writer, jobs []control.JobStatus, now time.Time) {
	var buf bytes.Buffer
	defer func() {
		// tabwriter pads every cell but the last: a row whose last cells are empty would end in
		// spaces. The table goes out in one write: a write per row was a tenth of a long
		// table's time.
		out := make([]byte, 0, buf.Len())
		for line := range bytes.SplitAfterSeq(buf.Bytes(), []byte("\n")) {
			out = append(out, bytes.TrimRight(line, " \n")...)
			if bytes.HasSuffix(line, []byte("\n")) {
				out = append(out, '\n')
			}
		}
		w.Write(out)
	}()
	tw := tabwriter.NewWriter(&buf, 0, 8, 2, ' ', 0)
	// USER shows only where some job runs as another user than god's, to keep the table narrow.
	withUser := slices.ContainsFunc(jobs, func(j control.JobStatus) bool { return j.User != "" })
	userHead := ""
	if withUser {
		userHead = "USER\t"
	}
	fmt.Fprintln(tw, "JOB\t"+userHead+"STATE\tPIDS\tGEN\tUPTIME\tCPU\tMEM\tRESTARTS\tLAST-EXIT\tCHECK\tSOCKETS\tSTATUS")
	for _, j := range jobs {
		// A process of another generation than the job's (a reload under way) or one being
		// stopped says so next to its pid: 812(g3), 790(g2,stopping).
		pids := make([]string, len(j.Processes))
		var started time.Time
		var cpu float64
		var rss int64
		for i, p := range j.Processes {
			var tags []string
			if p.Generation != j.Generation {
				tags = append(tags, "g"+strconv.Itoa(p.Generation))
			}
			if p.State == "stopping" {
				tags = append(tags, "stopping")
			}
			if len(p.Escaped) > 0 {
				// processes it started that left its group, held with the job all the same
				tags = append(tags, "+"+strconv.Itoa(len(p.Escaped)))
			}
			cpu += p.CPUSeconds
			rss += p.RSSBytes
			pids[i] = strconv.Itoa(p.Pid)
			if len(tags) > 0 {
				pids[i] += "(" + strings.Join(tags, ",") + ")"
			}
			if p.Generation == j.Generation && (started.IsZero() || p.Started.Before(started)) {
				started = p.Started
			}
		}
		// Uptime is how long the serving generation's oldest process runs; a job without one
		// has none (how long it has been down is in god status --json, since).
		uptime := ""
		if !started.IsZero() {
			uptime = humanDuration(now.Sub(started))
		}
		check := j.Check
		switch j.State {
		case "wait", "listen", "stopped", "done", "failed", "backoff":
			check = "" // the last reply of a process that is gone says nothing now
		}
		var note []string
		if strings.HasPrefix(j.Reload, "failed") {
			note = append(note, "reload "+clean(j.Reload))
		}
		if j.Connections > 0 {
			// an accept job: its connection processes are not in PIDS
			note = append(note, strconv.Itoa(j.Connections)+" connections")
		}
		for _, s := range []string{j.Reason, j.Status} {
			if s != "" {
				note = append(note, clean(s))
			}
		}
		if !j.Next.IsZero() {
			// A job backing off, or failed and cooling down: when god tries it again.
			next := "next try in " + humanDuration(j.Next.Sub(now))
			if d := j.Next.Sub(now); d < time.Second {
				next = "next try in " + max(d, 0).Round(10*time.Millisecond).String()
			}
			note = append(note, next)
		}
		// CPU and MEM add up the job's processes (all its instances and generations), as the
		// machine bears them: processor time used, and resident memory.
		cpuCell, memCell := "", ""
		if rss > 0 {
			cpuCell, memCell = cpuTime(cpu), humanBytes(rss)
		}
		user := ""
		if withUser {
			user = cell(j.User) + "\t"
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n",
			cell(j.Name), user, cell(j.State), cell(strings.Join(pids, ",")), j.Generation, cell(uptime),
			cell(cpuCell), cell(memCell), j.Restarts, cell(j.LastExit), cell(check), cell(strings.Join(j.Sockets, ",")), strings.Join(note, "; "))
	}
	tw.Flush()
}

// cell is a table cell: cleaned, and "-" when empty so columns stay readable.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return clean(s)
}

// cpuTime shows processor seconds as ps does for short times, 0.42s, 12.3s, and as a duration
// from a minute on (5m2s).
func cpuTime(s float64) string {
	switch {
	case s < 10:
		return strconv.FormatFloat(s, 'f', 2, 64) + "s"
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return humanDuration(time.Duration(s * float64(time.Second)))
}

// humanBytes shows a size in binary units with three significant figures: 812K, 12.4M, 1.05G.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + "B"
	}
	v, suffix := float64(n)/unit, "K"
	for _, s := range []string{"M", "G", "T"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	switch {
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64) + suffix
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64) + suffix
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + suffix
}

// humanDuration rounds d to its two largest units: 3s, 5m2s, 2h3m, 4d1h.
// Negative durations (clock skew between god and the client) show as 0s.
func humanDuration(d time.Duration) string {
	if d < time.Second {
		return "0s"
	}
	s := int64(d / time.Second)
	days, hours, mins, secs := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm%ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}
