package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/supervisor/control"
	"github.com/emielm/watchgod/supervisor/joblog"
)

// Handle answers one control request (control.Handler). Commands that act wait for the outcome and
// report each step as a progress line.
func (s *Supervisor) Handle(ctx context.Context, peer control.Peer, req control.Request, emit func(control.Response) error) control.Response {
	req.Jobs = s.expandAll(req.Jobs)
	switch req.Cmd {
	case control.CmdVersion:
		return control.Response{OK: true, Version: s.cfg.Version, Goroutines: runtime.NumGoroutine()}
	case control.CmdStatus:
		return s.handleStatus(req.Jobs)
	case control.CmdMetrics:
		return s.handleMetrics()
	case control.CmdStart, control.CmdStop, control.CmdRestart:
		return s.handleAct(ctx, req, emit)
	case control.CmdLogs:
		return s.handleLogs(ctx, req, emit)
	case control.CmdReload:
		return s.handleReload(ctx, req, emit)
	case control.CmdRescan:
		reply := make(chan string, 1)
		if !s.call(func() { s.rescan(reply) }) {
			return control.Response{Error: "god is shutting down"}
		}
		select {
		case msg := <-reply:
			return control.Response{OK: !strings.Contains(msg, "errors:"), Message: msg, Error: errorPart(msg)}
		case <-ctx.Done():
			return control.Response{Error: "cancelled"}
		}
	case control.CmdShutdown:
		w := make(chan struct{})
		n := 0
		if !s.call(func() {
			n = len(s.jobs)
			s.shutWaiters = append(s.shutWaiters, w)
			s.beginShutdown()
		}) {
			return control.Response{OK: true, Message: "god is already shutting down"}
		}
		_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Message: fmt.Sprintf("stopping %d jobs", n)})
		select {
		case <-w:
		case <-s.doneCh:
		case <-ctx.Done():
			select {
			case <-w:
			default:
				return control.Response{Error: "cancelled before every job stopped"}
			}
		}
		return control.Response{OK: true, Message: fmt.Sprintf("stopped %d jobs; god exits", n)}
	default:
		return control.Response{Error: fmt.Sprintf("command %q is not supported by this god", req.Cmd)}
	}
}

func errorPart(msg string) string {
	if _, e, ok := strings.Cut(msg, "errors: "); ok {
		return e
	}
	return ""
}

// allJobs is the job list that means every job (`god stop all`, as supervisorctl and pm2 take
// it), unless a job is called that.
const allJobs = "all"

