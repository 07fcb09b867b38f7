package supervisor

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
)

// jobSocket is one listening socket god keeps for a job. god never accepts on it: it only holds a
// copy so the socket, and the connections queued in it, outlive every process of the job.
type jobSocket struct {
	spec    fdpass.Spec
	file    *os.File
	adopted bool   // received from god's own parent (socket activation): not god's to unlink
	key     string // spec.String() while syncSockets runs
}

// sameAddress returns the socket among have with spec's name, kind and address, or nil: the
// socket a changed option or permission would otherwise replace.
func sameAddress(have map[string]*jobSocket, spec fdpass.Spec) *jobSocket {
	for _, s := range have {
		if s.spec.Name == spec.Name && s.spec.Network == spec.Network && s.spec.Address == spec.Address {
			return s
		}
	}
	return nil
}

// respec turns the open socket s into one for spec in place when it can: a socket from god's
// parent is kept as it is (its parent set its options), and god's own gets the options and
// permissions a bound socket can still change (fdpass.Reconfigure), keeping its queue. It
// reports whether s now stands for spec; an error names the job and the option refused.
func (j *job) respec(s *jobSocket, spec fdpass.Spec) (bool, error) {
	if s.adopted {
		j.log.Info("socket from god's parent kept as it is; its options are its parent's", "socket", spec.String())
		s.spec = spec
		return true, nil
	}
	ok, err := fdpass.Reconfigure(s.file, s.spec, spec)
	if err != nil {
		return true, fmt.Errorf("job %s: %w (kept %s as it was)", j.name, err, s.spec)
	}
	if ok {
		j.log.Info("socket reconfigured in place", "socket", spec.String(), "was", s.spec.String())
		s.spec = spec
	}
	return ok, nil
}

// inheritedSockets are the sockets god got from its parent (LISTEN_FDS), waiting for the job that
// declares their name. Job goroutines take from it, so it has a lock of its own.
type inheritedSockets struct {
	mu    sync.Mutex
	files map[string][]*os.File
}

// take returns an inherited socket named like spec that is of spec's kind, or nil.
func (in *inheritedSockets) take(spec fdpass.Spec) *os.File {
	if in == nil {
		return nil
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	list := in.files[spec.Name]
	for i, f := range list {
		if fdpass.Matches(f, spec) {
			in.files[spec.Name] = append(list[:i:i], list[i+1:]...)
			return f
		}
	}
	return nil
}

// syncSockets makes the job's sockets match its definition: a socket whose spec is unchanged stays
// open (restarts and reloads never close it), a new one is opened, a dropped one is closed. It
// returns an error naming the job and the address of every socket that could not be opened; the
// others are kept.
func (j *job) syncSockets() error {
	d := j.m.Def()
	return j.syncSocketsFor(d.Listen, d.User, d.Group)
}

// syncSocketsFor is syncSockets for a given listen list (a reload's new definition). A unix
// socket file whose address sets no owner (group) gets the job's user (group), if it has one:
// the job's processes, running as that user, can then connect to and remove it.
func (j *job) syncSocketsFor(listen []string, user, group string) error {
	var want []fdpass.Spec
	var errs []error
	for _, item := range listen {
		spec, err := fdpass.ParseSpec(item)
		if err != nil {
			errs = append(errs, fmt.Errorf("job %s: listen: %w", j.name, err))
			continue
		}
		if spec.IsFile() { // sockets and fifos with a path; an abstract socket has no file to own
			if spec.Owner == "" {
				spec.Owner = user
			}
			if spec.Group == "" {
				spec.Group = group
			}
		}
		want = append(want, spec)
	}
	have := make(map[string]*jobSocket, len(j.socks))
	for _, s := range j.socks {
		s.key = s.spec.String()
		have[s.key] = s
	}
	var next []*jobSocket
	for _, spec := range want {
		key := spec.String()
		if s, ok := have[key]; ok {
			next = append(next, s)
			delete(have, key)
			continue
		}
		old := sameAddress(have, spec)
		if old != nil {
			kept, err := j.respec(old, spec)
			if err != nil {
				errs = append(errs, err)
			}
			if kept {
				next = append(next, old)
				delete(have, old.key)
				continue
			}
		}
		s := &jobSocket{spec: spec}
		if f := j.sup.inherited.take(spec); f != nil {
			s.file, s.adopted = f, true
			j.log.Info("using socket from god's parent", "socket", key)
		} else {
			f, err := fdpass.Open(spec)
			if err != nil {
				if old != nil {
					// The old socket still holds the address: keep it rather than leave the job
					// without one.
					err = fmt.Errorf("%w (kept %s as it was)", err, old.spec)
					next = append(next, old)
					delete(have, old.key)
				}
				errs = append(errs, fmt.Errorf("job %s: %w", j.name, err))
				continue
			}
			s.file = f
		}
		next = append(next, s)
	}
	for _, s := range have {
		s.close()
	}
	j.socks = next
	return errors.Join(errs...)
}

// close releases god's copy; a unix socket file or fifo god created is removed with it.
func (s *jobSocket) close() {
	s.file.Close()
	if !s.adopted && s.spec.IsFile() {
		os.Remove(s.spec.Address)
	}
}

func (j *job) closeSockets() {
	for _, s := range j.socks {
		s.close()
	}
	j.socks = nil
}

// socketFiles returns the fds to hand to a process as 3.., and their names.
func (j *job) socketFiles() ([]uintptr, []string) {
	fds := make([]uintptr, 0, len(j.socks))
	names := make([]string, 0, len(j.socks))
	for _, s := range j.socks {
		fd, err := fdpass.RawFd(s.file)
		if err != nil {
			continue
		}
		fds = append(fds, uintptr(fd))
		names = append(names, s.spec.Name)
	}
	return fds, names
}

// socketList is the job's sockets as "NAME=ADDR", for status.
func (j *job) socketList() []string {
	out := make([]string, 0, len(j.socks))
	for _, s := range j.socks {
		out = append(out, s.spec.String())
	}
	return out
}

// socketCopies are duplicates of a job's sockets, owned by whoever asked for them.
type socketCopies struct {
	names []string
	files []*os.File
	err   error
}

// copySockets duplicates the job's sockets (close-on-exec) for sending to a peer.
func (j *job) copySockets() socketCopies {
	var out socketCopies
	if j.sockErr != nil {
		out.err = j.sockErr
	}
	for _, s := range j.socks {
		fd, err := fdpass.RawFd(s.file)
		if err == nil {
			fd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		}
		if err != nil {
			for _, f := range out.files {
				f.Close()
			}
			return socketCopies{err: fmt.Errorf("job %s: socket %s: %w", j.name, s.spec.Name, err)}
		}
		out.names = append(out.names, s.spec.Name)
		out.files = append(out.files, os.NewFile(uintptr(fd), s.spec.String()))
	}
	return out
}

// openSockets syncs the job's sockets with its definition and logs what could not be opened.
func (j *job) openSockets() {
	d := j.m.Def()
	j.openSocketsFor(d.Listen, d.User, d.Group)
}

// openSocketsFor is openSockets for a given listen list.
func (j *job) openSocketsFor(listen []string, user, group string) {
	err := j.syncSocketsFor(listen, user, group)
	if err != nil && (j.sockErr == nil || err.Error() != j.sockErr.Error()) {
		j.log.Error("socket", "err", err)
	}
	j.sockErr = err
}
