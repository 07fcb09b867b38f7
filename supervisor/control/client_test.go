package control

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDoRaw: DoRaw hands back a status result's jobs as god encoded them, the rest of the result
// decoded, and progress lines to onLine as Do does.
func TestDoRaw(t *testing.T) {
	path, _ := startServer(t, echoHandler, nil)
	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var lines []Response
	res, jobs, err := c.DoRaw(context.Background(), Request{Cmd: CmdStatus, Jobs: []string{"web"}}, func(r Response) { lines = append(lines, r) })
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal([]JobStatus{{Name: "web", State: "run", Since: time.Unix(1700000000, 0).UTC()}})
	if string(jobs) != string(want) {
		t.Errorf("jobs %s, want %s", jobs, want)
	}
	if !res.OK || res.Type != TypeResult || res.Jobs != nil {
		t.Errorf("result %+v: want OK, a result, no decoded jobs", res)
	}
	if len(lines) != 1 || lines[0].Job != "web" {
		t.Errorf("progress lines %+v, want one for web", lines)
	}

	// A result without jobs gives none.
	res, jobs, err = c.DoRaw(context.Background(), Request{Cmd: CmdVersion}, nil)
	if err != nil || jobs != nil || res.Version != "test-1" {
		t.Errorf("version: %+v, jobs %q, %v", res, jobs, err)
	}
}

// TestDoRawOddJobs: a result whose jobs are null or missing gives nil jobs; one whose jobs are
// not an array is a malformed line, as it is for Do.
func TestDoRawOddJobs(t *testing.T) {
	for _, tt := range []struct {
		line, err string
	}{
		{`{"v":1,"type":"result","ok":true,"jobs":null}`, ""},
		{`{"v":1,"type":"result","ok":true}`, ""},
		{`{"v":1,"type":"result","ok":true,"jobs":5}`, "malformed response line: jobs is not an array: 5"},
		{`{"v":1,"type":"result","ok":true,"jobs":{"name":"x"}}`, "malformed response line: jobs is not an array"},
		{`{"v":1,"type":"result","ok":true,"jobs":[}`, "malformed response line"},
	} {
		path := cannedServer(t, tt.line)
		c, err := Dial(path)
		if err != nil {
			t.Fatal(err)
		}
		res, jobs, err := c.DoRaw(context.Background(), Request{Cmd: CmdStatus}, nil)
		c.Close()
		if tt.err == "" {
			if err != nil || jobs != nil || !res.OK {
				t.Errorf("%s: %+v, jobs %q, %v; want OK and no jobs", tt.line, res, jobs, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: error %v, want one containing %q", tt.line, err, tt.err)
		}
	}
}

// cannedServer answers one connection with line, after reading its request.
func cannedServer(t *testing.T, line string) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "god.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1024)
		conn.Read(buf)
		conn.Write([]byte(line + "\n"))
	}()
	return path
}
