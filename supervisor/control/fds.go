package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/emielm/watchgod/fdpass"
)

// FetchSockets asks the god at path for job's listening sockets. The result line comes with the
// sockets as SCM_RIGHTS, in the order of names. The files are close-on-exec and owned by the
// caller. A god that does not know the job is an error; a job without sockets gives none.
func FetchSockets(ctx context.Context, path, job string) (names []string, files []*os.File, err error) {
	c, err := Dial(path)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	conn := c.conn
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	req := Request{V: Version, Cmd: CmdFds, Jobs: []string{job}}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, nil, err
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return nil, nil, fmt.Errorf("fds %s: %w", job, err)
	}
	var line []byte
	for !bytes.Contains(line, []byte("\n")) {
		data, fs, err := fdpass.Receive(conn, fdpass.MaxFDs)
		files = append(files, fs...)
		line = append(line, data...)
		if err != nil {
			closeAll(files)
			return nil, nil, fmt.Errorf("fds %s: %w", job, err)
		}
		if len(line) > MaxRequestSize*16 {
			closeAll(files)
			return nil, nil, fmt.Errorf("fds %s: reply too long", job)
		}
	}
	line, _, _ = bytes.Cut(line, []byte("\n"))
	var res Response
	if err := json.Unmarshal(line, &res); err != nil {
		closeAll(files)
		return nil, nil, fmt.Errorf("fds %s: bad reply: %w", job, err)
	}
	if !res.OK {
		closeAll(files)
		return nil, nil, fmt.Errorf("fds %s: %s", job, res.Error)
	}
	if len(res.Jobs) != 1 || len(res.Jobs[0].Sockets) != len(files) {
		closeAll(files)
		return nil, nil, fmt.Errorf("fds %s: reply names %d sockets but carried %d fds", job, len(res.Jobs[0].Sockets), len(files))
	}
	return res.Jobs[0].Sockets, files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
