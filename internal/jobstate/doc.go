// Package jobstate is the job state machine of god: every decision about one job, with no I/O.
//
// A [Machine] receives events (a command, a process exit, a check reply, a notify message, the
// passing of a deadline) together with the current time, and returns effects: start a process,
// signal a process group, ask the loader something, publish the job's status, arm the next
// deadline. A thin actor in the supervisor runs the effects and feeds their results back as
// events (a started process comes back as [Spawned]). Because the current time is an argument and
// the effects are values, the machine runs on a fake clock in tests, in-process, with no sleeps.
//
// Every change of state goes through one function, which checks the move against [Transitions]:
// the table docs/states.md draws. The state that must survive god's re-exec is [Job] (and [Proc]
// for each process), the same struct the machine works on: an upgrade encodes it, the new image
// decodes it and [Restore] gives back a machine whose every deadline is armed by construction.
package jobstate
