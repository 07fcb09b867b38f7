package jobstate

import (
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// Event is something that happened to a job: the input of [Machine.Step].
type Event interface{ isEvent() }

type (
	// Start: god start, or an auto job whose dependencies are ready.
	Start struct{}
	// Listen: an auto ["socket"] job is to wait for its first connection instead of starting.
	Listen struct{}
	// Readable: a connection or a datagram waits on one of the job's sockets (the watch that
	// [WatchSockets] set up saw it; god accepts nothing).
	Readable struct{}
	// Stop: god stop.
	Stop struct{}
	// Restart: god restart.
	Restart struct{}
	// Kill hurries a stop: SIGKILL now.
	Kill struct{}
	// Remove: the job is no longer defined; stop it, then the machine is done ([Removed]).
	Remove struct{}
	// Define is a new definition from the loader; running processes keep theirs until they restart.
	Define struct{ Def loader.Definition }
	// Spawned is the process a [Spawn] started.
	Spawned struct{ Gen, Instance, Pid int }
	// SpawnFailed is a [Spawn] that could not start its process.
	SpawnFailed struct {
		Gen, Instance int
		Err           error
	}
	// Exited is the end of one of the job's processes. GroupAlive says whether members of its
	// process group were left (a daemon's children, or a successor it named with MAINPID=).
	Exited struct {
		Exit
		GroupAlive bool
	}
	// Checked is the loader's reply to an [AskCheck] (or the error asking it).
	Checked struct {
		Pid, Seq int
		Reply    loader.Message
		Err      error
	}
	// StopAnswered is the loader's stop semantics for one process ([AskStop]).
	StopAnswered struct {
		Pid  int
		Spec loader.Stop
	}
	// Notified is a message on the notify socket from pid, whose process group is SenderPgid
	// (looked up by the actor only when pid is not one of the job's: [Machine.HasPid]).
	Notified struct {
		Pid, SenderPgid int
		Status          *string // STATUS=, when the message has it
		Ready           bool
		Reloading       bool
		Stopping        bool
		Watchdog        bool // WATCHDOG=1
		WatchdogTrigger bool // WATCHDOG=trigger
		MainPid         int
		// ExtendTimeout (EXTEND_TIMEOUT_USEC=) pushes the sender's running start, reload or stop
		// timeout to at least now+ExtendTimeout; 0: none.
		ExtendTimeout time.Duration
	}
	// Adopted is the outcome of an [Adopt]: nil Err, the pid is the job's now.
	Adopted struct {
		Pid int
		Err error
	}
	// GroupGone: a process group the machine watches ([WatchGroup]) is empty.
	GroupGone struct{ Pgid int }
	// Tick: a deadline armed with [Arm] has come.
	Tick struct{}
	// FDsFreed: file descriptors came free in god (a relayed pipe closed). A job waiting to
	// start for want of them (ReasonNoFDs) tries now instead of at its next FDRetry.
	FDsFreed struct{}
	// ReloadAsked: god reload. ID names the request in the [ReloadStep]s and [ReloadDone] for it.
	ReloadAsked struct{ ID int }
	// Defined is the loader's definition asked for a reload ([AskDefine]).
	Defined struct {
		Def loader.Definition
		Err error
	}
	// SocketsSynced is the outcome of a [SyncSockets] with Report set: nil Err, every socket of
	// the new definition is open.
	SocketsSynced struct{ Err error }
	// SignalFailed: a [SignalProc] could not be sent.
	SignalFailed struct {
		Pid int
		Sig syscall.Signal
		Err error
	}
	// Freeze: god is about to re-exec; an exit held back for a MAINPID= is judged now.
	Freeze struct{}
)

func (Start) isEvent()         {}
func (Listen) isEvent()        {}
func (Readable) isEvent()      {}
func (Stop) isEvent()          {}
func (Restart) isEvent()       {}
func (Kill) isEvent()          {}
func (Remove) isEvent()        {}
func (Define) isEvent()        {}
func (Spawned) isEvent()       {}
func (SpawnFailed) isEvent()   {}
func (Exited) isEvent()        {}
func (Checked) isEvent()       {}
func (StopAnswered) isEvent()  {}
func (Notified) isEvent()      {}
func (Adopted) isEvent()       {}
func (GroupGone) isEvent()     {}
func (Tick) isEvent()          {}
func (FDsFreed) isEvent()      {}
func (ReloadAsked) isEvent()   {}
func (Defined) isEvent()       {}
func (SocketsSynced) isEvent() {}
func (SignalFailed) isEvent()  {}
func (Freeze) isEvent()        {}
