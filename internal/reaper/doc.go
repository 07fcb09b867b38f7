// Package reaper is the one place in god that starts and waits for child processes.
//
// A process has one parent and one wait: a second one (exec.Cmd.Wait beside a wait4(-1)) would
// steal exit statuses. god reaps on SIGCHLD, every child it starts (Start, StartFunc) is
// registered under the lock the reaping takes, so an exit that comes at once still finds its
// owner, and it reaps the orphans it inherits as a subreaper (BecomeSubreaper) or as PID 1,
// remembering them a while for a job that names one of them later (Adopt, Watch). Signals go
// through it so they never reach a pid that was reaped and reused. For god's re-exec in place it
// can freeze (Freeze, Thaw, Reaped) and start again in the new image knowing the children it
// inherited (NewRestored, Claim).
//
// Each exit is handed to a callback that must not block; what the exit means is decided by its
// owner (a job's state machine, a loader pool, a helper).
package reaper
