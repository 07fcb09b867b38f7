package loader

import "fmt"

// StderrMode says where a job's stderr (fd 2) goes. Each pipe costs god an open file for as
// long as the process runs, so a job whose stderr needs no stream of its own can save one:
// ["stdout"] is systemd's StandardError=inherit and supervisord's redirect_stderr.
type StderrMode string

const (
	// StderrPipe (the default, the zero value, so that a definition written before the property
	// existed means the same): a pipe of its own; its lines are tagged stream "stderr".
	StderrPipe StderrMode = ""
	// StderrStdout: fd 2 is fd 1 (dup'd): one pipe for both streams, every line tagged
	// "stdout", in the order the job wrote them. A connection process of an accept job writes
	// its stderr to the connection then, as its stdout.
	StderrStdout StderrMode = "stdout"
	// StderrNull: fd 2 is /dev/null; god holds no pipe for it.
	StderrNull StderrMode = "null"
)

// String is the mode as the property's reply names it ("pipe" for the default).
func (m StderrMode) String() string {
	if m == StderrPipe {
		return "pipe"
	}
	return string(m)
}

// Pipes is how many pipes god holds, and relays, for one process of a job with this mode and
// conn (an accept job's connection process, whose stdout is its connection).
func (m StderrMode) Pipes(conn bool) int {
	n := 2
	if m != StderrPipe {
		n-- // stderr shares stdout's fd, or goes to /dev/null
	}
	if conn {
		n-- // stdout is the connection
	}
	return n
}

// parseStderr reads ["pipe"], ["stdout"] or ["null"]; [] is ["pipe"].
func parseStderr(m Message) (StderrMode, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return StderrPipe, err
	}
	if len(m) == 0 {
		return StderrPipe, nil
	}
	switch m[0] {
	case "pipe":
		return StderrPipe, nil
	case string(StderrStdout), string(StderrNull):
		return StderrMode(m[0]), nil
	}
	return StderrPipe, fmt.Errorf("unknown stderr %.20q (want pipe, stdout or null)", m[0])
}
