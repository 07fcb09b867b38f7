package fdpass

import (
	"encoding/json"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestShimArgv(t *testing.T) {
	if got := ShimArgv(nil); got != nil {
		t.Errorf("ShimArgv(nil) = %q", got)
	}
	got := ShimArgv([]string{"/srv/app", "-x", "a b"})
	want := []string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`, "/srv/app", "-x", "a b"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ShimArgv = %q, want %q", got, want)
	}
	if got := GoShimArgv("/usr/bin/god", []string{"/srv/app", "-x"}); !reflect.DeepEqual(got, []string{"/usr/bin/god", "/srv/app", "-x"}) {
		t.Errorf("GoShimArgv = %q", got)
	}
	if got := GoShimArgv("/usr/bin/god", nil); got != nil {
		t.Errorf("GoShimArgv(self, nil) = %q", got)
	}
}

// TestShimListenPID starts the test binary with syscall.ForkExec through
// each shim, hands it a socket as fd 3, and checks that the child sees
// LISTEN_PID equal to its own pid and to the pid ForkExec returned (exec in
// place), and that go-systemd's activation accepts and serves the socket.
func TestShimListenPID(t *testing.T) {
	self := selfPath(t)
	for _, shim := range []string{"sh", "go"} {
		t.Run(shim, func(t *testing.T) {
			_, f := mustOpen(t, "web=tcp://127.0.0.1:0")
			env := append(baseEnv(), Env([]string{"web"})...)
			env = append(env, childEnv+"=listen")
			argv := ShimArgv([]string{self})
			if shim == "go" {
				argv = GoShimArgv(self, []string{self})
				env = append(env, ShimEnv+"=1")
			}
			c := forkExec(t, argv[0], argv, env, f)
			line := c.readLine(t)
			var rep listenReport
			if err := json.Unmarshal(line, &rep); err != nil {
				t.Fatalf("child said %q: %v", line, err)
			}
			if rep.Err != "" {
				t.Fatalf("child: %s (report %+v)", rep.Err, rep)
			}
			if rep.Pid != c.pid || rep.ListenPID != strconv.Itoa(c.pid) {
				t.Errorf("forked pid %d, child pid %d, LISTEN_PID %q: want all equal", c.pid, rep.Pid, rep.ListenPID)
			}
			if !reflect.DeepEqual(rep.Names, []string{"web"}) {
				t.Errorf("child's listener names %q, want [web]", rep.Names)
			}
			greeting := dialGreeting(t, "tcp", "127.0.0.1:"+itoa(sockPort(t, f)))
			if want := "hello from " + strconv.Itoa(c.pid); greeting != want {
				t.Errorf("greeting %q, want %q", greeting, want)
			}
			if out, ws := c.wait(t); ws.ExitStatus() != 0 {
				t.Errorf("child: %v, output %q", ws, out)
			}
			// The child's Go runtime made the shared description
			// non-blocking; Fd on god's copy must leave it so (the
			// trap that hangs a running generation's accept loop).
			if _, nb := fdState(t, f); !nb {
				t.Fatal("child did not make the shared description non-blocking")
			}
			f.Fd()
			if _, nb := fdState(t, f); !nb {
				t.Error("Fd() on god's copy put the shared description in blocking mode")
			}
		})
	}
}

// TestShimExecFails checks that both shims exit 127 when the job cannot be
// executed.
func TestShimExecFails(t *testing.T) {
	self := selfPath(t)
	missing := "/nonexistent/fdpass-test-job"
	for _, tc := range []struct {
		name string
		argv []string
		env  []string
		msg  string
	}{
		{"sh", ShimArgv([]string{missing}), nil, missing},
		{"go", GoShimArgv(self, []string{missing}), []string{ShimEnv + "=1"}, "exec " + missing},
		{"go-path", GoShimArgv(self, []string{"fdpass-no-such-command"}), []string{ShimEnv + "=1"}, "fdpass-no-such-command"},
		{"go-empty", []string{self}, []string{ShimEnv + "=1"}, "no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := forkExec(t, tc.argv[0], tc.argv, append(baseEnv(), tc.env...))
			_, ws := c.wait(t)
			if ws.ExitStatus() != 127 {
				t.Errorf("exit status %v, want 127", ws)
			}
			if !strings.Contains(string(c.stderr), tc.msg) {
				t.Errorf("stderr %q does not mention %q", c.stderr, tc.msg)
			}
		})
	}
}

// BenchmarkShim measures fork+exec+wait of /bin/true started directly,
// through the /bin/sh shim and through the Go shim (this test binary,
// which links more than a lean binary would).
func BenchmarkShim(b *testing.B) {
	self := selfPath(b)
	env := baseEnv()
	cases := []struct {
		name string
		argv []string
		env  []string
	}{
		{"direct", []string{"/bin/true"}, env},
		{"sh", ShimArgv([]string{"/bin/true"}), env},
		{"go", GoShimArgv(self, []string{"/bin/true"}), append(env[:len(env):len(env)], ShimEnv+"=1")},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			attr := &os.ProcAttr{Env: c.env, Files: []*os.File{nil, nil, os.Stderr}}
			for b.Loop() {
				p, err := os.StartProcess(c.argv[0], c.argv, attr)
				if err != nil {
					b.Fatal(err)
				}
				st, err := p.Wait()
				if err != nil || !st.Success() {
					b.Fatalf("%s: %v %v", strings.Join(c.argv, " "), st, err)
				}
			}
		})
	}
}
