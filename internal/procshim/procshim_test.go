package procshim

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMain makes the test binary the shim when Env is set, as god's main does.
func TestMain(m *testing.M) {
	RunIfRequested()
	os.Exit(m.Run())
}

// TestShim runs the test binary as the shim for /bin/sh and reads back what the shell got.
func TestShim(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	umask := uint32(0o027)
	spec := Spec{Path: "/bin/sh", Umask: &umask, ListenPid: true,
		Limits: []Limit{{Resource: 4 /* RLIMIT_CORE */, Soft: 0, Hard: 0}}}
	argv, item := Command(self, spec, []string{"sh", "-c", `echo "$(umask) $(ulimit -c) $LISTEN_PID $$ ${` + Env + `-unset}"`})
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), item)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("shim: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 5 || f[0] != "0027" || f[1] != "0" || f[2] != f[3] || f[4] != "unset" {
		t.Fatalf("shell saw %q, want umask 0027, core 0, LISTEN_PID its own pid, %s unset", out, Env)
	}
}

// TestShimFails: a bad spec is a message on stderr and exit 127, not a run of the job.
func TestShimFails(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self, "sh", "-c", "echo ran")
	cmd.Env = append(os.Environ(), Env+"={bad json")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 127 || !strings.Contains(string(out), "god shim:") {
		t.Fatalf("shim with a bad spec: %v\n%s", err, out)
	}
}