// expandAll replaces "all" in a job list by every job's name, in order.
func (s *Supervisor) expandAll(names []string) []string {
	if !slices.Contains(names, allJobs) {
		return names
	}
	var out []string
	s.call(func() {
		if _, named := s.jobs[allJobs]; named {
			out = names
			return
		}
		for _, n := range names {
			if n != allJobs {
				out = append(out, n)
			}
		}
		for n := range s.jobs {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
		sort.Strings(out)
	})
	return out
}

// suggestJob is ` (did you mean "backend"?)` for the first unknown name a typo away from a job.
func (s *Supervisor) suggestJob(unknown []string) string {
	var names []string
	s.call(func() {
		for n := range s.jobs {
			names = append(names, n)
		}
	})
	sort.Strings(names)
	return control.Suggest(unknown[0], names)
}

// snapshot returns the named jobs' statuses (all when names is empty), or an error naming unknown
// jobs. It runs in the loop, which waits meanwhile: with thousands of jobs the list is sized
// once, and sorted after the loop is free again.
func (s *Supervisor) snapshot(names []string) ([]control.JobStatus, error) {
	var out []control.JobStatus
	var unknown []string
	if !s.call(func() {
		if len(names) == 0 {
			out = make([]control.JobStatus, 0, len(s.jobs))
			for _, h := range s.jobs {
				out = append(out, h.status)
			}
			return
		}
		for _, n := range names {
			if h, ok := s.jobs[n]; ok {
				out = append(out, h.status)
			} else {
				unknown = append(unknown, n)
			}
		}
	}) {
		return nil, fmt.Errorf("god is shutting down")
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("unknown job %s%s", strings.Join(unknown, ", "), s.suggestJob(unknown))
	}
	slices.SortFunc(out, func(a, b control.JobStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (s *Supervisor) handleStatus(names []string) control.Response {
	jobs, err := s.snapshot(names)
	if err != nil {
		return control.Response{Error: err.Error()}
	}
	return control.Response{OK: true, Jobs: withUsage(jobs)}
}

// handleMetrics answers the metrics exporter (cmd/god-metrics) with one control.MetricsSnapshot. It
// works until god's last moment: once the loop has ended the snapshot says so (Live false) and
// still carries the counters.
func (s *Supervisor) handleMetrics() control.Response {
	b, err := json.Marshal(s.Metrics())
	if err != nil {
		return control.Response{Error: fmt.Sprintf("metrics: %v", err)}
	}
	return control.Response{OK: true, Metrics: b}
}

// goal is what one job must reach for a start, stop or restart to be done.
type goal struct {
	name    string
	oldPids map[int]bool
	done    bool
	failed  string
	final   string
	said    string // the last progress line: a job publishes more often than its state changes
}

func (s *Supervisor) handleAct(ctx context.Context, req control.Request, emit func(control.Response) error) control.Response {
	if len(req.Jobs) == 0 {
		return control.Response{OK: true, Message: "no jobs"} // "all" of none
	}
	sub, cancel := s.subscribe()
	defer func() { cancel() }()
	goals := map[string]*goal{}
	var unknown []string
	if !s.call(func() {
		for _, n := range req.Jobs {
			if _, ok := s.jobs[n]; !ok {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 || s.shutting {
			return
		}
		for _, n := range req.Jobs {
			h := s.jobs[n]
			g := &goal{name: n, oldPids: map[int]bool{}}
			for _, p := range h.status.Processes {
				g.oldPids[p.Pid] = true
			}
			goals[n] = g
			switch req.Cmd {
			case control.CmdStart:
				h.userStopped = false
				if h.state.Ready() && h.state != jobstate.StateDone && h.state != jobstate.StateListen || h.state == jobstate.StateDegrade {
					g.done, g.final = true, "already running"
					continue
				}
				h.startSent = true
				h.j.cmds.put(jobCmd{kind: cmdStart})
			case control.CmdStop:
				h.userStopped = true
				if h.state.Down() && !h.startSent {
					g.done, g.final = true, "already "+string(h.state)
					continue
				}
				h.j.cmds.put(jobCmd{kind: cmdStop})
			case control.CmdRestart:
				h.userStopped = false
				h.startSent = !h.state.Running()
				h.j.cmds.put(jobCmd{kind: cmdRestart})
			}
		}
	}) {
		return control.Response{Error: "god is shutting down"}
	}
	if len(unknown) > 0 {
		return control.Response{Error: "unknown job " + strings.Join(unknown, ", ") + s.suggestJob(unknown)}
	}
	if len(goals) == 0 {
		return control.Response{Error: "god is shutting down"}
	}
	for _, g := range goals {
		if g.done {
			_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Job: g.name, Message: g.final})
		}
	}
	for !allReached(goals) {
		select {
		case ev, ok := <-sub:
			if !ok {
				// Fell behind: start over from the current snapshots.
				sub, cancel = s.subscribe()
				jobs, _ := s.snapshot(nil)
				for _, st := range jobs {
					s.judge(req.Cmd, goals[st.Name], jobstate.State(st.State), st, emit)
				}
				continue
			}
			g := goals[ev.name]
			if g == nil || g.done {
				continue
			}
			if ev.removed {
				g.done, g.failed = true, "job was removed"
				continue
			}
			s.judge(req.Cmd, g, ev.state, ev.status, emit)
		case <-ctx.Done():
			return control.Response{Error: "cancelled"}
		case <-s.doneCh:
			return control.Response{Error: "god shut down"}
		}
	}
	var failed []string
	for _, n := range req.Jobs {
		if g := goals[n]; g.failed != "" {
			failed = append(failed, n+": "+g.failed)
		}
	}
	verb := map[string]string{control.CmdStart: "started", control.CmdStop: "stopped", control.CmdRestart: "restarted"}[req.Cmd]
	if len(failed) > 0 {
		return control.Response{Error: strings.Join(failed, "; ")}
	}
	return control.Response{OK: true, Message: fmt.Sprintf("%s %s", verb, strings.Join(req.Jobs, ", "))}
}

// judge updates one goal from a job's new state and reports the step.
func (s *Supervisor) judge(cmd string, g *goal, st jobstate.State, status control.JobStatus, emit func(control.Response) error) {
	if g == nil || g.done {
		return
	}
	msg := string(st)
	if len(status.Processes) > 0 {
		msg += fmt.Sprintf(" (pid %d)", status.Processes[0].Pid)
	}
	if status.Reason != "" {
		msg += ": " + status.Reason
	}
	if msg != g.said {
		g.said = msg
		_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Job: g.name, Message: msg})
	}
	fresh := true
	for _, p := range status.Processes {
		if g.oldPids[p.Pid] {
			fresh = false
		}
	}
	switch cmd {
	case control.CmdStop:
		if st.Down() {
			g.done = true
		}
	case control.CmdStart, control.CmdRestart:
		switch {
		case st.Ready() && st != jobstate.StateListen && (cmd == control.CmdStart || fresh):
			g.done = true
		case st == jobstate.StateExit || st == jobstate.StateBackoff || st == jobstate.StateFailed:
			g.done = true
			g.failed = string(st)
			if status.LastExit != "" {
				g.failed += ": " + status.LastExit
			}
			if status.Reason != "" {
				g.failed += " (" + status.Reason + ")"
			}
			if tail := s.hub.Tail([]string{g.name}, 5); len(tail) > 0 {
				var lines []string
				for _, l := range tail {
					lines = append(lines, l.Msg)
				}
				g.failed += "; last output:\n  " + strings.Join(lines, "\n  ")
			}
		case st == jobstate.StateStopped && cmd == control.CmdStart:
			g.done, g.failed = true, "stopped before it was ready"
		}
	}
}

func allReached(goals map[string]*goal) bool {
	for _, g := range goals {
		if !g.done {
			return false
		}
	}
	return true
}

func (s *Supervisor) handleLogs(ctx context.Context, req control.Request, emit func(control.Response) error) control.Response {
	if len(req.Jobs) > 0 {
		if _, err := s.snapshot(req.Jobs); err != nil {
			return control.Response{Error: err.Error()}
		}
	}
	var follow <-chan joblog.Line
	if req.Follow {
		ch, stop := s.hub.Follow(req.Jobs, 1024)
		defer stop()
		follow = ch
	}
	if resp, ok := s.emitHistory(req, emit); !ok {
		return resp
	}
	if follow == nil {
		return control.Response{OK: true}
	}
	for {
		select {
		case l, ok := <-follow:
			if !ok {
				return control.Response{OK: true}
			}
			if req.Stream != "" && l.Stream != req.Stream && l.Stream != joblog.StreamGod {
				continue
			}
			if err := emit(control.Response{Type: control.TypeLog, Log: toLogLine(l), More: len(follow) > 0}); err != nil {
				return control.Response{Error: err.Error()}
			}
		case <-ctx.Done():
			return control.Response{OK: true}
		}
	}
}

// emitHistory sends the past lines a logs request asks for: the last Lines lines of the ring,
// or, with Since, or with log files when the ring holds fewer lines than asked, the lines since
// then from the files and the ring (joblog.Hub.History). ok is false when sending failed, with
// the result to return.
func (s *Supervisor) emitHistory(req control.Request, emit func(control.Response) error) (control.Response, bool) {
	n := req.Lines
	switch {
	case n < 0:
		return control.Response{}, true // control.NoLines: only what follows
	case n == 0 && req.Since.IsZero():
		n = control.DefaultLines
	}
	// Lines that have others right behind them are marked More, so that the control server
	// sends a burst in a few writes: a follower then keeps up with a chatty job far better.
	send := func(lines []joblog.Line) (control.Response, bool) {
		for i, l := range lines {
			if err := emit(control.Response{Type: control.TypeLog, Log: toLogLine(l), More: i < len(lines)-1}); err != nil {
				return control.Response{Error: err.Error()}, false
			}
		}
		return control.Response{}, true
	}
	if req.Since.IsZero() {
		var tail []joblog.Line
		if req.Stream == "" {
			tail = s.hub.Tail(req.Jobs, n) // at most n: the rings hold fewer when len(tail) < n
		} else {
			tail = s.hub.Tail(req.Jobs, 0) // Tail(0) is every kept line, of both streams
			tail = slices.DeleteFunc(tail, func(l joblog.Line) bool { return l.Stream != req.Stream })
		}
		if s.hub.Files() == nil || len(tail) >= n {
			if len(tail) > n {
				tail = tail[len(tail)-n:]
			}
			return send(tail)
		}
	}
	q := joblog.HistoryQuery{Jobs: req.Jobs, Since: req.Since, Stream: req.Stream}
	formats := map[string]joblog.Format{}
	s.call(func() {
		for name, h := range s.jobs {
			if len(req.Jobs) == 0 {
				q.Jobs = append(q.Jobs, name)
			}
			formats[name] = joblog.Format(h.def.Log)
		}
	})
	if len(req.Jobs) == 0 {
		sort.Strings(q.Jobs)
	}
	q.Format = func(job string) joblog.Format { return formats[job] }
	// Without a count every line is sent as it is read; with one, the last n are kept (a ring of
	// n) and sent at the end.
	var last []joblog.Line
	kept := 0
	for l, err := range s.hub.History(q) {
		if err != nil {
			s.log.Warn("logs: reading log files", "err", err)
			continue
		}
		if n == 0 {
			if err := emit(control.Response{Type: control.TypeLog, Log: toLogLine(l), More: true}); err != nil {
				return control.Response{Error: err.Error()}, false
			}
			continue
		}
		if len(last) < n {
			last = append(last, l)
		} else {
			last[kept%n] = l
		}
		kept++
	}
	if kept > n {
		at := kept % n
		last = slices.Concat(last[at:], last[:at])
	}
	return send(last)
}

func toLogLine(l joblog.Line) *control.LogLine {
	out := &control.LogLine{Time: l.Time, Job: l.Job, Generation: l.Generation, Pid: l.Pid, Stream: l.Stream,
		Level: l.Level.String(), Msg: l.Msg}
	if len(l.Attrs) > 0 {
		out.Attrs = make(map[string]string, len(l.Attrs))
		for _, a := range l.Attrs {
			out.Attrs[a.Key] = a.Value.String()
		}
	}
	return out
}

// handleReload reloads every named job at once and reports each step as it happens. It returns
// once every reload has ended: ok when every new generation serves and every old one is gone.
func (s *Supervisor) handleReload(ctx context.Context, req control.Request, emit func(control.Response) error) control.Response {
	type pending struct {
		name     string
		progress chan string
		done     chan reloadOutcome
	}
	var jobs []*pending
	var unknown []string
	if !s.call(func() {
		for _, n := range req.Jobs {
			if _, ok := s.jobs[n]; !ok {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 {
			return
		}
		for _, n := range req.Jobs {
			p := &pending{name: n, progress: make(chan string, 64), done: make(chan reloadOutcome, 1)}
			jobs = append(jobs, p)
			s.jobs[n].j.cmds.put(jobCmd{kind: cmdReload, reload: &reloadRequest{progress: p.progress, done: p.done}})
		}
	}) {
		return control.Response{Error: "god is shutting down"}
	}
	if len(unknown) > 0 {
		return control.Response{Error: "unknown job " + strings.Join(unknown, ", ") + s.suggestJob(unknown)}
	}
	var failed, done []string
	for _, p := range jobs {
		for finished := false; !finished; {
			select {
			case msg := <-p.progress:
				_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Job: p.name, Message: msg})
			case out := <-p.done:
				// Steps sent before the outcome come first.
				for drained := false; !drained; {
					select {
					case msg := <-p.progress:
						_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Job: p.name, Message: msg})
					default:
						drained = true
					}
				}
				if out.ok {
					done = append(done, p.name)
					_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Job: p.name, Message: "reloaded: " + out.msg})
				} else {
					failed = append(failed, out.msg)
				}
				finished = true
			case <-s.doneCh:
				return control.Response{Error: "god shut down during the reload"}
			}
		}
	}
	if len(failed) > 0 {
		return control.Response{Error: strings.Join(failed, "\n")}
	}
	return control.Response{OK: true, Message: "reloaded " + strings.Join(done, ", ")}
}
