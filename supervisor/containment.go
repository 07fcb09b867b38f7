package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/emielm/watchgod/internal/cgroup"
	"github.com/emielm/watchgod/internal/jobstate"
	"github.com/emielm/watchgod/internal/procfs"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/upgradestate"
	"github.com/emielm/watchgod/loader"
)

// containment keeps hold of every process a job starts, including daemons that leave its process
// group (setsid, double fork). Each job process is a *unit*, named by its process group (the
// leader's pid); signalling a unit and asking whether it is alive cover all of it:
//
//   - cgroup mode (god --cgroup DIR, a writable cgroup v2 directory): every job process starts in
//     a cgroup of its own (DIR/JOB.N); nothing can leave it, SIGKILL is cgroup.kill, and the
//     unit is alive while the cgroup is populated.
//   - subreaper mode (no cgroup): god is the child subreaper, so a process whose parent dies is
//     reparented to god. Every job process carries GOD_UNIT=N in its environment, which its
//     descendants inherit; each time god reaps a child (the moment its children were reparented)
//     it looks at its unknown children and attributes each to its unit by that tag. A process
//     that escaped its group and cleared its environment is the one that gets away.
type containment struct {
	root   *cgroup.Root // nil: subreaper mode
	reaper *reaper.Reaper
	log    *slog.Logger

	mu    sync.Mutex
	seq   uint64
	units map[int]*unit    // by process group
	byTag map[uint64]*unit // by GOD_UNIT

	adopting map[int]bool // pids a job is adopting as its main process (release): scan leaves them

	rescans       int  // rescans in a row of a child found in an exec (rescanLater)
	rescanPending bool // a rescan is armed

	// Shared scans (scan): one runs at a time; scanDone wakes those waiting for the next.
	scanMu                      sync.Mutex
	scanDone                    *sync.Cond
	scanning                    bool
	scansStarted, scansFinished uint64
}

// unit is one job process and everything it started.
type unit struct {
	tag     uint64
	job     string
	pgid    int
	escaped map[int]bool  // processes out of its group, reparented to god (subreaper mode)
	group   *cgroup.Group // cgroup mode
}

// envUnit tags every job process's environment with its unit.
const envUnit = "GOD_UNIT"

func newContainment(root *cgroup.Root, r *reaper.Reaper, log *slog.Logger) *containment {
	c := &containment{root: root, reaper: r, log: log, units: map[int]*unit{}, byTag: map[uint64]*unit{},
		adopting: map[int]bool{}}
	if r != nil {
		r.SetOnReap(c.scan)
	}
	return c
}

// mode names the containment mode, for god's log.
func (c *containment) mode() string {
	if c.root != nil {
		return "cgroup " + c.root.Dir
	}
	return "subreaper"
}

// placement is a unit being started: its tag and, in cgroup mode, its cgroup's fd.
type placement struct {
	tag   uint64
	job   string
	group *cgroup.Group
	fd    int // for reaper.Attr.CgroupFD; 0: none
}

// prepare makes the place for a new job process; placed or abandon must follow. In cgroup mode
// the cgroup is created and its limits written before the process is cloned into it, so the
// job's first instruction already runs under them.
func (c *containment) prepare(job string, limits []loader.CgroupLimit) (*placement, error) {
	if c.root == nil && len(limits) > 0 {
		return nil, fmt.Errorf("job %s: cgroup limits (%s) need god's cgroup mode, and god runs in subreaper mode: "+
			"start god with --cgroup DIR (a writable cgroup v2 directory), or under systemd with Delegate=yes in its unit "+
			"(--cgroup auto, the default, then uses god's own cgroup)", job, limits[0])
	}
	c.mu.Lock()
	c.seq++
	p := &placement{tag: c.seq, job: job}
	c.mu.Unlock()
	if c.root == nil {
		return p, nil
	}
	if len(limits) > 0 {
		var ctrl []string
		for _, l := range limits {
			ctrl = append(ctrl, l.Controller())
		}
		if err := cgroup.Enable(c.root.Dir, ctrl...); err != nil {
			return nil, fmt.Errorf("job %s: cgroup limits: %w", job, err)
		}
	}
	g, err := c.root.New(fmt.Sprintf("%s.%d", job, p.tag))
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", job, err)
	}
	for _, l := range limits {
		if err := cgroup.Set(g.Dir, l.File, l.Value); err != nil {
			g.Remove()
			return nil, fmt.Errorf("job %s: cgroup %s: %w", job, l, err)
		}
	}
	fd, err := g.OpenFD()
	if err != nil {
		g.Remove()
		return nil, fmt.Errorf("job %s: %w", job, err)
	}
	p.group, p.fd = g, fd
	return p, nil
}

// placed records the started process pid as the unit's leader.
func (c *containment) placed(p *placement, pid int) {
	if p.fd > 0 {
		syscall.Close(p.fd)
	}
	u := &unit{tag: p.tag, job: p.job, pgid: pid, group: p.group}
	c.mu.Lock()
	c.units[pid] = u
	c.byTag[p.tag] = u
	c.mu.Unlock()
}

