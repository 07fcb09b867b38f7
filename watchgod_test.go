package watchgod_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
	"github.com/emielm/watchgod/loader"
)

// jobbin is the path of testdata/jobbin, built once by TestMain.
var jobbin string

func TestMain(m *testing.M) {
	if os.Getenv(listenerChildEnv) != "" {
		os.Exit(listenerChild()) // listener_test.go: this binary as a job that takes its sockets
	}
	testutil.MainWithBinary(m, "./testdata/jobbin", "jobbin", &jobbin)
}

// godv1Run is jobbin running as a loader, with its stderr captured.
type godv1Run struct {
	c      *loader.Client
	stdin  io.WriteCloser
	cmd    *exec.Cmd
	stderr *testutil.LockedBuffer
}

// startGodv1 runs jobbin as "jobbin godv1" and completes the handshake.
func startGodv1(t testing.TB) (*godv1Run, []string) {
	t.Helper()
	p := testutil.StartPiped(t, []string{jobbin, loader.Version})
	r := &godv1Run{c: loader.NewClient(p.Stdout, p.Stdin), stdin: p.Stdin, cmd: p.Cmd, stderr: p.Stderr}
	jobs, err := r.c.Handshake(testutil.Context(t, 20*time.Second))
	if err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	return r, jobs
}

func TestGodv1Binary(t *testing.T) {
	r, jobs := startGodv1(t)
	ctx := testutil.Context(t, 20*time.Second)
	if want := []string{"backend", "postgres", "worker", "fragile"}; !reflect.DeepEqual(jobs, want) {
		t.Fatalf("jobs = %q, want %q", jobs, want)
	}

	// The v0.1 README jobs.
	backend, err := r.c.Define(ctx, "backend")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(backend.Exec, []string{jobbin}) || !backend.Auto.Start || backend.Auto.After != nil {
		t.Fatalf("backend = %+v", backend)
	}
	if m, err := r.c.Ask(ctx, "backend", "check", "123"); err != nil || !reflect.DeepEqual(m, loader.Message{"ok"}) {
		t.Fatalf("backend check = %q, %v; want [ok]", m, err)
	}
	if m, err := r.c.Ask(ctx, "backend", "check"); err != nil || !reflect.DeepEqual(m, loader.Message{"ok"}) {
		t.Fatalf("backend check without pid (v0.1 god) = %q, %v; want [ok]", m, err)
	}
	postgres, err := r.c.Define(ctx, "postgres")
	if err != nil || len(postgres.Exec) != 3 || !postgres.Auto.Start {
		t.Fatalf("postgres = %+v, %v", postgres, err)
	}

	// Every value rule, through the protocol.
	worker, err := r.c.Define(ctx, "worker")
	if err != nil {
		t.Fatal(err)
	}
	want := loader.Definition{
		Name:           "worker",
		Exec:           []string{jobbin},
		Env:            []string{"A=1", "WATCHGOD_EXECFUNC=worker"},
		Auto:           loader.Auto{Start: true, After: []string{"backend", "postgres"}},
		Listen:         []string{"http=tcp://127.0.0.1:0"},
		Instances:      3,
		Ready:          loader.Ready{Mode: loader.ReadyDelay, Delay: 200 * time.Millisecond},
		Reload:         loader.Reload{Mode: loader.ReloadOverlap},
		Restart:        loader.RestartOnFailure,
		Dir:            "/tmp",
		Log:            loader.LogJSON,
		Watchdog:       30 * time.Second,
		MaxConnections: loader.DefaultMaxConnections,
	}
	if !reflect.DeepEqual(worker, want) {
		t.Fatalf("worker =\n%+v\nwant\n%+v", worker, want)
	}
	for _, tc := range []struct {
		args []string
		want loader.Message
	}{
		{[]string{"check", "77"}, loader.Message{"degrade", "250"}},
		{[]string{"stop", "77"}, loader.Message{"SIGINT", "1500"}},
		{[]string{"onExit", "143", "77"}, loader.Message{"exit 143 of 77"}},
		{[]string{"onStart", "77"}, loader.Message{}},
		{[]string{"onSomethingNew", "77"}, loader.Message{}},
	} {
		m, err := r.c.Ask(ctx, "worker", tc.args[0], tc.args[1:]...)
		if err != nil || !reflect.DeepEqual(m, tc.want) {
			t.Errorf("worker %q = %q, %v; want %q", tc.args, m, err, tc.want)
		}
	}

	// Panics and bad values are answered, not fatal.
	for _, tc := range []struct {
		prop string
		want loader.Message
	}{
		{"check", loader.Message{"fail"}},
		{"env", loader.Message{}},
		{"auto", loader.Message{}},
		{"exec", loader.Message{"/bin/true"}},
	} {
		m, err := r.c.Ask(ctx, "fragile", tc.prop, "1")
		if err != nil || !reflect.DeepEqual(m, tc.want) {
			t.Errorf("fragile %s = %q, %v; want %q", tc.prop, m, err, tc.want)
		}
	}
	if m, err := r.c.Ask(ctx, "nosuchjob", "exec"); err != nil || len(m) != 0 {
		t.Errorf("unknown job exec = %q, %v; want []", m, err)
	}

	// At EOF the loader exits 0, and its stray output went to stderr.
	r.stdin.Close()
	err = r.cmd.Wait()
	if err != nil {
		t.Fatalf("loader exit: %v\nstderr:\n%s", err, r.stderr)
	}
	for _, s := range []string{"stray output from a check", "check exploded", "env exploded", "unsupported value of type float64"} {
		if !strings.Contains(r.stderr.String(), s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	if n := strings.Count(r.stderr.String(), "unsupported value"); n != 1 {
		t.Errorf("unsupported value reported %d times, want once", n)
	}
}

func TestExecFuncJob(t *testing.T) {
	r, _ := startGodv1(t)
	def, err := r.c.Define(testutil.Context(t, 20*time.Second), "worker")
	if err != nil {
		t.Fatal(err)
	}
	// Run the job as god would: its argv and god's environment plus its env.
	cmd := exec.CommandContext(testutil.Context(t, 20*time.Second), def.Exec[0], def.Exec[1:]...)
	cmd.Env = append(os.Environ(), def.Env...)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "worker ran\n" {
		t.Fatalf("worker job: %v, output %q; want \"worker ran\\n\"", err, out)
	}
}

func TestNormalRunIsUnaffected(t *testing.T) {
	out, err := exec.CommandContext(testutil.Context(t, 20*time.Second), jobbin).CombinedOutput()
	if err != nil || string(out) != "main ran\n" {
		t.Fatalf("jobbin: %v, output %q", err, out)
	}
	// An ExecFunc marker naming no such job falls through to main.
	cmd := exec.CommandContext(testutil.Context(t, 20*time.Second), jobbin)
	cmd.Env = append(os.Environ(), "WATCHGOD_EXECFUNC=backend")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || stdout.String() != "main ran\n" || !strings.Contains(stderr.String(), "no job with an ExecFunc") {
		t.Fatalf("jobbin with a stale marker: %v, stdout %q, stderr %q", err, stdout.String(), stderr.String())
	}
}

func TestGodv1BinaryKilledMidRequest(t *testing.T) {
	r, _ := startGodv1(t)
	if err := r.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_, err := r.c.Ask(testutil.Context(t, 20*time.Second), "backend", "exec")
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ask to a killed loader = %v, want a prompt read or write error", err)
	}
}
