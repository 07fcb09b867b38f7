package supervisor

import "github.com/emielm/watchgod/internal/jobstate"

// State is where a job is in its life; the machine that moves it is internal/jobstate, and
// docs/states.md draws its table.
type State = jobstate.State

const (
	StateWait    = jobstate.StateWait
	StateListen  = jobstate.StateListen
	StateStart   = jobstate.StateStart
	StateRun     = jobstate.StateRun
	StateDegrade = jobstate.StateDegrade
	StateExit    = jobstate.StateExit
	StateBackoff = jobstate.StateBackoff
	StateStop    = jobstate.StateStop
	StateStopped = jobstate.StateStopped
	StateDone    = jobstate.StateDone
	StateFailed  = jobstate.StateFailed
)

// Exit is how a process ended, as the kernel reported it to the one wait in god
// (internal/reaper); it is the state machine's type, since a job's exits go straight to it.
type Exit = jobstate.Exit
