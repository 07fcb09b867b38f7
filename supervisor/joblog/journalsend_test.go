package joblog

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
)

// TestJournalEntry: the fields a job line gets in the journal, and its priority by level and
// stream (a stderr line without a level of its own is a warning).
func TestJournalEntry(t *testing.T) {
	for _, c := range []struct {
		name   string
		format Format
		stream string
		raw    string
		pri    journal.Priority
		msg    string
	}{
		{"stdout text", FormatText, StreamStdout, "hello", journal.PriInfo, "hello"},
		{"stderr text", FormatText, StreamStderr, "oops", journal.PriWarning, "oops"},
		{"stderr json info", FormatJSON, StreamStderr, `{"level":"info","msg":"fine"}`, journal.PriInfo, "fine"},
		{"stderr json no level", FormatJSON, StreamStderr, `{"msg":"what","k":"a b"}`, journal.PriWarning, `what k="a b"`},
		{"stdout json error", FormatJSON, StreamStdout, `{"level":"error","msg":"bad","n":1}`, journal.PriErr, "bad n=1"},
		{"stdout logfmt debug", FormatLogfmt, StreamStdout, `level=debug msg=dbg`, journal.PriDebug, "dbg"},
		{"stdout json fatal", FormatJSON, StreamStdout, `{"level":"fatal","msg":"x"}`, journal.PriCrit, "x"},
	} {
		var got Line
		sp := NewSplitter(Line{Job: "backend", Pid: 4242, Generation: 3, Stream: c.stream}, c.format, func(l Line) { got = l })
		sp.Feed([]byte(c.raw+"\n"), time.Now())
		msg, pri, vars := JournalEntry(&got)
		if msg != c.msg || pri != c.pri {
			t.Errorf("%s: message %q priority %d, want %q %d", c.name, msg, pri, c.msg, c.pri)
		}
		want := map[string]string{"SYSLOG_IDENTIFIER": "backend", "SYSLOG_PID": "4242", "GOD_JOB": "backend",
			"GOD_PID": "4242", "GOD_GENERATION": "3", "GOD_STREAM": c.stream}
		if fmt.Sprint(vars) != fmt.Sprint(want) {
			t.Errorf("%s: fields %v, want %v", c.name, vars, want)
		}
	}
}

// TestHubJournal: with a journal, job lines go there and not to god's logger (which still gets
// them when the journal refuses one); god's --log-level applies to the journal's level (a stderr
// line at warning passes a warn level that drops stdout lines). journald does not run on the
// development machines, so the journal here is a function that records what it is sent.
func TestHubJournal(t *testing.T) {
	var sent []string
	fail := false
	j := &Journal{send: func(msg string, pri journal.Priority, vars map[string]string) error {
		if fail {
			return fmt.Errorf("journal gone")
		}
		sent = append(sent, fmt.Sprintf("%d %s %s", pri, vars["SYSLOG_IDENTIFIER"], msg))
		return nil
	}}
	var out strings.Builder
	logger := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := NewHub(logger, 10)
	h.SetJournal(j)
	h.Add(Line{Job: "web", Stream: StreamStdout, Level: slog.LevelInfo, Msg: "quiet"})
	h.Add(Line{Job: "web", Stream: StreamStderr, Level: slog.LevelInfo, Msg: "loud"})
	fail = true
	h.Add(Line{Job: "web", Stream: StreamStdout, Level: slog.LevelError, OwnLevel: true, Msg: "refused"})
	if fmt.Sprint(sent) != "[4 web loud]" {
		t.Errorf("journal got %q, want the stderr line only (stdout at info is under warn)", sent)
	}
	if s := out.String(); strings.Contains(s, "loud") || !strings.Contains(s, "refused") {
		t.Errorf("god's logger got:\n%s\nwant only the line the journal refused", s)
	}
}

// TestJournalEndToEnd sends a line through the real journal and finds it with journalctl -t.
func TestJournalEndToEnd(t *testing.T) {
	if _, err := os.Stat("/run/systemd/journal/socket"); err != nil {
		t.Skip("no journald here (/run/systemd/journal/socket absent): the field mapping is tested by TestJournalEntry")
	}
	if _, err := exec.LookPath("journalctl"); err != nil {
		t.Skip("no journalctl")
	}
	j := NewJournal()
	if j == nil {
		t.Fatal("the journal socket exists but journal.Enabled is false")
	}
	job := fmt.Sprintf("god-test-%d", os.Getpid())
	if err := j.Send(&Line{Job: job, Pid: 42, Generation: 7, Stream: StreamStderr, Msg: "end to end"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := exec.Command("journalctl", "-t", job, "-o", "export", "--no-pager").Output()
		s := string(out)
		if strings.Contains(s, "MESSAGE=end to end") {
			for _, f := range []string{"PRIORITY=4", "GOD_GENERATION=7", "GOD_PID=42", "SYSLOG_IDENTIFIER=" + job} {
				if !strings.Contains(s, f) {
					t.Errorf("journal entry lacks %s:\n%s", f, s)
				}
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("journalctl -t %s did not show the line within 30s:\n%s", job, s)
		}
		time.Sleep(100 * time.Millisecond) // polling journalctl: the condition is the entry
	}
}
