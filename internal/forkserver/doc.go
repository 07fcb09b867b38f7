// Package forkserver starts god's children from a small helper process whose fd table is
// nearly empty, so that the cost of a fork does not grow with the number of god's jobs.
//
// fork copies the caller's fd table, and exec then closes every close-on-exec fd of the copy.
// god holds the read ends of its jobs' output pipes: with 5000 jobs, 10 000 fds, each fork+exec
// from god cost about 3 ms of kernel time more than from an empty table (measured here: 0.55 ms
// of the parent's CPU and 2.6 ms of the child's with no fds open, 1.2 ms and 5.1 ms with 10 000),
// and a start of N jobs cost O(N²).
//
// The fork server is god's own binary run with Env set (RunIfRequested, at the top of god's
// main), talking to god over a private SOCK_SEQPACKET socketpair (its fd 3). god sends a
// request (JSON: path, argv, env, directory, process group, identity) with the child's fds
// attached (SCM_RIGHTS); the server forks and execs with CLONE_PARENT, so the child is god's
// own, not the server's: god's reaper waits for it, its SIGCHLD reaches god, and as subreaper or
// PID 1 god inherits what it leaves behind as before. The server replies with the pid or the
// errno of the failed exec.
//
// The server exits when god closes its end of the socket: when god is idle again (Client.Close),
// when god re-executes itself (the end is close-on-exec), and when god dies (kill -9 too).
package forkserver