// abandon undoes prepare for a process that did not start.
func (c *containment) abandon(p *placement) {
	if p.fd > 0 {
		syscall.Close(p.fd)
	}
	if p.group != nil {
		p.group.Remove()
	}
}

// signal sends sig to the whole unit of process group pgid.
func (c *containment) signal(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return syscall.EINVAL
	}
	c.scan()
	// Every signal sent here stops (SignalGroup: a stop, a kill, a lingering group): the
	// reaper reaps the leader's exit by its pid (reaper.Expect), as it does the escapees'.
	c.expect(pgid)
	err := syscall.Kill(-pgid, sig)
	escaped, group := c.members(pgid)
	for _, pid := range escaped {
		c.expect(pid)
		signalTree(pid, sig)
	}
	if group != nil {
		if gerr := group.Signal(sig); gerr == nil {
			err = nil // the cgroup holds the group's members too
		}
	}
	return err
}

// expect tells the reaper that pid, if it is a child god waits for, is about to exit.
func (c *containment) expect(pid int) {
	if c.reaper != nil {
		c.reaper.Expect(pid)
	}
}

// members are what pgid's unit holds besides its process group: its escaped processes and its
// cgroup (nil in subreaper mode).
func (c *containment) members(pgid int) ([]int, *cgroup.Group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.units[pgid]
	if u == nil {
		return nil, nil
	}
	escaped := make([]int, 0, len(u.escaped))
	for pid := range u.escaped {
		escaped = append(escaped, pid)
	}
	return escaped, u.group
}

// signalTree signals a process, and its group when it leads one (a daemon that called setsid).
func signalTree(pid int, sig syscall.Signal) {
	if pg, err := syscall.Getpgid(pid); err == nil && pg == pid {
		syscall.Kill(-pid, sig)
		return
	}
	syscall.Kill(pid, sig)
}

// alive reports whether anything of the unit of process group pgid is left.
func (c *containment) alive(pgid int) bool {
	if groupAlive(pgid) {
		return true
	}
	escaped, group := c.members(pgid)
	for _, pid := range escaped {
		if syscall.Kill(pid, 0) == nil {
			return true
		}
	}
	return group != nil && group.Populated()
}

// forget drops the unit of pgid once nothing of it is left, and its cgroup.
func (c *containment) forget(pgid int) {
	c.mu.Lock()
	u := c.units[pgid]
	if u != nil {
		delete(c.units, pgid)
		delete(c.byTag, u.tag)
	}
	c.mu.Unlock()
	if u != nil && u.group != nil {
		if err := u.group.Remove(); err != nil {
			c.log.Warn("cgroup not removed", "job", u.job, "err", err)
		}
	}
}

