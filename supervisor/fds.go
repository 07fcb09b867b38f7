package supervisor

import (
	"context"
	"net"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/supervisor/control"
)

// HandleConn answers `fds JOB`: the job's listening sockets, sent with the result line as
// SCM_RIGHTS, for a process that is not god's child or takes live sockets over itself
// (watchgod.Listener's second mode). The server already checked the peer (same uid or root).
func (s *Supervisor) HandleConn(ctx context.Context, peer control.Peer, req control.Request, conn *net.UnixConn, emit func(control.Response) error) (control.Response, bool) {
	if req.Cmd == control.CmdUpgrade {
		// On success the new image answers on conn; only a refusal is answered here.
		res := s.handleUpgrade(ctx, conn, emit)
		res.V, res.Type = control.Version, control.TypeResult
		if line, err := control.EncodeResponse(res); err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = conn.Write(line)
		}
		return res, true
	}
	if req.Cmd != control.CmdFds {
		return control.Response{}, false
	}
	if len(req.Jobs) != 1 {
		return control.Response{Error: "fds takes exactly one job"}, false
	}
	name := req.Jobs[0]
	reply := make(chan socketCopies, 1)
	found := false
	s.call(func() {
		if h, ok := s.jobs[name]; ok {
			found = true
			h.j.cmds.put(jobCmd{kind: cmdSockets, sockets: reply})
		}
	})
	if !found {
		return control.Response{Error: "unknown job " + name}, false
	}
	var c socketCopies
	select {
	case c = <-reply:
	case <-ctx.Done():
		return control.Response{Error: "cancelled"}, false
	}
	defer func() {
		for _, f := range c.files {
			f.Close()
		}
	}()
	if c.err != nil && len(c.files) == 0 {
		return control.Response{Error: c.err.Error()}, false
	}
	res := control.Response{V: control.Version, Type: control.TypeResult, OK: true,
		Message: "sockets of " + name, Jobs: []control.JobStatus{{Name: name, Sockets: c.names}}}
	line, err := control.EncodeResponse(res)
	if err != nil {
		return control.Response{Error: err.Error()}, false
	}
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := fdpass.Send(conn, line, c.files...); err != nil {
		return control.Response{Error: "send fds: " + err.Error()}, true
	}
	s.log.Info("sent sockets over the control socket", "job", name, "peer_pid", peer.Pid, "count", len(c.files))
	return res, true
}

// handleUpgrade re-executes god. When it works the new image answers on conn; this returns only
// the reason it did not.
func (s *Supervisor) handleUpgrade(ctx context.Context, conn *net.UnixConn, emit func(control.Response) error) control.Response {
	opts := s.cfg.Upgrade
	if opts.Exe == "" {
		return control.Response{Error: "this god cannot upgrade itself (no path to its binary)"}
	}
	opts.Reply = conn
	_ = emit(control.Response{Type: control.TypeProgress, Time: time.Now(), Message: "pre-flight: " + opts.Exe + " reads god's state"})
	err := s.Upgrade(ctx, opts)
	return control.Response{Error: err.Error()}
}
