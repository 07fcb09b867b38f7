package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// testLoader is a bash loader defining web (every property) and db (a bad
// instances reply).
const testLoader = `#!/bin/bash
[ "$1" = godv1 ] || { echo "usage: $0 godv1" >&2; exit 2; }
echo '["godv1","web","db"]'
while IFS= read -r req; do
	case "$req" in
	'["web","exec"]') echo '["/bin/sleep","1000"]' ;;
	'["web","env"]') echo '["A=1","B=two"]' ;;
	'["web","auto"]') echo '["db"]' ;;
	'["web","listen"]') echo '["http=tcp://127.0.0.1:0","dns=udp://[::1]:0"]' ;;
	'["web","instances"]') echo '["2"]' ;;
	'["web","ready"]') echo '["notify"]' ;;
	'["web","reload"]') echo '["signal","USR2"]' ;;
	'["web","restart"]') echo '["on-failure"]' ;;
	'["web","dir"]') echo '["/tmp"]' ;;
	'["web","log"]') echo '["json"]' ;;
	'["web","watchdog"]') echo '["30000"]' ;;
	'["web","check","'*) echo '["ok","500"]' ;;
	'["web","stop","'*) echo '["SIGINT","2000"]' ;;
	'["db","instances"]') echo '["many"]' ;;
	*) echo '[]' ;;
	esac
done
`

// echoLoader answers every request with the request itself.
const echoLoader = `#!/bin/bash
echo '["godv1","echo"]'
while IFS= read -r req; do printf '%s\n' "$req"; done
`

// loaderProc is a loader process under test.
type loaderProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   io.ReadCloser
}

// startLoader writes script to a file in a temp dir and runs it as
// "FILE godv1" with piped stdin and stdout; the process is killed and
// reaped at cleanup.
func startLoader(t testing.TB, script string) *loaderProc {
	t.Helper()
	file := testutil.WriteExecutable(t, t.TempDir(), "loader.sh", []byte(script))
	p := testutil.StartPiped(t, []string{file, Version})
	return &loaderProc{cmd: p.Cmd, stdin: p.Stdin, out: p.Stdout}
}

