package jobstate

// State is where a job is in its life. The godv1 states are wait, start, run, degrade, exit, stop,
// stopped and done; god adds listen, backoff and failed. On entering a state god sends on<State> to the
// job's loader (onWait, onStart, ..., onBackoff, onFailed).
type State string

const (
	StateWait    State = "wait"    // defined, not running: manual, or waiting for its dependencies
	StateListen  State = "listen"  // no process: god watches its sockets and starts it on the first connection (auto ["socket"])
	StateStart   State = "start"   // a process runs but is not ready yet
	StateRun     State = "run"     // ready and healthy
	StateDegrade State = "degrade" // its check says unhealthy but serving
	StateExit    State = "exit"    // its process just exited (passing: the next state follows at once)
	StateBackoff State = "backoff" // waiting out the restart delay
	StateStop    State = "stop"    // being stopped: signal sent, waiting for the process group to end
	StateStopped State = "stopped" // stopped on request
	StateDone    State = "done"    // exited 0 while starting (one-shot), or exited 0 with restart on-failure/never
	StateFailed  State = "failed"  // not restarted now: flapping (retried after the cool-down), restart never, or it cannot start
)

// States lists every state, in the order docs/states.md describes them.
var States = []State{StateWait, StateListen, StateStart, StateRun, StateDegrade, StateExit, StateBackoff, StateStop, StateStopped, StateDone, StateFailed}

// Running reports whether the job has (or is about to have) a process.
func (s State) Running() bool {
	switch s {
	case StateStart, StateRun, StateDegrade, StateStop:
		return true
	}
	return false
}

// Ready reports godv1 readiness: dependents may start. A job that listens is ready for them: its
// sockets are open, and their first connection starts it.
func (s State) Ready() bool { return s == StateRun || s == StateDone || s == StateListen }

// Down reports a state with no process that stays so until told otherwise. listen is not down: a
// connection starts it by itself, so a shutdown or `god stop` must still end it.
func (s State) Down() bool {
	switch s {
	case StateWait, StateStopped, StateDone, StateFailed:
		return true
	}
	return false
}

// Hook is the loader property sent on entering s: onWait, onStart, ...
func (s State) Hook() string { return "on" + string(s[0]-'a'+'A') + string(s[1:]) }
