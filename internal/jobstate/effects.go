package jobstate

import (
	"log/slog"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// Effect is something the machine wants done: the output of [Machine.Step], run by the actor in
// order. Effects whose outcome matters come back as events ([Spawn] as [Spawned] or
// [SpawnFailed], [Adopt] as [Adopted], ...).
type Effect interface{ isEffect() }

type (
	// Spawn starts one process of generation Gen with Def.
	Spawn struct {
		Gen, Instance int
		Def           *loader.Definition
	}
	// SignalGroup signals a process group (and what the job's containment holds with it).
	SignalGroup struct {
		Pgid int
		Sig  syscall.Signal
	}
	// SignalProc signals one process (a reload by signal); failure comes back as [SignalFailed].
	SignalProc struct {
		Pid int
		Sig syscall.Signal
	}
	// AskCheck asks the loader for one process's health; the reply comes back as [Checked].
	AskCheck struct{ Pid, Seq int }
	// AskStop asks the loader how to stop one process; the answer comes back as [StopAnswered].
	AskStop struct{ Pid int }
	// AskDefine asks the loader for the job's definition (a reload); it comes back as [Defined].
	AskDefine struct{}
	// Adopt makes a MAINPID= the job's process; the outcome comes back as [Adopted]. From is the
	// process it takes over from, whose output it may have inherited.
	Adopt struct{ Pid, Pgid, From int }
	// WatchGroup reports [GroupGone] once the group is empty (at once if it is already).
	WatchGroup struct{ Pgid int }
	// SyncSockets opens the sockets of Listen and closes the job's others; with Report set the
	// outcome comes back as [SocketsSynced]. Unix sockets are owned by the job's user and group.
	SyncSockets struct {
		Listen []string
		// User and Group own the job's unix socket files whose address names no owner or group.
		User, Group string
		Report      bool
	}
	// WatchSockets, On, watches the job's listening sockets (without accepting) and reports the
	// first one that is readable as [Readable], once; a new watch replaces the one before (the
	// sockets may have changed). Off ends the watch.
	WatchSockets struct{ On bool }
	// Hook sends on<State> (and its arguments) to the loader; the reply is ignored.
	Hook struct{ Args []string }
	// Publish tells the supervisor the job's status ([Machine.Status]); Def is set when the job's
	// definition changed on its own (a reload).
	Publish struct{ Def *loader.Definition }
	// Log writes a line about the job.
	Log struct {
		Level slog.Level
		Msg   string
		Args  []any
	}
	// Forward sends a command to another job (a check's ["@JOB", CMD]).
	Forward struct {
		Target  string
		Command []string
	}
	// Restarted counts a restart.
	Restarted struct{}
	// ReloadStep is progress of reload ID, for the client that asked.
	ReloadStep struct {
		ID  int
		Msg string
	}
	// ReloadDone ends reload ID. NewPids are the new generation's processes, whose last output a
	// failure shows.
	ReloadDone struct {
		ID      int
		OK      bool
		Msg     string
		NewPids []int
		Took    time.Duration
		Counted bool // a reload that ran (not one refused at once): metrics count it
	}
	// Arm sets the job's one timer: a [Tick] at At. Zero At: no deadline.
	Arm struct{ At time.Time }
	// Removed: the job is removed and its processes are gone; the actor ends.
	Removed struct{}
)

func (Spawn) isEffect()        {}
func (SignalGroup) isEffect()  {}
func (SignalProc) isEffect()   {}
func (AskCheck) isEffect()     {}
func (AskStop) isEffect()      {}
func (AskDefine) isEffect()    {}
func (Adopt) isEffect()        {}
func (WatchGroup) isEffect()   {}
func (SyncSockets) isEffect()  {}
func (WatchSockets) isEffect() {}
func (Hook) isEffect()         {}
func (Publish) isEffect()      {}
func (Log) isEffect()          {}
func (Forward) isEffect()      {}
func (Restarted) isEffect()    {}
func (ReloadStep) isEffect()   {}
func (ReloadDone) isEffect()   {}
func (Arm) isEffect()          {}
func (Removed) isEffect()      {}
