package upgradestate

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/emielm/watchgod/fdpass"
)

// TestHelpers: Check accepts helpers from version 2 on, with unique names and fds above stdio;
// the new image takes a helper's files by name, once, and the others are closed.
func TestHelpers(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	rfd, err := fdpass.RawFd(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		st   State
		want string
	}{
		{State{Version: 1}, ""},
		{State{Version: 2, Helpers: []Helper{{Name: "a", Fds: []int{5}}}}, ""},
		{State{Version: 3}, "version 3, this god reads versions 1 to 2"},
		{State{Version: 0}, "version 0"},
		{State{Version: 1, Helpers: []Helper{{Name: "a", Fds: []int{5}}}}, "version 1 carries helpers"},
		{State{Version: 2, Helpers: []Helper{{Name: "a"}, {Name: "a"}}}, `repeated helper name "a"`},
		{State{Version: 2, Helpers: []Helper{{Name: "a", Fds: []int{1}}}}, "bad fd 1"},
	} {
		err := c.st.Check()
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("Check(%+v) = %v, want %q", c.st, err, c.want)
		}
	}

	// The new image takes the files by name, once; others are closed by Restore.
	dup, err := syscall.Dup(rfd)
	if err != nil {
		t.Fatal(err)
	}
	other, err := syscall.Dup(rfd)
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Version: 2, Helpers: []Helper{{Name: "god-metrics", Fds: []int{dup}}, {Name: "gone", Fds: []int{other}}}}
	if files := st.TakeHelperFiles("nope"); files != nil {
		t.Fatalf("files of an unknown helper: %v", files)
	}
	files := st.TakeHelperFiles("god-metrics")
	if len(files) != 1 {
		t.Fatalf("TakeHelperFiles: %v", files)
	}
	if fd, err := fdpass.RawFd(files[0]); err != nil || fd != dup {
		t.Fatalf("TakeHelperFiles: %v", files)
	}
	files[0].Close()
	if again := st.TakeHelperFiles("god-metrics"); again != nil {
		t.Fatalf("taken twice: %v", again)
	}
	st.CloseUntakenHelperFiles()
	if _, err := unix.FcntlInt(uintptr(other), unix.F_GETFD, 0); err == nil {
		t.Fatalf("fd %d of a helper nobody took is still open", other)
	}
}
