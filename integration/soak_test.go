package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chattyScript is the chatty job: a burst of about 3 MB of output in 120-byte lines, then one
// 200 KB line (longer than god's line limit, so it is split), then it exits 0. god must read all
// of it without blocking anything else.
const chattyScript = `head -c 3000000 /dev/zero | tr '\0' x | fold -w 120; head -c ${CHATTY_LONG_LINE:-200000} /dev/zero | tr '\0' y; echo; exit 0`

// chaos is the soak's driver: it does one random thing to god at a time and keeps what it did.
// Two of them run at once: the test's own, which does everything, and a second one that only
// sends signals (so that kills and pauses also land in the middle of a reload or an upgrade).
type chaos struct {
	t   testing.TB
	g   *god
	rng *rand.Rand // each driver has its own
	sh  *chaosShared
}

// chaosShared is what the drivers note for the judgement at the end.
type chaosShared struct {
	mu       sync.Mutex
	kills    []time.Time               // when a backend process was sent SIGKILL: its requests in flight may fail
	done     map[string]int            // action -> times done
	failures map[string]map[string]int // action -> reason it did not succeed -> times
	stopped  map[int]bool              // job processes under SIGSTOP, continued by cleanup if the test dies
	accAddr  string                    // the address of the accept job, acc
	steps    []string                  // what was done when, for a failure message (bounded)
}

// note records an action that did not succeed, for a reason god is right to give.
func (sh *chaosShared) note(chaosAction, reason string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.failures[chaosAction] == nil {
		sh.failures[chaosAction] = map[string]int{}
	}
	sh.failures[chaosAction][reason]++
}

// step records that an action ran from t0 until now.
func (sh *chaosShared) step(start, t0 time.Time, driver int, name string) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.done[name]++
	if len(sh.steps) < 2000 {
		sh.steps = append(sh.steps, fmt.Sprintf("%s +%s [%d] %s (%s)", t0.Format("15:04:05.000"),
			t0.Sub(start).Round(time.Millisecond), driver, name, time.Since(t0).Round(time.Millisecond)))
	}
}

func (sh *chaosShared) stepLog() string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return strings.Join(sh.steps, "\n")
}

// chaosAction is one kind of trouble, picked with probability weight/sum.
type chaosAction struct {
	name   string
	weight int
	run    func(c *chaos) error // nil: it did what it should; an error is reported and fails the test
}

var chaosActions = []chaosAction{
	{"reload backend", 4, (*chaos).reload},
	{"SIGKILL backend", 2, (*chaos).killBackend},
	{"SIGKILL worker", 1, (*chaos).killWorker},
	{"SIGKILL loader", 2, (*chaos).killLoader},
	{"replace loader file", 1, (*chaos).replaceLoader},
	{"SIGSTOP/SIGCONT backend", 2, (*chaos).pause},
	{"chatty burst", 1, (*chaos).chatty},
	{"god upgrade", 1, (*chaos).upgrade},
	{"status", 1, (*chaos).status},
	{"accept connection", 1, (*chaos).acceptConn},
}

// signalActions are what the second driver does: signals only, which need no *testing.T.
var signalActions = []chaosAction{
	{"SIGKILL backend", 2, (*chaos).killBackend},
	{"SIGKILL loader", 1, (*chaos).killLoader},
	{"SIGSTOP/SIGCONT backend", 2, (*chaos).pause},
}

// pick chooses one of actions by weight.
func (c *chaos) pick(actions []chaosAction) chaosAction {
	sum := 0
	for _, a := range actions {
		sum += a.weight
	}
	n := c.rng.IntN(sum)
	for _, a := range actions {
		if n < a.weight {
			return a
		}
		n -= a.weight
	}
	return actions[0]
}

// jobPid is a random running process of job name (0 when none runs right now). It asks god with
// the control client, not the CLI helpers, because the signal driver may not call t.Fatal.
func (c *chaos) jobPid(name string) int {
	res, err := statusOnce(c.g.socket, 10*time.Second)
	if err != nil {
		return 0
	}
	for _, j := range res.Jobs {
		if j.Name == name && len(j.Processes) > 0 {
			pid := j.Processes[c.rng.IntN(len(j.Processes))].Pid
			c.g.addPid(pid, name+" (soak)")
			// It may have exited since: never signal a pid that is no longer god's child.
			if st, ok := readProc(pid); !ok || st.ppid != c.g.cmd.Process.Pid {
				return 0
			}
			return pid
		}
	}
	return 0
}

