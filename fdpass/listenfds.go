package fdpass

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
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
// It reads the protocol as go-systemd's activation.Files(true) does, which
// god used before: the fds are set close-on-exec and the three variables
// are unset, so a second call returns an empty map. A name may repeat; all
// its files are kept, in fd order. An fd without a name (LISTEN_FDNAMES
// shorter than LISTEN_FDS, or an empty name) is keyed "LISTEN_FD_<fd>". When
// LISTEN_PID is not this process's pid, or LISTEN_FDS is missing or invalid,
// the map is empty and the fds, if any, are left alone (god should mark
// unknown fds close-on-exec, so jobs do not inherit them). Unlike
// activation.Files, an fd that is not open is skipped rather than wrapped,
// so a LISTEN_FDS larger than what was passed cannot make up files. The
// files are left in the blocking mode they arrived in; os.NewFile makes
// Fd() leave it alone. The map is never nil.
//
// Why not activation.Files: that package also holds TLSListeners, and
// linking it pulls crypto/tls into god's daemon, 1.3 MB of binary and
// about 0.8 MiB of resident memory for nothing god does. Jobs keep using
// activation (see the root package's Listener).
func Inherited() map[string][]*os.File {
	defer func() {
		os.Unsetenv("LISTEN_PID")
		os.Unsetenv("LISTEN_FDS")
		os.Unsetenv("LISTEN_FDNAMES")
	}()
	m := make(map[string][]*os.File)
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return m
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return m
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && uint64(n) > lim.Cur {
		n = int(lim.Cur) // no fd beyond the limit can be open
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	for i := 0; i < n; i++ {
		fd := ListenFdsStart + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			continue // not open: nothing to take
		}
		unix.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		m[name] = append(m[name], os.NewFile(uintptr(fd), name))
	}
	return m
}

// keepAlive keeps f (and so its fd) open until the call site is reached.
func keepAlive(f *os.File) { runtime.KeepAlive(f) }
