package joblog

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/emielm/watchgod/internal/testutil"
)

// logTo makes a logger on a fresh temp file, logs through it, and returns
// the file's text.
func logTo(t *testing.T, mode string, log func(*slog.Logger)) string {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := NewLogger(f, mode, slog.LevelInfo)
	if err != nil {
		t.Fatalf("NewLogger(%q): %v", mode, err)
	}
	log(l)
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sample logs what every mode test looks at.
func sample(l *slog.Logger) {
	l.Debug("hidden")
	l.Info("started", "jobs", 3)
	l.With("job", "web").WithGroup("g").Error("crashed", "status", 1)
}

func TestNewLoggerJSON(t *testing.T) {
	for _, mode := range []string{ModeJSON, ModeAuto, ""} { // a regular file is neither terminal nor journal
		t.Run("mode="+mode, func(t *testing.T) {
			t.Setenv("JOURNAL_STREAM", "")
			out := logTo(t, mode, sample)
			sc := bufio.NewScanner(strings.NewReader(out))
			var recs []map[string]any
			for sc.Scan() {
				var m map[string]any
				if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
					t.Fatalf("line %q does not decode: %v", sc.Text(), err)
				}
				recs = append(recs, m)
			}
			if len(recs) != 2 {
				t.Fatalf("got %d records, want 2 (debug filtered): %s", len(recs), out)
			}
			if recs[0]["msg"] != "started" || recs[0]["jobs"] != 3.0 || recs[0]["level"] != "INFO" {
				t.Errorf("record 0 = %v", recs[0])
			}
			if recs[1]["job"] != "web" || fmt.Sprint(recs[1]["g"]) != "map[status:1]" || recs[1]["level"] != "ERROR" {
				t.Errorf("record 1 = %v", recs[1])
			}
		})
	}
}

func TestNewLoggerText(t *testing.T) {
	plain := logTo(t, ModeText, sample)
	if strings.Contains(plain, "\x1b[") || !strings.Contains(plain, "started jobs=3") || strings.Contains(plain, "hidden") {
		t.Errorf("text output = %q", plain)
	}
	color := logTo(t, ModeColor, sample)
	if !strings.Contains(color, "\x1b[") || !strings.Contains(color, "started") {
		t.Errorf("color output = %q", color)
	}
}

func TestNewLoggerJournal(t *testing.T) {
	out := logTo(t, ModeJournal, sample)
	want := "<6>level=INFO msg=started jobs=3\n<3>level=ERROR msg=crashed job=web g.status=1\n"
	if out != want {
		t.Errorf("journal output = %q\nwant %q", out, want)
	}
}

func TestNewLoggerAutoJournal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Stat(f.Name(), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if got := autoMode(f); got != ModeJournal {
		t.Errorf("autoMode with matching JOURNAL_STREAM = %q, want journal", got)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	if got := autoMode(f); got != ModeJSON {
		t.Errorf("autoMode with another stream's JOURNAL_STREAM = %q, want json", got)
	}
	t.Setenv("JOURNAL_STREAM", "garbage")
	if got := autoMode(f); got != ModeJSON {
		t.Errorf("autoMode with bad JOURNAL_STREAM = %q, want json", got)
	}
}

// openPty opens a pseudo-terminal pair so that terminal detection is tested
// on a real terminal.
func openPty(t *testing.T) (pts *os.File) {
	_, pts = testutil.OpenPTY(t, 0)
	return pts
}

func TestNewLoggerAutoTerminal(t *testing.T) {
	pts := openPty(t)
	t.Setenv("JOURNAL_STREAM", "")
	t.Setenv("NO_COLOR", "")
	if got := autoMode(pts); got != ModeColor {
		t.Errorf("autoMode(pty) = %q, want color", got)
	}
	t.Setenv("NO_COLOR", "1")
	if got := autoMode(pts); got != ModeText {
		t.Errorf("autoMode(pty) with NO_COLOR = %q, want text", got)
	}
}

func TestNewLoggerErrors(t *testing.T) {
	if _, err := NewLogger(os.Stderr, "fancy", slog.LevelInfo); err == nil || !strings.Contains(err.Error(), `"fancy"`) {
		t.Errorf("unknown mode: err = %v", err)
	}
	if _, err := NewLogger(nil, ModeJSON, slog.LevelInfo); err == nil {
		t.Error("nil file: no error")
	}
}
