package supervisor

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestMain runs the package's tests as the integration tests run god, with GOD_STRICT_STATES:
// a job's move outside the state table and an event the loop does not know panic.
func TestMain(m *testing.M) {
	strictStates = true
	os.Exit(m.Run())
}

// strayEvent is a loopEvent handleEvent has no case for: what a new event type added without
// its case would be.
type strayEvent struct{}

func (strayEvent) loopEvent() {}

// TestUnknownLoopEvent: an event the loop does not know is never dropped silently. Under
// GOD_STRICT_STATES (the tests) it panics naming the type; otherwise it is logged as an error
// and the loop goes on. A nil event is the same bug.
func TestUnknownLoopEvent(t *testing.T) {
	log, records := testutil.NewLogger()
	s, err := New(Config{Dir: t.TempDir(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.devNull.Close() })
	saved := strictStates
	t.Cleanup(func() { strictStates = saved })

	for _, ev := range []loopEvent{strayEvent{}, nil} {
		want := fmt.Sprintf("%T", ev)

		strictStates = true
		func() {
			defer func() {
				r := recover()
				if r == nil {
					t.Errorf("%s: strict: no panic", want)
					return
				}
				if msg := fmt.Sprint(r); !strings.Contains(msg, want) {
					t.Errorf("%s: strict: panic %q does not name the type", want, msg)
				}
			}()
			s.handleEvent(ev)
		}()

		strictStates = false
		before := records.Count(func(slog.Record) bool { return true })
		s.handleEvent(ev) // must not panic
		logged := records.Count(func(rec slog.Record) bool {
			return rec.Level == slog.LevelError && testutil.Attr(rec, "type") == want
		})
		if logged != 1 {
			t.Errorf("%s: not strict: %d error records naming the type, want 1 (%d records before)", want, logged, before)
		}
	}
}