// handshaken starts script and completes the handshake.
func handshaken(t testing.TB, script string) (*Client, *loaderProc) {
	t.Helper()
	p := startLoader(t, script)
	c := NewClient(p.out, p.stdin)
	if _, err := c.Handshake(testutil.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	return c, p
}

func TestClientAgainstLoaderProcess(t *testing.T) {
	p := startLoader(t, testLoader)
	c := NewClient(p.out, p.stdin)
	ctx := testutil.Context(t, 10*time.Second)
	if _, err := c.Ask(ctx, "web", "exec"); err == nil {
		t.Fatal("Ask before Handshake succeeded")
	}
	jobs, err := c.Handshake(ctx)
	if err != nil || !reflect.DeepEqual(jobs, []string{"web", "db"}) {
		t.Fatalf("Handshake = %q, %v", jobs, err)
	}
	if _, err := c.Handshake(ctx); err == nil {
		t.Fatal("second Handshake succeeded")
	}

	def, err := c.Define(ctx, "web")
	if err != nil {
		t.Fatalf("Define(web): %v", err)
	}
	want := Definition{
		Name:           "web",
		Exec:           []string{"/bin/sleep", "1000"},
		Env:            []string{"A=1", "B=two"},
		Auto:           Auto{Start: true, After: []string{"db"}},
		Listen:         []string{"http=tcp://127.0.0.1:0", "dns=udp://[::1]:0"},
		Instances:      2,
		Ready:          Ready{Mode: ReadyNotify},
		Reload:         Reload{Mode: ReloadSignal, Signal: syscall.SIGUSR2},
		Restart:        RestartOnFailure,
		Dir:            "/tmp",
		Log:            LogJSON,
		Watchdog:       30 * time.Second,
		MaxConnections: DefaultMaxConnections,
	}
	if !reflect.DeepEqual(def, want) {
		t.Fatalf("Define(web) =\n%+v\nwant\n%+v", def, want)
	}

	m, err := c.Ask(ctx, "web", "check", "4242")
	if err != nil {
		t.Fatalf("Ask check: %v", err)
	}
	if chk, err := ParseCheck(m); err != nil || chk.Kind != CheckOK || chk.Next != 500*time.Millisecond {
		t.Fatalf("check reply %q parses to %+v, %v", m, chk, err)
	}
	m, err = c.Ask(ctx, "web", "stop", "4242")
	if st, err2 := ParseStop(m); err != nil || err2 != nil || st != (Stop{syscall.SIGINT, 2 * time.Second}) {
		t.Fatalf("stop reply %q: %+v, %v, %v", m, st, err, err2)
	}

	_, err = c.Define(ctx, "db")
	if err == nil || !strings.Contains(err.Error(), "db") || !strings.Contains(err.Error(), "instances") {
		t.Fatalf("Define(db) error = %v, want one naming db and instances", err)
	}
	if c.Broken() != nil {
		t.Fatalf("a bad reply broke the client: %v", c.Broken())
	}
	def, err = c.Define(ctx, "nosuchjob")
	if err != nil || def.Instances != 1 || def.Restart != RestartAlways || def.Log != LogText || def.Exec != nil {
		t.Fatalf("Define of an undefined job = %+v, %v; want defaults", def, err)
	}

	// The loader exits: the next request fails and breaks the client.
	p.stdin.Close()
	if _, err := c.Ask(ctx, "web", "exec"); err == nil {
		t.Fatal("Ask after the loader ended succeeded")
	}
	if c.Broken() == nil {
		t.Fatal("client not broken after the loader ended")
	}
}

func TestClientConcurrentAsks(t *testing.T) {
	c, _ := handshaken(t, echoLoader)
	ctx := testutil.Context(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Go(func() {
			arg := fmt.Sprint(i)
			m, err := c.Ask(ctx, "echo", "check", arg)
			if err != nil {
				errs <- err
				return
			}
			if len(m) != 3 || m[2] != arg {
				errs <- fmt.Errorf("Ask(%s) = %q: replies out of order", arg, m)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClientAskTimeoutBreaks(t *testing.T) {
	c, _ := handshaken(t, `#!/bin/bash
echo '["godv1","mute"]'
while IFS= read -r req; do :; done
`)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := c.Ask(ctx, "mute", "check", "1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ask = %v, want DeadlineExceeded", err)
	}
	if !strings.Contains(err.Error(), "mute check") {
		t.Errorf("error %q does not name the request", err)
	}
	if c.Broken() == nil {
		t.Fatal("client not broken after a timeout")
	}
	// Later calls fail at once even with plenty of time.
	_, err = c.Ask(testutil.Context(t, time.Hour), "mute", "exec")
	if !errors.Is(err, errBroken) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Ask on a broken client = %v, want errBroken wrapping the cause", err)
	}
}

func TestClientCanceledBeforeSendingStaysUsable(t *testing.T) {
	c, _ := handshaken(t, echoLoader)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.Ask(ctx, "echo", "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ask = %v, want Canceled", err)
	}
	if err := c.Broken(); err != nil {
		t.Fatalf("client broken by a request never sent: %v", err)
	}
	if m, err := c.Ask(testutil.Context(t, 10*time.Second), "echo", "y"); err != nil || m[1] != "y" {
		t.Fatalf("Ask = %q, %v", m, err)
	}
}

// hideDeadline hides SetWriteDeadline, to test the goroutine write path.
type hideDeadline struct{ io.Writer }

func TestClientWriteToLoaderThatDoesNotRead(t *testing.T) {
	const stuck = `#!/bin/bash
echo '["godv1","stuck"]'
exec sleep 1000
`
	big := strings.Repeat("x", 512<<10) // far over a pipe's buffer
	for _, mode := range []string{"deadline", "goroutine"} {
		t.Run(mode, func(t *testing.T) {
			p := startLoader(t, stuck)
			var w io.Writer = p.stdin
			if mode == "goroutine" {
				w = hideDeadline{p.stdin}
			}
			if _, ok := w.(writeDeadliner); ok != (mode == "deadline") {
				t.Fatalf("writer %T: deadline support %v", w, ok)
			}
			c := NewClient(p.out, w)
			if _, err := c.Handshake(testutil.Context(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
			defer cancel()
			_, err := c.Ask(ctx, "stuck", "check", big)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Ask = %v, want DeadlineExceeded", err)
			}
			if c.Broken() == nil {
				t.Fatal("client not broken")
			}
		})
	}
}

func TestClientHandshakeFailures(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		notGodv1     bool
		deadline     bool
	}{
		{"garbage", "#!/bin/bash\necho 'usage: foo [options]'\n", true, false},
		{"other array", "#!/bin/bash\necho '[\"hello\"]'\n", true, false},
		{"bad name", "#!/bin/bash\necho '[\"godv1\",\"a b\"]'\nexec sleep 1000\n", true, false},
		{"silent", "#!/bin/bash\nexec sleep 1000\n", true, true},
		{"exits", "#!/bin/bash\nexit 3\n", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startLoader(t, tc.script)
			c := NewClient(p.out, p.stdin)
			wait := 10 * time.Second // the loader answers or ends by itself
			if tc.deadline {
				wait = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			jobs, err := c.Handshake(ctx)
			if err == nil {
				t.Fatalf("Handshake = %q, want error", jobs)
			}
			if errors.Is(err, ErrNotGodv1) != tc.notGodv1 {
				t.Fatalf("Handshake error %v: ErrNotGodv1 is %v, want %v", err, !tc.notGodv1, tc.notGodv1)
			}
			if errors.Is(err, context.DeadlineExceeded) != tc.deadline {
				t.Fatalf("Handshake error %v: DeadlineExceeded is %v, want %v", err, !tc.deadline, tc.deadline)
			}
			if c.Broken() == nil {
				t.Fatal("client not broken by a failed handshake")
			}
		})
	}
}

func TestClientUnsolicitedMessage(t *testing.T) {
	c, _ := handshaken(t, `#!/bin/bash
echo '["godv1","chatty"]'
echo '["unasked"]'
while IFS= read -r req; do echo '[]'; done
`)
	// Wait until the reader goroutine holds the extra message.
	testutil.Eventually(t, 10*time.Second, "the extra message", func() bool { return len(c.frames) > 0 })
	_, err := c.Ask(testutil.Context(t, 10*time.Second), "chatty", "exec")
	if err == nil || !strings.Contains(err.Error(), "unsolicited") {
		t.Fatalf("Ask = %v, want an unsolicited-message error", err)
	}
}

// mapHandler is a Handler backed by a map from "job prop" to a reply.
type mapHandler struct {
	jobs    []string
	replies map[string][]string
}

func (h mapHandler) Jobs() []string { return h.jobs }

func (h mapHandler) Answer(job, prop string, args []string) []string {
	if prop == "check" && len(args) > 0 {
		return []string{"ok", args[0]}
	}
	return h.replies[job+" "+prop]
}

func TestServeRoundTripOverPipes(t *testing.T) {
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reqR.Close(); reqW.Close(); repR.Close(); repW.Close() })
	h := mapHandler{
		jobs: []string{"web", "db"},
		replies: map[string][]string{
			"web exec":      {"/usr/bin/web", "-v"},
			"web instances": {"3"},
			"web ready":     {"delay", "150"},
		},
	}
	served := make(chan error, 1)
	go func() { served <- Serve(reqR, repW, h) }()

	c := NewClient(repR, reqW)
	ctx := testutil.Context(t, 10*time.Second)
	jobs, err := c.Handshake(ctx)
	if err != nil || !reflect.DeepEqual(jobs, h.jobs) {
		t.Fatalf("Handshake = %q, %v", jobs, err)
	}
	def, err := c.Define(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(def.Exec, []string{"/usr/bin/web", "-v"}) || def.Instances != 3 ||
		def.Ready != (Ready{ReadyDelay, 150 * time.Millisecond}) {
		t.Fatalf("Define = %+v", def)
	}
	m, err := c.Ask(ctx, "web", "check", "50")
	if err != nil || !reflect.DeepEqual(m, Message{"ok", "50"}) {
		t.Fatalf("Ask check = %q, %v", m, err)
	}

	// A malformed request is answered with [] and serving goes on.
	if _, err := reqW.WriteString("{not json}\n[\"web\"]\n"); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if m, err := c.receive(ctx); err != nil || len(m) != 0 {
			t.Fatalf("reply to a malformed request = %q, %v; want []", m, err)
		}
	}
	m, err = c.Ask(ctx, "web", "exec")
	if err != nil || len(m) != 2 {
		t.Fatalf("Ask after malformed requests = %q, %v", m, err)
	}

	reqW.Close()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve = %v at EOF, want nil", err)
		}
	case <-ctx.Done():
		t.Fatal("Serve did not return at EOF")
	}
}

