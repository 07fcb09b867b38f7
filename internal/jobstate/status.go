package jobstate

import (
	"slices"

	"github.com/emielm/watchgod/loader"
	"github.com/emielm/watchgod/supervisor/control"
)

// Name is the job's name.
func (m *Machine) Name() string { return m.j.Name }

// State is where the job is.
func (m *Machine) State() State { return m.j.State }

// Def is the job's current definition.
func (m *Machine) Def() *loader.Definition { return &m.j.Def }

// Snapshot is the job's state to carry across god's re-exec, a copy that shares nothing with the
// machine.
func (m *Machine) Snapshot() Job { return m.j.clone() }

// HasPid reports whether pid is one of the job's processes.
func (m *Machine) HasPid(pid int) bool { return m.proc(pid) != nil }

// PgidOf is the process group of the job's process pid, 0 if it has no such process.
func (m *Machine) PgidOf(pid int) int {
	if p := m.proc(pid); p != nil {
		return p.Pgid
	}
	return 0
}

// UsesGroup reports whether a process of the job, or a group it watches, is in process group pgid.
func (m *Machine) UsesGroup(pgid int) bool {
	for _, p := range m.j.Procs {
		if p.Pgid == pgid {
			return true
		}
	}
	for _, l := range m.j.Lingering {
		if l.Pgid == pgid {
			return true
		}
	}
	return m.handover != nil && m.handover.p.Pgid == pgid
}

// Groups are the process groups of the job's processes whose leader is not one of them (the
// groups of MAINPID successors), for the supervisor's routing of notify messages.
func (m *Machine) Groups() []int {
	var groups []int
	for _, p := range m.j.Procs {
		if m.proc(p.Pgid) == nil && !slices.Contains(groups, p.Pgid) {
			groups = append(groups, p.Pgid)
		}
	}
	return groups
}

// Status is what `god status` shows of the job; sockets are its sockets as NAME=ADDR.
func (m *Machine) Status(sockets []string) control.JobStatus {
	j := &m.j
	st := control.JobStatus{
		Name: j.Name, Loader: j.Loader, State: string(j.State), Reason: j.Reason, Generation: j.Generation,
		Since: j.Since, Restarts: j.Restarts, LastExit: j.LastExit, Check: j.LastCheck, Sockets: sockets,
		Status: j.StatusText, Reload: j.LastReload, User: j.Def.User,
	}
	switch {
	case j.State == StateBackoff && !j.RespawnAt.IsZero():
		st.Next = j.RespawnAt
	case j.State == StateFailed && !j.RetryAt.IsZero():
		st.Next = j.RetryAt
	}
	for _, p := range j.Procs {
		ps := control.ProcessStatus{Pid: p.Pid, Generation: p.Generation, Instance: p.Instance, Started: p.Started, State: "starting"}
		switch {
		case p.Stopping:
			ps.State = "stopping"
		case p.Degraded:
			ps.State = "degraded"
		case p.Ready:
			ps.State = "ready"
		}
		st.Processes = append(st.Processes, ps)
	}
	slices.SortStableFunc(st.Processes, func(a, b control.ProcessStatus) int {
		if a.Generation != b.Generation {
			return a.Generation - b.Generation
		}
		return a.Instance - b.Instance
	})
	return st
}
