package integration

import (
	"testing"
	"time"
)

// TestV01NullReplies runs a loader in the style of v0.1's watchgod package, whose properties and
// hooks returning a nil []string answered the JSON null: every request but exec and auto gets
// "null". god reads null as [] (loader/frame.go), so the job runs with every default, and a
// restart (the stop hook answered null: the default stop) brings it back.
func TestV01NullReplies(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	script := `#!/usr/bin/env bash
[ "$1" = godv1 ] || exit 2
echo '["godv1","old"]'
while IFS= read -r req; do
	case "$req" in
	'["old","exec"]') echo '["/bin/sh","-c","echo v01 up; exec sleep 1000"]' ;;
	'["old","auto"]') echo '["true"]' ;;
	*) echo null ;;
	esac
done
`
	writeExecutable(t, g.dir, "v01", []byte(script))
	g.start()
	st := g.waitState("old", "run", 10*time.Second)
	if len(st.Processes) != 1 || len(st.Sockets) != 0 {
		t.Fatalf("status %+v: want one process, no sockets (the defaults)", st)
	}
	first := st.Processes[0].Pid
	g.jobLine(0, "old", "v01 up", 10*time.Second)
	g.mustCLI("restart", "old")
	st = g.waitState("old", "run", 10*time.Second)
	if len(st.Processes) != 1 || st.Processes[0].Pid == first {
		t.Errorf("after restart: %+v, want one new process", st.Processes)
	}
}
