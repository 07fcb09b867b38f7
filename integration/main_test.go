package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries built once by TestMain for every test.
var (
	godBin     string // cmd/god
	metricsBin string // cmd/god-metrics, next to godBin, where god --metrics looks for it
	backendBin string // examples/backend, the v0.1 README example
	clockFile  string // examples/shell/clock, the bash loader
	sockjobBin string // integration/testdata/sockjob, the socket tests' job (sock_*_test.go)
	// integration/testdata/manyjobs, a Go loader of N trivial jobs (scale_test.go, bench_scale_test.go)
	manyjobsBin string
	unitsBin    string // cmd/god-units, the systemd-unit loader (godunits_test.go)
)

// TestMain builds god, its metrics exporter, the god-units loader and the examples into a temporary directory (readable by every user, so a
// client run as another uid can exec god), runs the tests and removes the directory.
func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	// Every god of these tests panics on a move its state table does not allow.
	os.Setenv("GOD_STRICT_STATES", "1")
	bin, err := os.MkdirTemp("", "god-integration-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	defer os.RemoveAll(bin)
	if err := os.Chmod(bin, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	root, err := filepath.Abs("..")
	if err != nil {
		fmt.Fprintln(os.Stderr, "integration:", err)
		return 1
	}
	godBin = filepath.Join(bin, "god")
	metricsBin = filepath.Join(bin, "god-metrics")
	backendBin = filepath.Join(bin, "backend")
	clockFile = filepath.Join(root, "examples", "shell", "clock")
	sockjobBin = filepath.Join(bin, "sockjob")
	manyjobsBin = filepath.Join(bin, "manyjobs")
	unitsBin = filepath.Join(bin, "god-units")
	for _, b := range []struct{ out, pkg string }{{godBin, "./cmd/god"}, {metricsBin, "./cmd/god-metrics"}, {backendBin, "./examples/backend"}, {sockjobBin, "./integration/testdata/sockjob"}, {manyjobsBin, "./integration/testdata/manyjobs"}, {unitsBin, "./cmd/god-units"}} {
		args := []string{"build", "-o", b.out}
		if raceEnabled {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Dir = root
		if !raceEnabled {
			// As `make build` ships them: static. The race detector needs cgo.
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "integration: go build %s: %v\n", b.pkg, err)
			return 1
		}
	}
	return m.Run()
}