// escapedOf lists the processes of pgid's unit that god found outside its process group, for
// god status (subreaper mode; in cgroup mode the cgroup's cgroup.procs lists every member).
func (c *containment) escapedOf(pgid int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	u := c.units[pgid]
	if u == nil || len(u.escaped) == 0 {
		return nil
	}
	out := make([]int, 0, len(u.escaped))
	for pid := range u.escaped {
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// scan attributes god's children that nobody waits for to their unit, by their GOD_UNIT tag.
// Callers share scans: one that asks while a scan runs waits for the next, which starts after
// it asked (the running one may have read god's children before the process it cares about
// was reparented), and every caller waiting then is served by that one. So a burst of callers
// (thousands of jobs stopped at once, each signalling its unit) costs two scans, not thousands,
// and each caller still sees every child reparented before it asked.
func (c *containment) scan() {
	if c.reaper == nil {
		return
	}
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	if c.scanDone == nil {
		c.scanDone = sync.NewCond(&c.scanMu)
	}
	need := c.scansStarted + 1
	for c.scansFinished < need {
		if c.scanning {
			c.scanDone.Wait()
			continue
		}
		c.scanning = true
		c.scansStarted++
		n := c.scansStarted
		c.scanMu.Unlock()
		c.scanOnce()
		c.scanMu.Lock()
		c.scanning = false
		c.scansFinished = n
		c.scanDone.Broadcast()
	}
}

// scanOnce is one look at god's children (see scan).
func (c *containment) scanOnce() {
	inExec := false
	defer func() { c.rescanLater(inExec) }()
	for _, pid := range c.reaper.Unknown(procfs.Children()) {
		tag, ok, transient := unitTagOf(pid)
		if transient {
			inExec = true
		}
		if !ok {
			continue
		}
		c.mu.Lock()
		u := c.byTag[tag]
		if u == nil || u.escaped[pid] || c.adopting[pid] {
			c.mu.Unlock()
			continue
		}
		if u.escaped == nil {
			u.escaped = map[int]bool{}
		}
		u.escaped[pid] = true
		c.mu.Unlock()
		unitTag := tag
		if !c.reaper.Watch(pid, func(e jobstate.Exit) { c.escapedExit(unitTag, e.Pid) }) {
			c.escapedExit(tag, pid)
			continue
		}
		c.log.Info("a process left its job's process group; god keeps it with the job", "job", u.job, "pid", pid, "unit", u.pgid)
	}
}

// adopted ends what release began: the job's adoption of pid succeeded (the reaper knows pid
// from now on) or failed.
func (c *containment) adopted(pid int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.adopting, pid)
	c.mu.Unlock()
}

// rescanLater scans again in a while when a child could not be attributed because it stayed in
// an exec (nothing else may be reaped to prompt the next scan); a few times at most in a row.
func (c *containment) rescanLater(inExec bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !inExec {
		c.rescans = 0
		return
	}
	if c.rescanPending || c.rescans >= maxRescans {
		return
	}
	c.rescans++
	c.rescanPending = true
	time.AfterFunc(rescanDelay, func() {
		c.mu.Lock()
		c.rescanPending = false
		c.mu.Unlock()
		c.scan()
	})
}

// Rescans of a child still in an exec: every rescanDelay, maxRescans times in a row at most.
const (
	rescanDelay = 100 * time.Millisecond
	maxRescans  = 50
)

// release gives up an escaped process that its job adopts as its main process (MAINPID=): the
// job watches it from then on, so the containment's watch of it ends. Until adopted(pid), scan
// leaves pid alone: the reaper's scan may have read its tag already (a slow read of a process in
// an exec) and would otherwise watch it between this release and the job's adoption.
func (c *containment) release(pid int) {
	if c == nil || c.reaper == nil {
		return
	}
	c.mu.Lock()
	c.adopting[pid] = true
	found := false
	for _, u := range c.units {
		if u.escaped[pid] {
			delete(u.escaped, pid)
			found = true
		}
	}
	c.mu.Unlock()
	if found {
		c.reaper.Unwatch(pid)
	}
}

// escapedExit forgets an escaped process once it is reaped. Called by the reaper: never blocks.
func (c *containment) escapedExit(tag uint64, pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if u := c.byTag[tag]; u != nil {
		delete(u.escaped, pid)
	}
}

// unitTagOf reads GOD_UNIT from a process's environment (as it was at its exec). transient is
// true when the process was in an exec for longer than procfs.Environ waits: look again later.
func unitTagOf(pid int) (tag uint64, ok, transient bool) {
	env, err := procfs.Environ(pid)
	if err != nil {
		return 0, false, errors.Is(err, procfs.ErrInExec)
	}
	v, found := procfs.Getenv(env, envUnit)
	if !found {
		return 0, false, false
	}
	tag, err = strconv.ParseUint(v, 10, 64)
	return tag, err == nil, false
}

// states is every unit, for the upgrade state.
func (c *containment) states() (uint64, []upgradestate.Unit) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []upgradestate.Unit
	for _, u := range c.units {
		us := upgradestate.Unit{Tag: u.tag, Job: u.job, Pgid: u.pgid}
		for pid := range u.escaped {
			us.Escaped = append(us.Escaped, pid)
		}
		if u.group != nil {
			us.Cgroup = u.group.Dir
		}
		out = append(out, us)
	}
	return c.seq, out
}

// restoreUnits takes the units over from god's old image; escaped processes are god's children
// and are watched again.
func (s *Supervisor) restoreUnits(st *upgradestate.State) {
	c := s.contain
	c.mu.Lock()
	c.seq = max(c.seq, st.UnitSeq)
	var watch []upgradestate.Unit
	for _, us := range st.Units {
		u := &unit{tag: us.Tag, job: us.Job, pgid: us.Pgid}
		if us.Cgroup != "" {
			u.group = &cgroup.Group{Dir: us.Cgroup}
		}
		c.units[us.Pgid] = u
		c.byTag[us.Tag] = u
		if len(us.Escaped) > 0 {
			u.escaped = map[int]bool{}
			for _, pid := range us.Escaped {
				u.escaped[pid] = true
			}
			watch = append(watch, us)
		}
	}
	c.mu.Unlock()
	for _, us := range watch {
		tag := us.Tag
		for _, pid := range us.Escaped {
			if !s.reaper.Watch(pid, func(e jobstate.Exit) { c.escapedExit(tag, e.Pid) }) {
				c.escapedExit(tag, pid)
			}
		}
	}
}

// escapedByJob lists every escaped process of each job's units, for the crash file: one pass
// over the units, however many jobs there are.
func (c *containment) escapedByJob() map[string][]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string][]int{}
	for _, u := range c.units {
		for pid := range u.escaped {
			out[u.job] = append(out[u.job], pid)
		}
	}
	return out
}

// syscallGetpgid is getpgid(2).
func syscallGetpgid(pid int) (int, error) { return syscall.Getpgid(pid) }

// groupAlive reports whether any process is left in group pgid.
func groupAlive(pgid int) bool {
	if pgid <= 1 {
		return false
	}
	err := syscall.Kill(-pgid, 0)
	return err == nil || err == syscall.EPERM
}
