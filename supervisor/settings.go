package supervisor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/envfile"
	"github.com/emielm/watchgod/internal/identity"
	"github.com/emielm/watchgod/internal/procshim"
	"github.com/emielm/watchgod/loader"
)

// procSettings is what a job's definition asks of the environment its processes run in,
// resolved at each start (user, group, groups, umask, limit; env-file is read into the env).
type procSettings struct {
	cred   *identity.Identity // nil: god's own identity
	env    []string           // HOME, USER, LOGNAME, SHELL of the job's user
	umask  *uint32
	limits []loader.Limit
}

// needShim: Go cannot set a umask or limits in the child between fork and exec.
func (p procSettings) needShim() bool { return p.umask != nil || len(p.limits) > 0 }

// shimSpec is p for procshim, for exec of path.
func (p procSettings) shimSpec(path string, listenPid bool) procshim.Spec {
	spec := procshim.Spec{Path: path, Umask: p.umask, ListenPid: listenPid}
	for _, l := range p.limits {
		spec.Limits = append(spec.Limits, procshim.Limit{Resource: l.Resource, Soft: l.Soft, Hard: l.Hard})
	}
	if c := p.cred; c != nil {
		spec.Cred = &procshim.Cred{Uid: c.Uid, Gid: c.Gid, Groups: c.Groups}
	}
	return spec
}

// resolveSettings resolves the job's identity and checks that god may take it on: only root
// switches users. Errors name the job and the user or group.
func resolveSettings(job string, def *loader.Definition) (procSettings, error) {
	p := procSettings{umask: def.Umask, limits: def.Limits}
	root := os.Geteuid() == 0
	if !root {
		// Only root raises a hard limit: say so now rather than from a shim that exits 127.
		for _, l := range def.Limits {
			var cur unix.Rlimit
			if err := unix.Getrlimit(l.Resource, &cur); err == nil && l.Hard > cur.Max {
				return p, fmt.Errorf("job %s: limit %s: above god's hard limit %d, which only root may raise", job, l, cur.Max)
			}
		}
	}
	if def.User == "" && def.Group == "" && def.Groups == nil {
		return p, nil
	}
	id, err := identity.Resolve(def.User, def.Group, def.Groups)
	if err != nil {
		return p, fmt.Errorf("job %s: %w", job, err)
	}
	p.env = id.Env()
	if !root {
		if id.Uid != uint32(os.Geteuid()) || id.Gid != uint32(os.Getegid()) || def.Groups != nil {
			who := def.User
			if who == "" {
				who = def.Group
			}
			return p, fmt.Errorf("job %s: user %q: god runs as uid %d, not root, and cannot switch to another user or group", job, who, os.Geteuid())
		}
		return p, nil // god's own identity already; setgroups would need root
	}
	p.cred = &id
	return p, nil
}

// readEnvFiles reads the job's env-file list, in order, at each start of a process (a reload
// or restart sees the files as they are now). A missing optional file is skipped.
func readEnvFiles(job string, files []loader.EnvFile) ([]string, error) {
	var env []string
	for _, f := range files {
		items, err := envfile.Read(f.Path)
		if err != nil {
			if f.Optional && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("job %s: env-file %w", job, err)
		}
		env = append(env, items...)
	}
	return env, nil
}
