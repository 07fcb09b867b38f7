package jobstate

import (
	"fmt"
	"strings"
)

// Transition is one move the machine may make, and why it makes it.
type Transition struct {
	From, To State
	Why      string
}

// Transitions is the whole state machine: the only moves [Machine] makes. A move that is not here
// is a bug; it panics in a machine built with Strict (the tests) and is logged otherwise.
// docs/states.md draws this table (TestStatesDocMatchesTable keeps them equal).
var Transitions = []Transition{
	{StateWait, StateStart, "auto (dependencies ready) / god start"},
	{StateWait, StateListen, "auto socket: waits for the first connection"},
	{StateListen, StateStart, "a connection or datagram waits on a socket / god start"},
	{StateListen, StateStopped, "god stop"},
	{StateListen, StateBackoff, "cannot start (exec, socket): retry after a delay"},
	{StateListen, StateFailed, "cannot start, too often in a row"},
	{StateWait, StateBackoff, "cannot start (exec, socket): retry after a delay"},
	{StateWait, StateFailed, "cannot start, too often in a row"},
	{StateStart, StateRun, "every process ready (first check ok, no check, READY=1, or delay)"},
	{StateStart, StateDegrade, "ready, but a check says degrade"},
	{StateStart, StateExit, "a process exited"},
	{StateStart, StateStop, "god stop / restart, flapping"},
	{StateRun, StateDegrade, "check says degrade"},
	{StateRun, StateStart, "an instance is missing (restarting) or not ready"},
	{StateRun, StateExit, "a process exited"},
	{StateRun, StateStop, "god stop / restart, flapping"},
	{StateDegrade, StateRun, "check says ok"},
	{StateDegrade, StateStart, "an instance is missing (restarting) or not ready"},
	{StateDegrade, StateExit, "a process exited"},
	{StateDegrade, StateStop, "god stop / restart, flapping"},
	{StateExit, StateStart, "restart now: the process was ready and ran min-uptime, or first quick failure"},
	{StateExit, StateBackoff, "further quick failure: restart after the delay"},
	{StateExit, StateDone, "exit 0 while starting (one-shot), or success with restart on-failure/never"},
	{StateExit, StateFailed, "flapping (restart-limit quick failures), restart never, or restart prevented"},
	{StateExit, StateStop, "flapping while other instances run"},
	{StateExit, StateListen, "auto socket: exit 0 (idle), sleeps until the next connection"},
	{StateBackoff, StateStart, "delay over / god start"},
	{StateBackoff, StateStopped, "god stop"},
	{StateBackoff, StateFailed, "cannot start, too often in a row"},
	{StateBackoff, StateStop, "god stop while an old process is still going"},
	{StateBackoff, StateRun, "a reload's new generation took over, ready"},
	{StateBackoff, StateDegrade, "a reload's new generation took over, degraded"},
	{StateStop, StateStopped, "every process and process group gone"},
	{StateStop, StateStart, "restart: the old processes are gone"},
	{StateStop, StateFailed, "flapping: the last processes are gone"},
	{StateStop, StateBackoff, "restart: cannot start, retry after a delay"},
	{StateStopped, StateStart, "god start"},
	{StateStopped, StateBackoff, "cannot start (exec, socket): retry after a delay"},
	{StateStopped, StateFailed, "cannot start, too often in a row"},
	{StateDone, StateStart, "god start"},
	{StateDone, StateBackoff, "cannot start (exec, socket): retry after a delay"},
	{StateDone, StateFailed, "cannot start, too often in a row"},
	{StateFailed, StateStart, "god start / loader redefines the job / cool-down over"},
	{StateFailed, StateBackoff, "cannot start (exec, socket): retry after a delay"},
	{StateFailed, StateListen, "auto socket: loader redefines the job"},
}

// allowed[from][to] is Transitions as a lookup table.
var allowed = func() map[State]map[State]bool {
	t := map[State]map[State]bool{}
	for _, tr := range Transitions {
		if t[tr.From] == nil {
			t[tr.From] = map[State]bool{}
		}
		t[tr.From][tr.To] = true
	}
	return t
}()

// Allowed reports whether the machine may move from one state to another.
func Allowed(from, to State) bool { return allowed[from][to] }

// Mermaid draws Transitions as the stateDiagram-v2 of docs/states.md.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n")
	b.WriteString("    [*] --> wait: defined by a loader\n")
	for _, tr := range Transitions {
		fmt.Fprintf(&b, "    %s --> %s: %s\n", tr.From, tr.To, tr.Why)
	}
	b.WriteString("    stopped --> [*]: job no longer defined\n")
	return b.String()
}

// MarkdownTable lists Transitions as a markdown table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| from | to | when |\n|---|---|---|\n")
	for _, tr := range Transitions {
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", tr.From, tr.To, tr.Why)
	}
	return b.String()
}
