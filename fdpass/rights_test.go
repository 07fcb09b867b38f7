package fdpass

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/internal/testutil"
)

// socketpair returns both ends of a connected unix socket pair of type typ.
func socketpair(t testing.TB, typ int) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "socketpair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	return conn(fds[0]), conn(fds[1])
}

// tempFiles opens n distinct files and closes them at cleanup.
func tempFiles(t testing.TB, n int) []*os.File {
	t.Helper()
	dir := t.TempDir()
	var files []*os.File
	for i := range n {
		f, err := os.Create(filepath.Join(dir, itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
	}
	return files
}

// sameFile reports whether a and b are the same open file (device and inode).
func sameFile(t testing.TB, a, b *os.File) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(int(a.Fd()), &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(int(b.Fd()), &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func TestSendReceive(t *testing.T) {
	for _, typ := range []int{unix.SOCK_STREAM, unix.SOCK_DGRAM, unix.SOCK_SEQPACKET} {
		a, b := socketpair(t, typ)
		sent := tempFiles(t, 3)
		_, sock := mustOpen(t, "s=tcp://127.0.0.1:0")
		sent = append(sent, sock)
		if err := Send(a, []byte("four"), sent...); err != nil {
			t.Fatal(err)
		}
		data, got, err := Receive(b, 4)
		if err != nil {
			t.Fatal(err)
		}
		if string(data) != "four" || len(got) != len(sent) {
			t.Fatalf("type %d: got %q and %d files, want \"four\" and %d", typ, data, len(got), len(sent))
		}
		for i := range got {
			if !sameFile(t, sent[i], got[i]) {
				t.Errorf("type %d: file %d is not the one sent", typ, i)
			}
			if cloexec, _ := fdState(t, got[i]); !cloexec {
				t.Errorf("type %d: received fd %d not close-on-exec", typ, i)
			}
		}
		// The socket is still god's kind: blocking, and it matches its spec.
		if _, nb := fdState(t, got[3]); nb {
			t.Errorf("type %d: received socket non-blocking", typ)
		}
		closeAll(got)
	}
}

func TestSendEmptyData(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_STREAM)
	files := tempFiles(t, 1)
	if err := Send(a, nil, files...); err != nil {
		t.Fatal(err)
	}
	data, got, err := Receive(b, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(got)
	if !bytes.Equal(data, []byte{0}) || len(got) != 1 || !sameFile(t, files[0], got[0]) {
		t.Errorf("stream, empty data: got %q and %d files, want one 0 byte and the file", data, len(got))
	}

	// A datagram socket sends an empty message as is.
	c, d := socketpair(t, unix.SOCK_DGRAM)
	if err := Send(c, nil); err != nil {
		t.Fatal(err)
	}
	data, got, err = Receive(d, 0)
	if err != nil || len(data) != 0 || len(got) != 0 {
		t.Errorf("datagram, empty: got %q, %d files, %v", data, len(got), err)
	}
}

// TestReceiveTruncated sends more fds than the receiver allows and checks
// for an error and no fd left open in the receiver.
func TestReceiveTruncated(t *testing.T) {
	for _, tc := range []struct{ sent, max int }{{3, 1}, {2, 1}, {1, 0}, {10, 4}, {MaxFDs, 3}} {
		a, b := socketpair(t, unix.SOCK_STREAM)
		files := tempFiles(t, 1)
		sent := make([]*os.File, tc.sent)
		for i := range sent {
			sent[i] = files[0]
		}
		before := testutil.OpenFds(t)
		if err := Send(a, []byte("x"), sent...); err != nil {
			t.Fatal(err)
		}
		data, got, err := Receive(b, tc.max)
		if err == nil {
			closeAll(got)
			t.Errorf("sent %d, max %d: no error", tc.sent, tc.max)
			continue
		}
		if data != nil || got != nil {
			t.Errorf("sent %d, max %d: data %q and %d files with error %v", tc.sent, tc.max, data, len(got), err)
		}
		if after := testutil.OpenFds(t); after != before {
			t.Errorf("sent %d, max %d: %d fds before, %d after: leaked (%v)", tc.sent, tc.max, before, after, err)
		}
	}
}

func TestSendReceiveErrors(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_STREAM)
	files := tempFiles(t, 1)
	many := make([]*os.File, MaxFDs+1)
	for i := range many {
		many[i] = files[0]
	}
	if err := Send(a, []byte("x"), many...); err == nil || !strings.Contains(err.Error(), "at most 253") {
		t.Errorf("Send of %d fds: %v", len(many), err)
	}
	if _, _, err := Receive(b, MaxFDs+1); err == nil {
		t.Error("Receive with max 254: no error")
	}
	if _, _, err := Receive(b, -1); err == nil {
		t.Error("Receive with max -1: no error")
	}
	closed := tempFiles(t, 1)[0]
	closed.Close()
	if err := Send(a, []byte("x"), closed); err == nil {
		t.Error("Send of a closed file: no error")
	}
	a.Close()
	if _, _, err := Receive(b, 1); !errors.Is(err, io.EOF) {
		t.Errorf("Receive after the peer closed: %v, want EOF", err)
	}
	if err := Send(b, []byte("x")); err == nil {
		t.Error("Send to a closed peer: no error")
	}
}

// TestSendReceiveNoLeak counts this process's fds around many rounds of
// passing fds that are then closed.
func TestSendReceiveNoLeak(t *testing.T) {
	a, b := socketpair(t, unix.SOCK_STREAM)
	files := tempFiles(t, 5)
	round := func() {
		if err := Send(a, []byte("data"), files...); err != nil {
			t.Fatal(err)
		}
		_, got, err := Receive(b, len(files))
		if err != nil {
			t.Fatal(err)
		}
		closeAll(got)
	}
	round()
	before := testutil.OpenFds(t)
	for range 100 {
		round()
	}
	if after := testutil.OpenFds(t); after != before {
		t.Errorf("open fds: %d before, %d after 100 rounds", before, after)
	}
}

func TestParseRights(t *testing.T) {
	oob := append(unix.UnixRights(7, 8), unix.UnixCredentials(&unix.Ucred{Pid: 1})...)
	oob = append(oob, unix.UnixRights(9)...)
	fds, err := ParseRights(oob)
	if err != nil || len(fds) != 3 || fds[0] != 7 || fds[1] != 8 || fds[2] != 9 {
		t.Errorf("ParseRights = %v, %v; want [7 8 9]", fds, err)
	}
	// A bad header after a good message: the fds seen so far come back with the error.
	bad := append(unix.UnixRights(5), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
	fds, err = ParseRights(bad)
	if err == nil || len(fds) != 1 || fds[0] != 5 {
		t.Errorf("ParseRights(bad) = %v, %v; want [5] and an error", fds, err)
	}
	if fds, err := ParseRights(nil); err != nil || fds != nil {
		t.Errorf("ParseRights(nil) = %v, %v", fds, err)
	}
}

func FuzzParseRights(f *testing.F) {
	f.Add(unix.UnixRights(3))
	f.Add(unix.UnixRights(3, 4, 5))
	f.Add(append(unix.UnixCredentials(&unix.Ucred{Pid: 1, Uid: 2, Gid: 3}), unix.UnixRights(9)...))
	f.Add(unix.UnixRights(1)[:20])
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Fuzz(func(t *testing.T, oob []byte) {
		fds, err := ParseRights(oob)
		if 4*len(fds) > len(oob) {
			t.Fatalf("%d fds from %d bytes", len(fds), len(oob))
		}
		if err == nil {
			// Well-formed data parses the same with x/sys/unix.
			msgs, uerr := unix.ParseSocketControlMessage(oob)
			if uerr != nil {
				return
			}
			var want []int
			for _, m := range msgs {
				if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SCM_RIGHTS {
					r, err := unix.ParseUnixRights(&m)
					if err != nil {
						return
					}
					want = append(want, r...)
				}
			}
			if len(want) != len(fds) {
				t.Fatalf("ParseRights = %v, x/sys/unix = %v", fds, want)
			}
		}
	})
}
