package control

import (
	"encoding/json"
	"time"
)

// Version is the protocol version spoken here. A request that carries another
// version is refused with an error that names both.
const Version = 1

// Commands a [Request] may carry in its Cmd field.
const (
	CmdStatus   = "status"   // report jobs; Jobs narrows the report (empty: all)
	CmdStart    = "start"    // start the named jobs (at least one)
	CmdStop     = "stop"     // stop the named jobs (at least one)
	CmdRestart  = "restart"  // stop, then start the named jobs (at least one)
	CmdReload   = "reload"   // reload the named jobs as their loader says (at least one)
	CmdLogs     = "logs"     // recent output lines of the named jobs (empty: all); Follow streams new ones
	CmdRescan   = "rescan"   // rescan the loader directory now
	CmdShutdown = "shutdown" // stop every job and exit
	CmdVersion  = "version"  // report the daemon's version
	CmdUpgrade  = "upgrade"  // re-exec god's binary in place, keeping the jobs
	CmdMetrics  = "metrics"  // god's counters, job states and Go runtime figures, for the metrics exporter
	CmdFds      = "fds"      // reserved: a result that carries descriptors (see [ConnHandler])
)

// Types of [Response] lines.
const (
	TypeProgress = "progress" // something happened while the request runs
	TypeLog      = "log"      // one output line of a job (logs command)
	TypeResult   = "result"   // the last line of every response stream
)

// Limits of a [Request].
const (
	MaxRequestSize = 64 << 10 // bytes in a request line, without its "\n"
	MaxJobs        = 1024     // job names in one request
	MaxLines       = 100000   // largest Lines of a logs request
	DefaultLines   = 50       // what Lines == 0 means for a logs request
	NoLines        = -1       // Lines of a logs request that wants no past lines (god logs -f -n 0)
	MaxJobNameLen  = 64       // longest job name, as in the godv1 loader protocol
)

// Request is one line of JSON sent by a client; exactly one per connection.
type Request struct {
	V      int      `json:"v"`
	Cmd    string   `json:"cmd"` // one of the Cmd constants
	Jobs   []string `json:"jobs,omitempty"`
	Follow bool     `json:"follow,omitempty"` // logs -f: keep streaming new lines until the client leaves
	Lines  int      `json:"lines,omitempty"`  // logs -n: lines of history (0 = DefaultLines, NoLines = none; at most MaxLines)
	// Since (logs --since) asks for the lines read at or after this time, from the log files
	// (god --log-dir) where the ring no longer has them; with Since, Lines 0 means all of them.
	Since time.Time `json:"since,omitzero"`
	// Stream (logs --stream) keeps only the lines of one stream: StreamStdout or StreamStderr.
	Stream string `json:"stream,omitempty"`
}

// Streams a logs request may ask for in Request.Stream.
const (
	StreamStdout = "stdout"
	StreamStderr = "stderr"
)

// Response is one line of JSON from the server. A response stream is zero or
// more "progress"/"log" lines, then exactly one "result" line, then the
// server closes the connection.
//
// Zero times are left out of the JSON (omitzero) rather than sent as
// "0001-01-01T00:00:00Z".
type Response struct {
	V       int         `json:"v"`
	Type    string      `json:"type"` // one of the Type constants
	Time    time.Time   `json:"time,omitzero"`
	Job     string      `json:"job,omitempty"`     // progress: which job
	Message string      `json:"message,omitempty"` // progress text, or result summary ("started web", "stopped 2 jobs")
	Log     *LogLine    `json:"log,omitempty"`     // log: the line
	OK      bool        `json:"ok"`                // result: the request succeeded
	Error   string      `json:"error,omitempty"`   // result: why it failed, naming the culprit
	Jobs    []JobStatus `json:"jobs,omitempty"`    // status result
	Version string      `json:"version,omitempty"` // version result: the daemon's version
	// Goroutines is the daemon's goroutine count in a version result: tests and operators watch
	// it across reloads and upgrades to catch leaks.
	Goroutines int `json:"goroutines,omitempty"`
	// Metrics is the metrics result: a supervisor.MetricsSnapshot as JSON (docs/control.md). It
	// stays raw here because the snapshot's types belong to the supervisor, which imports this
	// package; the exporter (cmd/god-metrics) decodes it.
	Metrics json.RawMessage `json:"metrics,omitempty"`
	// More is a hint from a handler to the server, never sent: further lines follow at once, so
	// the server may keep this one in its buffer and send a burst in a few writes. A line
	// without More, the result, or a full buffer sends everything buffered. On the client side
	// Client.Do sets it when further lines are already read: the caller may hold its output.
	More bool `json:"-"`
}

// LogLine is one output line of a job process, as god parsed it.
type LogLine struct {
	Time       time.Time         `json:"time"`
	Job        string            `json:"job"`
	Generation int               `json:"gen"`
	Pid        int               `json:"pid"`
	Stream     string            `json:"stream"` // "stdout" or "stderr"
	Level      string            `json:"level"`  // as the job's log format gave it; may be empty
	Msg        string            `json:"msg"`
	Attrs      map[string]string `json:"attrs,omitempty"`
}

// JobStatus is the state of one job, as the status command reports it.
type JobStatus struct {
	Name       string          `json:"name"`
	Loader     string          `json:"loader"`
	State      string          `json:"state"`            // wait start run degrade exit stop stopped done backoff failed
	Reason     string          `json:"reason,omitempty"` // why failed/waiting/backing off
	Generation int             `json:"generation"`
	Processes  []ProcessStatus `json:"processes,omitempty"`
	Since      time.Time       `json:"since,omitzero"` // entered current state
	Restarts   int             `json:"restarts"`
	LastExit   string          `json:"last_exit,omitempty"` // e.g. "exit 1", "signal 9 (SIGKILL)"
	Check      string          `json:"check,omitempty"`     // last check reply, e.g. "ok", "degrade", "fail: timeout"
	Sockets    []string        `json:"sockets,omitempty"`   // "http=tcp://127.0.0.1:8080"
	Status     string          `json:"status,omitempty"`    // STATUS= text from the job
	Reload     string          `json:"reload,omitempty"`    // last reload outcome
	User       string          `json:"user,omitempty"`      // the job's user property: whom its processes run as ("": god's user)
	// Next is when a job backing off restarts, or when a job failed by flapping tries again.
	Next time.Time `json:"next,omitzero"`
	// Connections is how many connection processes an accept job runs now.
	Connections int `json:"connections,omitempty"`
}

// ProcessStatus is one running process of a job.
type ProcessStatus struct {
	Pid        int       `json:"pid"`
	Generation int       `json:"gen"`
	Instance   int       `json:"instance"`
	Started    time.Time `json:"started"`
	State      string    `json:"state,omitempty"` // starting, ready, degraded, stopping
	// Escaped are processes it started that left its process group (a daemon that called
	// setsid) and that god holds with it all the same.
	Escaped []int `json:"escaped,omitempty"`
	// CPUSeconds is the processor time the process has used (user and system, as ps's TIME);
	// RSSBytes its resident memory. Both are read from /proc when status is asked; absent
	// when it could not be read (the process just ended).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	RSSBytes   int64   `json:"rss_bytes,omitempty"`
}
