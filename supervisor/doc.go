// Package supervisor is god: it reads loaders, runs and checks jobs, keeps them alive, reloads
// them without downtime, answers the control socket, and upgrades itself in place.
//
// One goroutine owns each piece of state and receives every event on channels (tableflip's
// shape): the Supervisor's loop owns the set of loaders and jobs; each job's goroutine is the
// actor around the job's state machine (job.go around internal/jobstate, which decides
// everything about the job's processes, generations, timers and reloads); the reaper owns every
// wait for a child (internal/reaper). What the loop knows of a job is the status the job publishes
// after each change. docs/architecture.md maps the packages and how an event flows.
//
// Files by concept: backoff.go (the restart rules, as the daemon's flags set them), job.go
// (the job actor, around internal/jobstate), sockets.go (sockets god keeps for jobs),
// notifyroute.go (NOTIFY_SOCKET routing; the server is internal/notify), fds.go (sockets over
// SCM_RIGHTS), internal/loaderpool (loaders; the inotify watch is
// internal/dirwatch), proc.go (starting a process through internal/reaper, relaying its
// output), settings.go (a job's user, umask, limits and env files, resolved at each start; the
// shim is internal/procshim), containment.go (what a job process starts: cgroups, escaped
// daemons), crashfile.go (the file a god started after a crash reads), handler.go (control
// commands), upgrade.go, preflight.go and upgrade_restore.go (re-exec in place).
//
// # Upgrading god
//
// god upgrades itself by re-executing the binary now at its path in place (same pid), not by
// starting a new process that takes the sockets over: jobs stay its children (a new process could
// not wait for them), systemd keeps watching the same pid, and every fd survives the exec once
// its close-on-exec flag is cleared, so no socket closes and no output line is lost. A pre-flight
// run of the new binary must answer a handshake on the state first (preflight.go), or nothing is
// touched; a new image that cannot take over execs the old one again. The state handed
// over is upgradestate.State (internal/upgradestate), JSON in a memfd named by
// GOD_UPGRADE_STATE, versioned by its "version": a god that does not know the version refuses it in the pre-flight.
//
//	{"version": 1, "written": "...", "from": "v1.2.0",
//	 "control_fd": 5, "control_path": "/run/god/god.sock", "notify_fd": 9, "notify_path": "...",
//	 "reply_fd": 12,                       // the `god upgrade` client: the new image answers it
//	 "loaders": [{"path": ..., "ino": ..., "size": ..., "mtime_ns": ..., "jobs": [...]}],
//	 "jobs": [{"name": "backend", "def": {...}, "state": "run", "generation": 3, "restarts": 0,
//	           "sockets": [{"spec": "http=tcp://127.0.0.1:8080", "fd": 7}],
//	           "procs": [{"pid": 812, "pgid": 812, "gen": 3, "started": "...", "ready": true}],
//	           "lingering": [{"pgid": 790, "kill_at": "..."}], ...}],  // groups left by a leader
//	 "pipes": [{"fd": 14, "job": "backend", "pid": 812, "stream": "stdout", "rest": "<partial line>"}],
//	 "exits": [{"pid": 790, "status": 0}],   // reaped by the old image, not yet seen by their job
//	 "logs": [...],                          // recent output lines, for god logs
//	 "helpers": [{"name": "god-metrics", "fds": [16]}]}  // version 2 only: see Helper
//
// Helpers (Helper: the metrics exporter) are stopped just before the exec; their fds (the metrics
// socket) stay open and the new image starts them again on the same fds. A state that carries
// helpers is version 2, which a god from before helpers refuses in its pre-flight; without
// helpers it stays version 1.
package supervisor
