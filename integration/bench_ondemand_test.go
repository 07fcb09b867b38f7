package integration

import (
	"bufio"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkOnDemandFirstConnection measures what a client of an on-demand job (auto ["socket"])
// waits for: the time from its connect to the whole answer of one HTTP request, when the request
// starts the job (god sees the socket readable, starts sockjob's HTTP mode, which accepts it),
// against the same request to the same binary already running under god. Each figure is the
// median of 20, every request on a new connection. The on-demand job sleeps again between
// samples by its idle-exit (100 ms): a sample starts once god says it listens. When
// systemd-socket-activate is installed, it starts the same binary on its first connection too
// (a fresh systemd-socket-activate per sample).
func BenchmarkOnDemandFirstConnection(b *testing.B) {
	const samples = 20
	var f figures
	asTest(b, func(t testing.TB) {
		lazyAddr, warmAddr := freePort(t), freePort(t)
		g := newGod(t)
		warm := sockJob([]string{sockjobBin, "http", "http"}, []string{"http=tcp://" + warmAddr}, nil, nil)
		writeLoader(t, g.dir, "bench", bashLoader{Jobs: map[string]bashJob{
			"lazy": onDemandJob(lazyAddr, "100"),
			"warm": warm,
		}})
		g.start()
		g.waitState("warm", "run", 10*time.Second)

		var cold, running, toWake, toStarted []time.Duration
		for i := range samples {
			g.waitState("lazy", "listen", 20*time.Second)
			mark := g.mark()
			t0 := time.Now()
			d, err := timedGet(lazyAddr)
			if err != nil {
				g.fatalf("on-demand sample %d: %v", i, err)
			}
			cold = append(cold, d)
			// god's part, as its log dates it: the connect to the watch's news reaching the job,
			// and from there to the process started.
			woke := g.waitLogFrom(mark, 20*time.Second, "the wake", func(r record) bool {
				return r.str("job") == "lazy" && strings.HasPrefix(r.Msg, "a connection waits")
			})
			started := g.waitLogFrom(mark, 20*time.Second, "the start", func(r record) bool {
				return r.str("job") == "lazy" && r.Msg == "started"
			})
			toWake = append(toWake, woke.Time.Sub(t0))
			toStarted = append(toStarted, started.Time.Sub(woke.Time))
			// Wait for the process's idle exit: the next sample must start it again.
			g.waitLog(20*time.Second, "the idle exit", func(r record) bool {
				return r.str("job") == "lazy" && r.Msg == "exited"
			})
		}
		if n := len(startsOf(g, 0, "lazy")); n != samples {
			g.fatalf("%d starts of the on-demand job for %d samples", n, samples)
		}
		for i := range samples {
			d, err := timedGet(warmAddr)
			if err != nil {
				g.fatalf("running sample %d: %v", i, err)
			}
			running = append(running, d)
		}
		f.add("ondemand-first-conn-p50-ms", inMS(medianDur(cold)), fmt.Sprintf("god, auto socket: connect to answer, the request starts the job (%s)", statsOf(cold)))
		f.notef("god's part: connect to the job hearing of it %s; to the process started %s", statsOf(toWake), statsOf(toStarted))
		f.add("running-conn-p50-ms", inMS(medianDur(running)), fmt.Sprintf("god, the same binary already running (%s)", statsOf(running)))

		if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
			f.notef("systemd-socket-activate not installed: no comparison")
			return
		}
		var sd []time.Duration
		for i := range samples {
			d, err := socketActivateSample(t, freePort(t))
			if err != nil {
				t.Fatalf("systemd-socket-activate sample %d: %v", i, err)
			}
			sd = append(sd, d)
		}
		f.add("systemd-socket-activate-first-conn-p50-ms", inMS(medianDur(sd)), fmt.Sprintf("systemd-socket-activate starting the same binary (%s)", statsOf(sd)))
	})
	f.report(b)
}

// timedGet is the time one request on a new connection takes, connect to the last byte.
func timedGet(addr string) (time.Duration, error) {
	t0 := time.Now()
	if _, err := httpGet(addr, 20*time.Second); err != nil {
		return 0, err
	}
	return time.Since(t0), nil
}

// medianDur is the middle of ds (the mean of the two middle ones for an even count).
func medianDur(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[len(s)/2]
}

// socketActivateSample starts systemd-socket-activate on addr with sockjob's HTTP mode, waits
// until it listens (its "Listening on" line), times the first request, and ends it.
func socketActivateSample(t testing.TB, addr string) (time.Duration, error) {
	cmd := exec.Command("systemd-socket-activate", "-l", addr, "--fdname=http", sockjobBin, "http", "http")
	cmd.Env = plainEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}()
	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		said := false
		for sc.Scan() {
			if !said && strings.Contains(sc.Text(), "Listening on") {
				said = true
				listening <- true
			}
		}
		if !said {
			listening <- false
		}
	}()
	select {
	case ok := <-listening:
		if !ok {
			return 0, fmt.Errorf("systemd-socket-activate ended without listening")
		}
	case <-time.After(20 * time.Second):
		return 0, fmt.Errorf("systemd-socket-activate not listening within 20 s")
	}
	return timedGet(addr)
}
