package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ValidJobName reports whether name is a job name: 1 to 64 of
// A-Z a-z 0-9 _ . - (the same rule as the godv1 loader protocol).
func ValidJobName(name string) bool {
	if len(name) == 0 || len(name) > MaxJobNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// jobArity says how many job names each command takes: needsJobs means at
// least one, noJobs means none; neither means any number.
var jobArity = map[string]struct{ needsJobs, noJobs bool }{
	CmdStatus:   {},
	CmdStart:    {needsJobs: true},
	CmdStop:     {needsJobs: true},
	CmdRestart:  {needsJobs: true},
	CmdReload:   {needsJobs: true},
	CmdLogs:     {},
	CmdRescan:   {noJobs: true},
	CmdShutdown: {noJobs: true},
	CmdVersion:  {noJobs: true},
	CmdUpgrade:  {noJobs: true},
	CmdMetrics:  {noJobs: true},
	CmdFds:      {},
}

// Validate checks the version, the command, the job names (see ValidJobName;
// at most MaxJobs, none twice), how many jobs the command takes (start, stop,
// restart and reload need at least one; rescan, shutdown, version, upgrade and
// metrics take none) and that Follow, Lines, Since and Stream are only set for logs, with Lines
// in NoLines..MaxLines and Stream stdout or stderr. The error says what is wrong and quotes the culprit.
func (r *Request) Validate() error {
	switch {
	case r.V == 0:
		return fmt.Errorf(`missing protocol version: send "v": %d`, Version)
	case r.V != Version:
		return fmt.Errorf("unsupported protocol version %d: this god speaks version %d", r.V, Version)
	case r.Cmd == "":
		return errors.New(`missing command ("cmd")`)
	}
	arity, known := jobArity[r.Cmd]
	if !known {
		return fmt.Errorf("unknown command %q", r.Cmd)
	}
	if len(r.Jobs) > MaxJobs {
		return fmt.Errorf("%s: too many jobs: %d (at most %d)", r.Cmd, len(r.Jobs), MaxJobs)
	}
	seen := make(map[string]bool, len(r.Jobs))
	for _, name := range r.Jobs {
		if !ValidJobName(name) {
			return fmt.Errorf("%s: invalid job name %q: a job name is 1 to %d of A-Z a-z 0-9 _ . -", r.Cmd, name, MaxJobNameLen)
		}
		if seen[name] {
			return fmt.Errorf("%s: job %q named twice", r.Cmd, name)
		}
		seen[name] = true
	}
	switch {
	case arity.needsJobs && len(r.Jobs) == 0:
		return fmt.Errorf("%s: needs at least one job name", r.Cmd)
	case arity.noJobs && len(r.Jobs) > 0:
		return fmt.Errorf("%s: takes no job names (got %q)", r.Cmd, r.Jobs[0])
	}
	if r.Cmd != CmdLogs {
		if r.Follow {
			return fmt.Errorf("%s: follow is only for logs", r.Cmd)
		}
		if r.Lines != 0 {
			return fmt.Errorf("%s: lines is only for logs", r.Cmd)
		}
		if !r.Since.IsZero() {
			return fmt.Errorf("%s: since is only for logs", r.Cmd)
		}
		if r.Stream != "" {
			return fmt.Errorf("%s: stream is only for logs", r.Cmd)
		}
	}
	switch r.Stream {
	case "", StreamStdout, StreamStderr:
	default:
		return fmt.Errorf("%s: unknown stream %q (want stdout or stderr)", r.Cmd, r.Stream)
	}
	if r.Lines < NoLines || r.Lines > MaxLines {
		return fmt.Errorf("%s: lines %d out of range %d..%d", r.Cmd, r.Lines, NoLines, MaxLines)
	}
	return nil
}

// DecodeRequest parses one request line (with or without its trailing
// newline) and validates it, so a Request it returns is ready to run. Unknown
// fields are ignored for forward compatibility; anything after the JSON
// object, a value that is not an object, or a line longer than
// MaxRequestSize is an error.
func DecodeRequest(line []byte) (Request, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	if len(line) > MaxRequestSize {
		return Request{}, fmt.Errorf("request too large: %d bytes (at most %d)", len(line), MaxRequestSize)
	}
	trimmed := bytes.TrimLeft(line, " \t\r")
	if len(trimmed) == 0 {
		return Request{}, errors.New("empty request line")
	}
	if trimmed[0] != '{' {
		return Request{}, errors.New("malformed request: not a JSON object")
	}
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Request{}, fmt.Errorf("malformed request: %w", err)
	}
	if err := req.Validate(); err != nil {
		return Request{}, err
	}
	return req, nil
}
