// Package fdpass moves sockets between processes for a socket-activating
// supervisor.
//
// It covers four things, one file each:
//
//   - Spec (spec.go, options.go): a declared socket, "NAME=ADDR", as loaders
//     send it in their listen reply, with systemd.socket's options in its query.
//   - Open (open.go, unixsock.go, sockopt.go): the socket (or fifo) god keeps
//     for as long as a job is defined, its options set before bind; Reconfigure
//     changes the options a bound socket can still take. It is returned in blocking mode and wrapped with os.NewFile, so
//     handing it to children never changes the mode of the file description
//     the children share (see the blocking-mode trap in the design notes).
//   - The systemd LISTEN_FDS protocol (listenfds.go, shim.go): the environment
//     of a process that receives sockets, the sockets god received itself, and
//     the shim that sets LISTEN_PID to the job's own pid, which Go cannot do
//     between fork and exec.
//   - SCM_RIGHTS (rights.go, sendrecv.go): sending and receiving fds over unix
//     sockets without losing or leaking any.
package fdpass
