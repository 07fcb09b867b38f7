package jobstate

import (
	"time"

	"github.com/emielm/watchgod/loader"
)

// Job is the state of one job that outlives god's image: the machine works on it, god's upgrade
// encodes it as it is, and the new image's machine goes on from it (see [Restore]). Its JSON
// names are those of the upgrade state's first versions, so an older god's state still reads.
type Job struct {
	Name       string            `json:"name"`
	Loader     string            `json:"loader"`
	Def        loader.Definition `json:"def"`
	State      State             `json:"state"`
	Reason     string            `json:"reason,omitempty"`
	Since      time.Time         `json:"since"`
	Generation int               `json:"generation"`  // the generation that serves (or will, once started)
	GenCounter int               `json:"gen_counter"` // highest generation number handed out
	Restarts   int               `json:"restarts"`
	Fails      int               `json:"fails"` // quick failures in a row
	LastExit   string            `json:"last_exit,omitempty"`
	LastCheck  string            `json:"last_check,omitempty"`
	StatusText string            `json:"status_text,omitempty"`
	LastReload string            `json:"last_reload,omitempty"`
	After      After             `json:"after"`
	RespawnAt  time.Time         `json:"respawn_at"`          // back-off: when the missing instances start again
	RetryAt    time.Time         `json:"retry_at,omitzero"`   // failed by flapping: when it tries again (cool-down)
	Procs      []*Proc           `json:"procs,omitempty"`     // in the order they started
	Lingering  []Linger          `json:"lingering,omitempty"` // groups left by their leader, being ended
}

// Proc is one process of a job.
type Proc struct {
	Pid        int       `json:"pid"`
	Pgid       int       `json:"pgid"` // its process group (differs from Pid for a MAINPID that took over)
	Generation int       `json:"gen"`
	Instance   int       `json:"instance"`
	Started    time.Time `json:"started"`
	Ready      bool      `json:"ready,omitempty"`
	ReadySince time.Time `json:"ready_since,omitzero"` // when it became ready: min-uptime counts from here
	Degraded   bool      `json:"degraded,omitempty"`
	Stopping   bool      `json:"stopping,omitempty"`    // a stop is under way: its exit is expected
	Failed     string    `json:"failed,omitempty"`      // why god stopped it as failed (check fail, watchdog, start timeout)
	HandedOver bool      `json:"handed_over,omitempty"` // it named another pid MAINPID: its exit is not the job's
	KillAt     time.Time `json:"kill_at"`               // SIGKILL deadline while stopping
	NoCheck    bool      `json:"no_check,omitempty"`    // the loader defines no check for this job
	CheckAt    time.Time `json:"check_at,omitzero"`     // next check (zero: none scheduled)
	ReadyAt    time.Time `json:"ready_at,omitzero"`     // ready: delay ends
	StartBy    time.Time `json:"start_by,omitzero"`     // not ready by then: failed
	WatchdogAt time.Time `json:"watchdog_at,omitzero"`  // no WATCHDOG=1 by then: failed (armed once ready)

	checking bool // a check is on its way (not carried: the new image asks again)
	checkSeq int
	def      *loader.Definition // the definition it was started with
}

// Linger is a process group whose leader exited while members were left: SIGTERM went out, and
// at KillAt it gets SIGKILL.
type Linger struct {
	Pgid   int       `json:"pgid"`
	KillAt time.Time `json:"kill_at"`
	Killed bool      `json:"killed,omitempty"` // SIGKILL sent; KillAt is when god gives up on it
}

// After says what a stopping job does once its processes are gone.
type After int

const (
	AfterStopped After = iota // stay stopped
	AfterStart                // start again (restart command, reload mode restart)
	AfterFailed               // stay failed (flapping with several instances)
	AfterRemove               // the job is forgotten
)

// Def is the definition the process was started with.
func (p *Proc) Def() *loader.Definition { return p.def }

// clone copies a job deeply enough that the copy shares nothing the machine changes.
func (j *Job) clone() Job {
	c := *j
	c.Procs = make([]*Proc, len(j.Procs))
	for i, p := range j.Procs {
		q := *p
		q.checking, q.checkSeq, q.def = false, 0, nil
		c.Procs[i] = &q
	}
	c.Lingering = append([]Linger(nil), j.Lingering...)
	return c
}
