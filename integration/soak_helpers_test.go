package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/procfs"
	"github.com/emielm/watchgod/supervisor/control"
)

// vitals is what the soak and abuse tests watch of the god process to catch leaks: its open fds
// (by kind), goroutines, resident set, zombie children and loader instances.
type vitals struct {
	fds        int
	kinds      map[string]int // "pipe", "socket", "anon_inode:[eventpoll]", "/path"...
	goroutines int            // from the version reply
	rssKB      int
	zombies    []int // children of god in state Z
	loaders    int   // running loader instances (children whose argv ends in godv1)
}

// String prints the figures on one line, fds broken down by kind.
func (v vitals) String() string {
	kinds := make([]string, 0, len(v.kinds))
	for k, n := range v.kinds {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("fds %d (%s), goroutines %d, RSS %d KiB, zombies %d %v, loader instances %d",
		v.fds, strings.Join(kinds, " "), v.goroutines, v.rssKB, len(v.zombies), v.zombies, v.loaders)
}

// fdKind names what an fd of pid points to, with the inode numbers of pipes and sockets cut off.
func fdKind(link string) string {
	if i := strings.IndexByte(link, ':'); i > 0 && strings.HasSuffix(link, "]") && !strings.HasPrefix(link, "anon_inode") {
		return link[:i] // pipe:[123] -> pipe, socket:[456] -> socket
	}
	if strings.HasPrefix(link, "/") {
		return "file"
	}
	return link
}

// vitals measures god now. The goroutine count comes from a version request on the control
// socket, so the measurement itself holds one control connection (and its goroutines) while god
// counts.
func (g *god) vitals() vitals {
	g.t.Helper()
	pid := g.cmd.Process.Pid
	v := vitals{kinds: map[string]int{}}
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		g.fatalf("reading god's fds: %v", err)
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed while we looked
		}
		v.fds++
		v.kinds[fdKind(link)]++
	}
	if st, ok := readProc(pid); ok {
		v.rssKB = st.rssKB
	}
	for _, c := range childrenOf(pid) {
		switch {
		case procfs.State(c) == 'Z':
			v.zombies = append(v.zombies, c)
		case isLoader(c):
			v.loaders++
		}
	}
	res := g.control(5*time.Second, control.Request{Cmd: control.CmdVersion})
	if !res.OK {
		g.fatalf("version request failed: %s", res.Error)
	}
	v.goroutines = res.Goroutines
	return v
}

// control sends one request to god with the control package's client and returns the result; it
// fails the test when god does not answer within timeout.
func (g *god) control(timeout time.Duration, req control.Request) control.Response {
	g.t.Helper()
	c, err := control.Dial(g.socket)
	if err != nil {
		g.fatalf("control dial: %v", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := c.Do(ctx, req, nil)
	if err != nil {
		g.fatalf("control %s: %v", req.Cmd, err)
	}
	return res
}

// leakBounds is how far the vitals after a run may lie above those before it.
type leakBounds struct {
	fds        int // beyond the fds of extra loader instances
	goroutines int // beyond the goroutines of extra loader instances
	perLoader  struct{ fds, goroutines int }
}

// leaks compares after with before and returns what grew beyond the bounds (nil: nothing). A
// loader instance is not a leak: god keeps up to four idle instances of each file, so their fds
// and goroutines are allowed for, by count.
func leaks(before, after vitals, b leakBounds) []string {
	var out []string
	extra := max(0, after.loaders-before.loaders)
	if after.fds > before.fds+b.fds+extra*b.perLoader.fds {
		out = append(out, fmt.Sprintf("fds grew from %d to %d (%d more loader instances allowed for)", before.fds, after.fds, extra))
	}
	if after.goroutines > before.goroutines+b.goroutines+extra*b.perLoader.goroutines {
		out = append(out, fmt.Sprintf("goroutines grew from %d to %d (%d more loader instances allowed for)", before.goroutines, after.goroutines, extra))
	}
	if len(after.zombies) > 0 {
		out = append(out, fmt.Sprintf("zombie children of god: %v", after.zombies))
	}
	return out
}

// settle measures god until its vitals are within bounds of before (things a run leaves behind,
// such as a loader instance that is still being reaped, pass in a moment), or until timeout, and
// returns the last measurement with what still leaks.
func (g *god) settle(before vitals, b leakBounds, timeout time.Duration) (vitals, []string) {
	g.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		after := g.vitals()
		bad := leaks(before, after, b)
		if len(bad) == 0 || time.Now().After(deadline) {
			return after, bad
		}
		time.Sleep(200 * time.Millisecond) // polling from the outside, bounded by the deadline
	}
}

// soakDuration is how long the chaos soak runs: $WATCHGOD_SOAK (a Go duration), default def.
func soakDuration(t testing.TB, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv("WATCHGOD_SOAK")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("WATCHGOD_SOAK=%q: want a positive Go duration such as 5m", s)
	}
	return d
}
