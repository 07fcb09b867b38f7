package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeploySystemdUnits checks examples/systemd/god.service and god.socket with systemd's own
// parser (`systemd-analyze verify`), with ExecStart= pointing at the god under test: any
// unknown key, bad value or missing executable is printed, and the test wants no output at all.
func TestDeploySystemdUnits(t *testing.T) {
	t.Parallel()
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: apt-get install systemd")
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"god.service", "god.socket"} {
		b, err := os.ReadFile(filepath.Join("..", "examples", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/god"), []byte(godBin))
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, path)
	}
	cmd := exec.Command(analyze, append([]string{"verify"}, units...)...)
	cmd.Env = append(plainEnv(), "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, strings.TrimSpace(string(out)))
	}
}
