package integration

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// survivor is a god running job "sj" (sockjob serve) on a tcp, a unix and a udp socket.
type survivor struct {
	g                  *god
	tcp, unixPath, udp string
}

func startSurvivor(t testing.TB, flags ...string) survivor {
	t.Helper()
	s := survivor{tcp: freePort(t), unixPath: filepath.Join(t.TempDir(), "x.sock"), udp: freeUDP(t)}
	s.g = newGod(t)
	writeLoader(t, s.g.dir, "sock", bashLoader{Jobs: map[string]bashJob{
		"sj": sockJob([]string{sockjobBin, "serve", "-names", "tcp,unix,udp"},
			[]string{"tcp=tcp://" + s.tcp, "unix=unix://" + s.unixPath, "udp=udp://" + s.udp},
			[]string{"notify"}, nil),
	}})
	s.g.start(flags...)
	return s
}

// askAll asks each socket once and returns the pid that answered on each.
func (s survivor) askAll(t testing.TB) (tcp, unix, udp int) {
	t.Helper()
	a, err := ask("tcp", s.tcp, 10*time.Second)
	if err != nil {
		s.g.fatalf("tcp: %v", err)
	}
	b, err := ask("unix", s.unixPath, 10*time.Second)
	if err != nil {
		s.g.fatalf("unix: %v", err)
	}
	c, err := askUDP(s.udp, 10*time.Second)
	if err != nil {
		s.g.fatalf("udp: %v", err)
	}
	return answeredBy(a), answeredBy(b), answeredBy(c)
}

// TestSocketsSurviveKill: after kill -9 of the job, a client that connects (or sends a datagram)
// at once is answered by the next process, not refused: god holds the sockets.
func TestSocketsSurviveKill(t *testing.T) {
	t.Parallel()
	s := startSurvivor(t)
	pid := pidOf(t, s.g.waitState("sj", "run", 10*time.Second))
	if a, b, c := s.askAll(t); a != pid || b != pid || c != pid {
		t.Fatalf("answers from pids %d %d %d, want %d", a, b, c, pid)
	}
	for round := 0; round < 3; round++ {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		a, b, c := s.askAll(t)
		if a == pid || b == pid || c == pid || a == 0 || a != b || b != c {
			s.g.fatalf("round %d: after kill -9 of %d, answers from pids %d %d %d", round, pid, a, b, c)
		}
		pid = a
		s.g.addPid(pid, "sj after kill -9")
	}
}

// TestSocketsWaitWhileStopped: while the job is stopped no process runs, yet its sockets stay
// open in god: a connection is accepted by the kernel, a datagram is queued, and both are
// answered by the process that `god start` runs.
func TestSocketsWaitWhileStopped(t *testing.T) {
	t.Parallel()
	s := startSurvivor(t)
	old := pidOf(t, s.g.waitState("sj", "run", 10*time.Second))
	s.g.mustCLI("stop", "sj")
	if j, _ := s.g.job("sj"); j.State != "stopped" || len(j.Processes) != 0 {
		s.g.fatalf("after god stop: %+v", j)
	}
	type answer struct {
		pid int
		err error
	}
	answers := make(chan answer, 3)
	go func() { r, err := ask("tcp", s.tcp, 20*time.Second); answers <- answer{answeredBy(r), err} }()
	go func() { r, err := ask("unix", s.unixPath, 20*time.Second); answers <- answer{answeredBy(r), err} }()
	go func() { r, err := askUDP(s.udp, 20*time.Second); answers <- answer{answeredBy(r), err} }()

	// Nobody serves yet: the clients wait in the sockets' queues (a refusal would show as an
	// error here at once).
	select {
	case a := <-answers:
		s.g.fatalf("answer while the job is stopped: pid %d err %v", a.pid, a.err)
	case <-time.After(300 * time.Millisecond): // proving an absence: a short bounded look
	}
	s.g.mustCLI("start", "sj")
	pid := pidOf(t, s.g.waitState("sj", "run", 10*time.Second))
	if pid == old {
		t.Fatalf("start kept pid %d", pid)
	}
	for i := 0; i < 3; i++ {
		a := <-answers
		if a.err != nil || a.pid != pid {
			s.g.fatalf("queued client: answered by %d (err %v), want the new process %d", a.pid, a.err, pid)
		}
	}
}