func TestServeRejectsBadJobList(t *testing.T) {
	for _, jobs := range [][]string{{"a b"}, {"web", "web"}, {""}} {
		var out strings.Builder
		err := Serve(strings.NewReader(""), &out, mapHandler{jobs: jobs})
		if err == nil || out.Len() != 0 {
			t.Errorf("Serve with jobs %q = %v, wrote %q; want an error and nothing written", jobs, err, out.String())
		}
	}
	var out strings.Builder
	if err := Serve(strings.NewReader(""), &out, mapHandler{}); err != nil || out.String() != "[\"godv1\"]\n" {
		t.Errorf("Serve with no jobs = %v, wrote %q", err, out.String())
	}
}

// TestClientAskWithinCountsFromTheWrite: concurrent callers wait for their turn; each reply gets
// within from its own write, so 20 callers of a loader that answers in 50 ms all succeed with
// a 300 ms limit although the last waits about a second for its turn. A loader that does not
// answer still fails within it, and breaks the Client.
func TestClientAskWithinCountsFromTheWrite(t *testing.T) {
	c, _ := handshaken(t, `#!/bin/bash
exec {never}<> <(:)
echo '["godv1","slow"]'
while IFS= read -r req; do
	case "$req" in
	*'"hang"'*) ;;
	*) read -r -t 0.05 -u "$never" _; printf '%s\n' "$req" ;;
	esac
done
`)
	ctx := testutil.Context(t, time.Minute) // the wait for a turn: generous
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			arg := fmt.Sprint(i)
			m, err := c.AskWithin(ctx, 300*time.Millisecond, "slow", "ping", arg)
			if err == nil && (len(m) != 3 || m[2] != arg) {
				err = fmt.Errorf("AskWithin(%s) = %q", arg, m)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t0 := time.Now()
	_, err := c.AskWithin(ctx, 100*time.Millisecond, "slow", "hang")
	if !errors.Is(err, context.DeadlineExceeded) || c.Broken() == nil {
		t.Fatalf("AskWithin of a request never answered = %v (broken: %v), want DeadlineExceeded and a broken Client", err, c.Broken())
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("the unanswered request failed after %s, want about 100ms", took)
	}
}
