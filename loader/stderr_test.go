package loader

import (
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

func TestParseStderr(t *testing.T) {
	stderr := func(m Message) (any, error) { return parseStderr(m) }
	checkParses(t, []propCase{
		{stderr, ``, StderrPipe},
		{stderr, `pipe`, StderrPipe},
		{stderr, `stdout`, StderrStdout},
		{stderr, `null`, StderrNull},
		{stderr, `inherit`, nil},
		{stderr, `STDOUT`, nil},
		{stderr, `stdout|null`, nil},
		{stderr, ` stdout`, nil},
		{stderr, `|`, nil},
	})
	if _, err := parseStderr(Message{"journal"}); err == nil || !strings.Contains(err.Error(), `"journal"`) {
		t.Errorf("parseStderr(journal) error = %v, want one quoting the value", err)
	}
	for m, want := range map[StderrMode]string{StderrPipe: "pipe", StderrStdout: "stdout", StderrNull: "null"} {
		if got := m.String(); got != want {
			t.Errorf("%q.String() = %q, want %q", string(m), got, want)
		}
		// What a mode prints is what parses back to it.
		if back, err := parseStderr(Message{m.String()}); err != nil || back != m {
			t.Errorf("parseStderr(%q) = %q, %v; want %q", m.String(), back, err, m)
		}
	}
}

func TestStderrPipes(t *testing.T) {
	for _, c := range []struct {
		mode StderrMode
		conn bool
		want int
	}{
		{StderrPipe, false, 2}, {StderrStdout, false, 1}, {StderrNull, false, 1},
		{StderrPipe, true, 1}, {StderrStdout, true, 0}, {StderrNull, true, 0},
	} {
		if got := c.mode.Pipes(c.conn); got != c.want {
			t.Errorf("%s.Pipes(conn %v) = %d, want %d", c.mode, c.conn, got, c.want)
		}
	}
}

// TestDefineStderr: a loader's stderr reply reaches the definition; a bad one fails Define
// with an error naming the job, the property and the value, and leaves the client usable.
func TestDefineStderr(t *testing.T) {
	c, _ := handshaken(t, `#!/bin/bash
echo '["godv1","merged","quiet","own","bad"]'
while IFS= read -r req; do
	case "$req" in
	'["merged","stderr"]') echo '["stdout"]' ;;
	'["quiet","stderr"]') echo '["null"]' ;;
	'["bad","stderr"]') echo '["inherit"]' ;;
	*) echo '[]' ;;
	esac
done
`)
	ctx := testutil.Context(t, 10*time.Second)
	for job, want := range map[string]StderrMode{"merged": StderrStdout, "quiet": StderrNull, "own": StderrPipe} {
		def, err := c.Define(ctx, job)
		if err != nil || def.Stderr != want {
			t.Errorf("Define(%s).Stderr = %q, %v; want %q", job, def.Stderr, err, want)
		}
	}
	_, err := c.Define(ctx, "bad")
	for _, s := range []string{"job bad", "stderr", `"inherit"`} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("Define(bad) error = %v, want one that says %s", err, s)
		}
	}
	if c.Broken() != nil {
		t.Fatalf("a bad stderr reply broke the client: %v", c.Broken())
	}
	if _, err := c.Define(ctx, "own"); err != nil {
		t.Errorf("Define after a bad reply: %v", err)
	}
}
