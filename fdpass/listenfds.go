package fdpass

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
)

// ListenFdsStart is the first fd of the LISTEN_FDS protocol
// (SD_LISTEN_FDS_START): a process that gets n sockets has them as fds
// 3 to 3+n-1, in declared order.
const ListenFdsStart = 3

// Env returns the environment entries for a process that receives
// len(names) files as fds 3, 4, ...: "LISTEN_FDS=n" and
// "LISTEN_FDNAMES=a:b". LISTEN_FDNAMES is left out when every name is
// empty; an empty name among others stays empty (readers then use their own
// default for it). Names must not contain ':' (ValidName guarantees it).
// For no names, Env returns nil.
//
// LISTEN_PID is not included: it must be the pid of the process that reads
// it, which is only known after fork. See ShimArgv.
func Env(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	env := []string{"LISTEN_FDS=" + strconv.Itoa(len(names))}
	for _, n := range names {
		if n != "" {
			return append(env, "LISTEN_FDNAMES="+strings.Join(names, ":"))
		}
	}
	return env
}

// Inherited takes the fds this process got from its parent through
// LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES and returns them by name. It
// exists so that god, started by systemd or re-executed by itself, reuses
// the sockets it was given (see Matches) instead of opening new ones.
//
// It calls go-systemd's activation.Files(true) once: the fds are set
// close-on-exec and the three variables are unset, so a second call returns
// an empty map. A name may repeat; all its files are kept, in fd order. An
// fd without a name is keyed "LISTEN_FD_<fd>". When LISTEN_PID is not this
// process's pid, or LISTEN_FDS is missing or invalid, the map is empty and
// the fds, if any, are left alone (god should mark unknown fds
// close-on-exec, so jobs do not inherit them). The files are left in the
// blocking mode they arrived in; os.NewFile makes Fd() leave it alone. The
// map is never nil.
func Inherited() map[string][]*os.File {
	files := activation.Files(true)
	m := make(map[string][]*os.File, len(files))
	for _, f := range files {
		m[f.Name()] = append(m[f.Name()], f)
	}
	return m
}

// keepAlive keeps f (and so its fd) open until the call site is reached.
func keepAlive(f *os.File) { runtime.KeepAlive(f) }
