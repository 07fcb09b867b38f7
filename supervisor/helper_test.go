package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/internal/reaper"
	"github.com/emielm/watchgod/internal/testutil"
)

// helperSup is a supervisor with a reaper and no loop, enough to run helpers.
func helperSup(t testing.TB, helpers ...Helper) *Supervisor {
	t.Helper()
	s, err := New(Config{Dir: t.TempDir(), Helpers: helpers,
		Backoff: Backoff{First: 10 * time.Millisecond, Max: 50 * time.Millisecond, MinUptime: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	r := reaper.New(nil)
	s.reaper = r
	t.Cleanup(func() {
		s.closeHelpers()
		r.Close()
		s.devNull.Close()
	})
	return s
}

// notedFields waits until file holds at least n whitespace-separated fields and returns them.
func notedFields(t testing.TB, file string, n int) []string {
	t.Helper()
	var fields []string
	testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%d fields in %s", n, file), func() bool {
		b, _ := os.ReadFile(file)
		fields = strings.Fields(string(b))
		return len(fields) >= n
	})
	return fields
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// TestHelperRestartAndStop: a helper gets its file as fd 3, is started again after SIGKILL,
// and is gone once stopped; its file stays open across restarts and stops, and closes at the end.
func TestHelperRestartAndStop(t *testing.T) {
	spec, err := fdpass.ParseAddr("metrics", "tcp://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock, err := fdpass.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(mustRawFd(t, sock), &st); err != nil {
		t.Fatal(err)
	}
	noted := filepath.Join(t.TempDir(), "noted")
	s := helperSup(t, Helper{
		Name:  "test",
		Path:  "/bin/sh",
		Args:  []string{"-c", `echo "$$ $(readlink /proc/self/fd/3 | tr -d 'socket:[]')" >> "$NOTE"; exec sleep 1000`},
		Env:   []string{"NOTE=" + noted},
		Files: []*os.File{sock},
	})
	s.startHelpers()
	first := notedFields(t, noted, 2) // each start notes "PID INODE-OF-FD-3"
	pid, _ := strconv.Atoi(first[0])
	if first[1] != strconv.FormatUint(st.Ino, 10) {
		t.Fatalf("helper's fd 3 is socket inode %s, want god's %d", first[1], st.Ino)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	again := notedFields(t, noted, 4)
	next, _ := strconv.Atoi(again[2])
	if next == pid || !running(next) {
		t.Fatalf("after SIGKILL of %d: helper pid %d (running %v)", pid, next, running(next))
	}
	s.stopHelpers()
	if running(next) {
		t.Fatalf("helper pid %d runs after stopHelpers", next)
	}
	if _, err := fdpass.RawFd(sock); err != nil {
		t.Fatalf("the helper's file was closed by a stop: %v", err)
	}
	// A failed upgrade starts them again; the end of Run stops them for good.
	s.startHelpers()
	last, _ := strconv.Atoi(notedFields(t, noted, 6)[4])
	s.closeHelpers()
	if running(last) {
		t.Fatalf("helper pid %d runs after closeHelpers", last)
	}
	if _, err := fdpass.RawFd(sock); err == nil {
		t.Fatal("the helper's file is still open after closeHelpers")
	}
	s.startHelpers()
	s.helpers.mu.Lock()
	n := len(s.helpers.running)
	s.helpers.mu.Unlock()
	if n != 0 {
		t.Fatal("a helper started after closeHelpers")
	}
}

// TestHelperKilledAfterGrace: a helper that ignores SIGTERM gets SIGKILL after its grace.
func TestHelperKilledAfterGrace(t *testing.T) {
	noted := filepath.Join(t.TempDir(), "noted")
	s := helperSup(t, Helper{
		Name:  "stubborn",
		Path:  "/bin/sh",
		Args:  []string{"-c", `trap '' TERM; echo $$ >> "$NOTE"; exec sleep 1000`},
		Env:   []string{"NOTE=" + noted},
		Grace: 100 * time.Millisecond,
	})
	s.startHelpers()
	pid, _ := strconv.Atoi(notedFields(t, noted, 1)[0])
	began := time.Now()
	s.stopHelpers()
	if running(pid) {
		t.Fatalf("helper pid %d survived its stop", pid)
	}
	if d := time.Since(began); d < 100*time.Millisecond {
		t.Errorf("stopped after %s: SIGKILL came before the grace", d)
	}
}

// TestHelperCannotStart: a helper whose binary is missing is not fatal (its start is retried
// with back-off), and a stop ends the retries.
func TestHelperCannotStart(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	s := helperSup(t, Helper{Name: "missing", Path: missing})
	log, records := testutil.NewLogger()
	s.log = log
	s.startHelpers()
	retried := func(r slog.Record) bool {
		return r.Message == "helper ended; restarting" && strings.Contains(testutil.Attr(r, "err"), missing)
	}
	records.Wait(t, 10*time.Second, 2, "two failed starts naming the binary, retried", retried)
	// stopHelpers returns once the retry loop has ended: no start can come after it.
	s.stopHelpers()
	if n := len(s.helpers.running); n != 0 {
		t.Fatalf("%d helpers still running after stopHelpers", n)
	}
}

func mustRawFd(t testing.TB, f *os.File) int {
	t.Helper()
	fd, err := fdpass.RawFd(f)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestUpgradeStateHelpers: the state carries the helpers' fds as version 2, and only then, so a
// god from before helpers still takes a state without them (upgradestate tests Check and
// TakeHelperFiles).
func TestUpgradeStateHelpers(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := helperSup(t, Helper{Name: "god-metrics", Path: "/bin/true", Files: []*os.File{r}})
	st := s.baseState(UpgradeOptions{})
	if st.Version != 2 || len(st.Helpers) != 1 || st.Helpers[0].Name != "god-metrics" || st.Helpers[0].Fds[0] != mustRawFd(t, r) {
		t.Fatalf("state with a helper: version %d, helpers %+v", st.Version, st.Helpers)
	}
	if err := st.Check(); err != nil {
		t.Fatal(err)
	}
	plain := helperSup(t).baseState(UpgradeOptions{})
	if plain.Version != 1 || plain.Helpers != nil {
		t.Fatalf("state without helpers: version %d, helpers %+v; want version 1 for older gods", plain.Version, plain.Helpers)
	}

}