// reload runs `god reload backend`. It may fail only with a reason (exit 1): right after a
// SIGKILL the job waits out its restart delay, and god refuses to reload a job that is not
// running.
func (c *chaos) reload() error {
	r := c.g.cli("reload", "backend")
	switch r.code {
	case 0:
		return nil
	case 1:
		c.sh.note("reload backend", soakFirstLine(r.stderr))
		return nil
	}
	return fmt.Errorf("god reload backend: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

func (c *chaos) killBackend() error {
	pid := c.jobPid("backend")
	if pid == 0 {
		return nil // restarting after the last kill
	}
	c.sh.mu.Lock()
	defer c.sh.mu.Unlock()
	c.sh.kills = append(c.sh.kills, time.Now())
	_ = syscall.Kill(pid, syscall.SIGKILL)
	c.sh.kills = append(c.sh.kills, time.Now())
	return nil
}

func (c *chaos) killWorker() error {
	if pid := c.jobPid("worker"); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	return nil
}

func (c *chaos) killLoader() error {
	ls := loadersOf(c.g.cmd.Process.Pid)
	if len(ls) > 0 {
		_ = syscall.Kill(ls[c.rng.IntN(len(ls))], syscall.SIGKILL)
	}
	return nil
}

// replaceLoader puts a fresh copy of one loader file in place with an atomic rename (a new inode,
// as a deploy does): god reads it again and, the definition being the same, touches no job.
func (c *chaos) replaceLoader() error {
	if c.rng.IntN(2) == 0 {
		copyExecutable(c.t, backendBin, c.g.dir, "backend")
	} else {
		writeLoader(c.t, c.g.dir, "chatty", chattyLoader(c.sh.accAddr))
	}
	return nil
}

// pause stops a backend process for 200 ms: its clients wait, none fails.
func (c *chaos) pause() error {
	pid := c.jobPid("backend")
	if pid == 0 {
		return nil
	}
	c.sh.mu.Lock()
	if c.sh.stopped[pid] || syscall.Kill(pid, syscall.SIGSTOP) != nil {
		c.sh.mu.Unlock()
		return nil // the other driver has it stopped, or it just exited
	}
	c.sh.stopped[pid] = true
	c.sh.mu.Unlock()
	time.Sleep(200 * time.Millisecond) // the pause is the action itself
	c.sh.mu.Lock()
	_ = syscall.Kill(pid, syscall.SIGCONT)
	delete(c.sh.stopped, pid)
	c.sh.mu.Unlock()
	return nil
}

// chatty starts the chatty job (a no-op while a burst still runs).
func (c *chaos) chatty() error {
	r := c.g.cli("start", "chatty")
	if r.code != 0 {
		return fmt.Errorf("god start chatty: exit %d: %s%s", r.code, r.stdout, r.stderr)
	}
	return nil
}

// upgrade re-executes god in place. It must succeed, or be refused with a reason while a reload
// runs (the signal driver can make a reload outlast the one that started it).
func (c *chaos) upgrade() error {
	r := c.g.cli("upgrade")
	if r.code == 1 && strings.Contains(r.stderr, "upgrade refused") && strings.Contains(r.stderr, "reloading") {
		c.sh.note("god upgrade", soakFirstLine(r.stderr))
		return nil
	}
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "upgraded") {
		return fmt.Errorf("god upgrade: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	return nil
}

func (c *chaos) status() error {
	c.g.status()
	return nil
}

// acceptConn is one connection to the accept job: its own process must answer it, whatever
// happened to god before (upgrades, loader kills and swaps).
func (c *chaos) acceptConn() error {
	ans, err := askLine(c.sh.accAddr, "soak", time.Now().Add(30*time.Second))
	if err != nil || !strings.HasPrefix(ans, "soak pid=") {
		return fmt.Errorf("accept job acc: answer %q, %v", ans, err)
	}
	return nil
}

// chattyLoader defines the chatty job: started by the driver, never restarted; forky, a job
// that starts a daemon out of its process group (setsid) and fails a second later, for ever: each
// run's daemon must end with it (containment), across upgrades and loader swaps; and acc, an
// accept job on accAddr (a process per connection, which answers one line).
func chattyLoader(accAddr string) bashLoader {
	return bashLoader{Jobs: map[string]bashJob{
		"chatty": {Exec: shJob(chattyScript), Auto: []string{"false"}, Restart: []string{"never"}},
		"forky":  {Exec: shJob(`setsid sh -c "exec sleep ` + soakDaemonArg + `" & sleep 1; exit 1`), Auto: autoTrue},
		"acc": sockJob([]string{"/bin/sh", "-c", `IFS= read -r line; echo "$line pid=$$"`}, []string{"conn=tcp://" + accAddr}, nil,
			map[string][]string{"accept": {"true"}, "max-connections": {"5"}}),
	}}
}

// soakDaemonArg marks the daemons of the soak's forky job (sleep ARG), to count them. It names
// this test binary's pid, so that two runs at once (a loop beside CI) never count, or kill, the
// other's daemons.
var soakDaemonArg = "4242." + strconv.Itoa(os.Getpid()) + "5"

// soakSeed is $WATCHGOD_SOAK_SEED when set (to replay a run), else a fresh seed.
func soakSeed(t testing.TB) uint64 {
	if s := os.Getenv("WATCHGOD_SOAK_SEED"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WATCHGOD_SOAK_SEED=%q: %v", s, err)
		}
		return n
	}
	return uint64(time.Now().UnixNano())
}

// TestChaosSoak runs examples/backend under continuous HTTP load while two seeded random drivers
// reload it, SIGKILL its processes, the worker and the loaders, replace loader files, pause the
// backend with SIGSTOP, make a job flood its stdout and upgrade god in place, after god itself was
// killed (kill -9) and replaced by a new one under the load, for $WATCHGOD_SOAK
// (default 60 s; $WATCHGOD_SOAK_SEED replays a seed, as far as timing allows). No request may fail except one in flight on a backend process at
// the moment it was SIGKILLed (the socket god holds keeps every queued client for the restart),
// and god may not leak fds, goroutines or zombies.
func TestChaosSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: the chaos soak runs for a minute (set WATCHGOD_SOAK to change)")
	}
	t.Parallel()
	dur := soakDuration(t, 60*time.Second)
	seed := soakSeed(t)
	t.Logf("chaos soak: %s, seed %d (replay with WATCHGOD_SOAK_SEED=%d)", dur, seed, seed)

	addr := freePort(t)
	t.Cleanup(func() {
		for _, pid := range sleepersWith(soakDaemonArg) {
			t.Errorf("a daemon of forky (pid %d) outlived god: killing it", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	g := newGod(t)
	g.env = []string{"BACKEND_ADDR=" + addr}
	copyExecutable(t, backendBin, g.dir, "backend")
	accAddr := freePort(t)
	writeLoader(t, g.dir, "chatty", chattyLoader(accAddr))
	actions := chaosActions
	if soakAbuse() {
		if os.Geteuid() != 0 {
			t.Skip("the abuse soak floods god as another user: it needs root")
		}
		g.env = append(g.env, "CHATTY_LONG_LINE=20000000")
		for name, l := range abuseLoaders(g.dir) {
			writeLoader(t, g.dir, name, l)
		}
		actions = slices.DeleteFunc(slices.Clone(chaosActions), func(a chaosAction) bool { return a.name == "god upgrade" })
		actions = append(actions, chaosAction{"notify flood (uid 65534)", 1, (*chaos).notifyFlood})
	}
	// Never give up on a job the driver keeps killing, and bring it back quickly.
	flags := []string{"--restart-limit", "0", "--backoff-max", "300ms"}
	if soakAbuse() {
		// Each job's ring of recent output is bounded (--log-lines, 1 MiB) but fills as the soak
		// goes: with the default 1000 lines the misfits' rings took 10 minutes to fill, and that
		// growth (14 -> 18 MiB, then flat) hid whether anything else grew. With 100 lines they
		// are full within the first minute, so the judgement sees only growth that is not theirs.
		flags = append(flags, "--log-lines", "100")
	}
	g.noJobLines = true // its floods of job output would fill the test's memory as records
	g.start(flags...)
	g.waitState("backend", "run", 15*time.Second)
	g.waitState("worker", "run", 10*time.Second)

	sh := &chaosShared{done: map[string]int{}, failures: map[string]map[string]int{}, stopped: map[int]bool{}, accAddr: accAddr}
	t.Cleanup(func() {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		for pid := range sh.stopped {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	})
	driver := func(n int) *chaos {
		s := seed + uint64(n)
		return &chaos{t: t, g: g, sh: sh, rng: rand.New(rand.NewPCG(s, s^0x9e3779b97f4a7c15))}
	}

	// Bounded in time and in count; the count grows with the soak (a 30-minute abuse soak sends
	// about 9 million requests: the default million a worker ran out at half-time, and the
	// soak's last check then waited for requests that no worker sent any more).
	maxCount := max(1_000_000, int((dur+2*time.Minute).Seconds())*2000)
	l := startLoad(t, loadOpts{URL: "http://" + addr + "/", Workers: 4, MaxTime: dur + 2*time.Minute, MaxCount: maxCount})
	l.waitServed(t, 20, 20*time.Second)

	// god itself is killed (kill -9) under the load, and a new god takes over what it left: the
	// sockets back from the orphans, the orphans ended, its own jobs started. The soak goes on with
	// the new god.
	eventually(t, 10*time.Second, "the state file", func() bool {
		_, err := os.Stat(strings.TrimSuffix(g.socket, ".sock") + "-state.json")
		return err == nil
	})
	g, _ = killAndReplace(t, g, nil)
	g.waitState("backend", "run", 20*time.Second)
	l.waitServed(t, 20, 20*time.Second)

	// Warm up once through what creates god's lasting goroutines and fds, then measure.
	g.reloadOK("backend")
	g.mustCLI("start", "chatty")
	g.waitJob("chatty", 60*time.Second, "done", func(j controlJob) bool { return j.State == "done" })
	g.mustCLI("upgrade")
	g.waitState("backend", "run", 10*time.Second)
	if soakAbuse() {
		if pid := pidOf(t, g.waitState("backend", "run", 10*time.Second)); openForOthers(envValue(pid, "NOTIFY_SOCKET")) != nil {
			t.Fatal("cannot open the notify socket's directories to other users")
		}
	}
	before := g.vitals()
	t.Logf("before: %s", before)
	var rss *rssSampler
	if soakAbuse() {
		gp := g // the god of the soak from here on (no upgrades in abuse mode)
		rss = sampleRSS(func() int { return gp.cmd.Process.Pid })
	}

	const maxActions = 5000 // per driver
	start := time.Now()
	stop := make(chan struct{})
	var signals sync.WaitGroup
	signals.Add(1)
	go func() {
		defer signals.Done()
		c := driver(1)
		for i := 0; i < maxActions && time.Since(start) < dur; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(300+c.rng.IntN(1200)) * time.Millisecond): // the driver's pace
			}
			a := c.pick(signalActions)
			t0 := time.Now()
			_ = a.run(c) // signal actions cannot fail
			sh.step(start, t0, 1, a.name)
		}
	}()
	c := driver(0)
	for i := 0; i < maxActions && time.Since(start) < dur; i++ {
		a := c.pick(actions)
		t0 := time.Now()
		err := a.run(c)
		sh.step(start, t0, 0, a.name)
		if err != nil {
			close(stop)
			signals.Wait()
			g.fatalf("action %d (%s): %v\nsteps:\n%s", i+1, a.name, err, sh.stepLog())
		}
		time.Sleep(time.Duration(50+c.rng.IntN(350)) * time.Millisecond) // the driver's pace, not a synchronisation
	}
	close(stop)
	signals.Wait()
	if os.Getenv("IT_DEBUG") != "" {
		t.Logf("steps:\n%s", sh.stepLog())
	}

	// The backend comes back from whatever happened last and serves again.
	g.waitJob("backend", 30*time.Second, "running with one process", func(j controlJob) bool {
		return j.State == "run" && len(j.Processes) == 1
	})
	l.waitServed(t, 50, 30*time.Second)
	l.finish()
	g.waitState("worker", "run", 10*time.Second)
	g.waitJob("chatty", 30*time.Second, "done", func(j controlJob) bool { return j.State == "done" })
	// forky's daemons ended with each run: at most the current run's is left, and none once it
	// is stopped.
	if n := len(sleepersWith(soakDaemonArg)); n > 1 {
		g.fatalf("%d daemons of forky run: each run's must end with it", n)
	}
	g.mustCLI("stop", "forky")
	if left := sleepersWith(soakDaemonArg); len(left) > 0 {
		g.fatalf("daemons %v of forky outlived god stop", left)
	}
	g.mustCLI("start", "forky")
	// The accept job accepts still, and none of its connection processes is left running.
	if err := (&chaos{sh: sh}).acceptConn(); err != nil {
		g.fatalf("after the soak: %v", err)
	}
	g.waitJob("acc", 30*time.Second, "running, no connection process left", func(j controlJob) bool {
		return j.State == "run" && j.Connections == 0
	})

	var acts []string
	for n, k := range sh.done {
		acts = append(acts, fmt.Sprintf("%s ×%d", n, k))
	}
	sort.Strings(acts)
	t.Logf("actions in %s: %s", time.Since(start).Round(time.Millisecond), strings.Join(acts, ", "))
	for what, reasons := range sh.failures {
		for reason, n := range reasons {
			t.Logf("%s refused %d× (a reason god is right to give): %s", what, n, reason)
		}
	}

	// Judge every request: a failure is allowed only while a SIGKILLed process had it in flight.
	inFlightAtKill := func(r response) bool {
		for _, k := range sh.kills {
			if !r.start.After(k) && !r.end.Before(k) {
				return true
			}
		}
		return false
	}
	causes := map[string]int{}
	total, failed, excused := 0, 0, 0
	for _, r := range l.all() {
		total++
		if r.err == "" {
			continue
		}
		if inFlightAtKill(r) {
			excused++
			causes["in flight on a SIGKILLed backend: "+addrRe.ReplaceAllString(r.err, "ADDR")]++
			continue
		}
		failed++
		causes[fmt.Sprintf("%s..%s %s", r.start.Format("15:04:05.000000"), r.end.Format("15:04:05.000000"), r.err)]++
	}
	var lines []string
	for cause, n := range causes {
		lines = append(lines, fmt.Sprintf("  %5d× %s", n, cause))
	}
	sort.Strings(lines)
	t.Logf("requests: %d sent, %d failed, %d more in flight on a SIGKILLed process (%d kills)\n%s",
		total, failed, excused, len(sh.kills)/2, strings.Join(lines, "\n"))

	t.Logf("god's warnings and errors during the soak:\n%s", soakProblems(g))
	if rss != nil {
		verdict, ok := abuseVerdict(rss.floors())
		t.Log(verdict)
		if !ok {
			t.Errorf("god's memory grew under abuse: %s; the last minute's floor is over 1.2 x the first's", verdict)
		}
		// The misfits keep god busy by design: stopped, they must leave nothing behind.
		g.mustCLI(append([]string{"stop"}, abuseJobs...)...)
	}

	after, bad := g.settle(before, soakBounds, 20*time.Second)
	t.Logf("after:  %s", after)
	t.Logf("RSS: %d KiB before, %d KiB after", before.rssKB, after.rssKB)
	if failed > 0 {
		t.Errorf("%d of %d requests failed beyond those on SIGKILLed processes; steps:\n%s", failed, total, sh.stepLog())
	}
	if len(bad) > 0 {
		t.Errorf("god leaked:\n  %s\nsteps:\n%s", strings.Join(bad, "\n  "), sh.stepLog())
	}
}

// addrRe matches an address with a port, to group errors that differ only in the client's port.
var addrRe = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+:\d+`)

// soakFirstLine is the first line of s, trimmed, for grouping reasons.
func soakFirstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// soakBounds are the leak bounds of the soak: a few fds and goroutines of slack for what runs
// at the moment of measuring (a check in flight, a connection being closed).
var soakBounds = leakBounds{fds: 2, goroutines: 4, perLoader: struct{ fds, goroutines int }{fds: 3, goroutines: 4}}

// soakProblems summarises god's WARN and ERROR records by message, most frequent first, for the soak
// report: what god had to say about the chaos.
func soakProblems(g *god) string {
	counts := map[string]int{}
	for _, r := range g.logs(0, func(r record) bool { return r.Level == "WARN" || r.Level == "ERROR" }) {
		msg := r.Level + " " + r.Msg
		if e := r.str("err"); e != "" {
			msg += ": " + addrRe.ReplaceAllString(pidRe.ReplaceAllString(e, "pid N"), "ADDR")
		}
		counts[msg]++
	}
	type kv struct {
		msg string
		n   int
	}
	var all []kv
	for m, n := range counts {
		all = append(all, kv{m, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].msg < all[j].msg })
	var b strings.Builder
	for i, e := range all {
		if i == 30 {
			fmt.Fprintf(&b, "  ... and %d more kinds\n", len(all)-30)
			break
		}
		fmt.Fprintf(&b, "  %5d× %.300s\n", e.n, e.msg)
	}
	return b.String()
}

// pidRe matches "pid 123", to group messages that differ only in a pid.
var pidRe = regexp.MustCompile(`pid \d+`)
