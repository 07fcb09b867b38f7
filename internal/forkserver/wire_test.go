package forkserver

import (
	"encoding/json"
	"errors"
	"syscall"
	"testing"
)

// TestReplyCarriesErrno: an exec that failed in the server fails in god with the same errno, so
// that god tells a missing program (ENOENT) or a shortage of fds (EMFILE) apart as before.
func TestReplyCarriesErrno(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOENT, syscall.EACCES, syscall.EMFILE} {
		b, _ := json.Marshal(replyTo(7, 0, errno))
		var r reply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		if err := r.errorOf(); !errors.Is(err, errno) {
			t.Errorf("errno %v came back as %v", errno, err)
		}
	}
	if err := replyTo(3, 42, nil).errorOf(); err != nil {
		t.Errorf("a started child's reply is an error: %v", err)
	}
	if err := (reply{ID: 3}).errorOf(); err == nil {
		t.Error("a reply without pid nor error is no error")
	}
	if err := replyTo(3, 0, errors.New("odd")).errorOf(); err == nil || err.Error() != "odd" {
		t.Errorf("other error came back as %v", err)
	}
}

// TestParseRequestChecksFds: the fds that came with a request must be the ones it names.
func TestParseRequestChecksFds(t *testing.T) {
	ok := `{"id":1,"path":"/bin/true","argv":["true"],"files":3,"cgroup":true}`
	if _, err := parseRequest([]byte(ok), 4); err != nil {
		t.Fatalf("good request: %v", err)
	}
	for _, tc := range []struct {
		req  string
		nfds int
	}{
		{ok, 3},
		{`{"id":1,"path":"/bin/true","argv":["true"],"files":3}`, 4},
		{`{"id":1,"path":"/bin/true","argv":["true"],"files":-1}`, 0},
		{`{"id":1,"path":"","argv":["true"],"files":0}`, 0},
		{`{"id":1,"path":"/bin/true","argv":[],"files":0}`, 0},
		{`{"id":1,`, 0},
	} {
		if _, err := parseRequest([]byte(tc.req), tc.nfds); err == nil {
			t.Errorf("parseRequest(%s, %d fds) accepted", tc.req, tc.nfds)
		}
	}
}

// FuzzParseRequest: whatever arrives, a request is refused or names a program and exactly the
// fds that came with it.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"id":1,"path":"/bin/true","argv":["true"],"files":3,"cgroup":true}`), 4)
	f.Add([]byte(`{"id":2,"path":"/bin/sh","argv":["sh","-c","x"],"env":["A=B"],"dir":"/","setpgid":true,"cred":{"uid":1,"gid":2,"groups":[3]},"files":0}`), 0)
	f.Fuzz(func(t *testing.T, b []byte, nfds int) {
		req, err := parseRequest(b, nfds)
		if err != nil {
			return
		}
		want := req.Files
		if req.Cgroup {
			want++
		}
		if req.Files < 0 || want != nfds || req.Path == "" || len(req.Argv) == 0 {
			t.Fatalf("accepted %+v with %d fds", req, nfds)
		}
	})
}
