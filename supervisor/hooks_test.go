package supervisor

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// loggingTo makes the supervisor log into recs.
func loggingTo(log *slog.Logger) func(*Config) {
	return func(c *Config) { c.Logger = log }
}

// isLoaderFailure matches god's record of a loader instance killed (late, broken or exited).
func isLoaderFailure(r slog.Record) bool {
	return strings.HasPrefix(r.Message, "loader failed") || r.Message == "loader exited"
}

// TestLoaderHookBurst: 500 jobs of one loader enter wait at once, so god has 500 onWait hooks
// for a loader that answers each in 10 ms, with a loader timeout of 1 s. The loader gets every
// one and is never killed. (Each hook timed from when it was asked, as before, the last ones
// waited over a second behind the others and killed the loader, again and again.)
func TestLoaderHookBurst(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(t.TempDir(), "hooks")
	const n = 500
	testutil.WriteScript(t, dir, "many", testutil.BashPause+`
jobs='"godv1"'
for i in $(seq 0 `+strconv.Itoa(n-1)+`); do jobs+=",\"j$i\""; done
echo "[$jobs]"
while IFS= read -r req; do
	case "$req" in
	*'"onWait"'*) pause 0.01; echo "$req" >>"$REC"; echo '[]' ;;
	*'"exec"]') echo '["sleep","1000"]' ;;
	*) echo '[]' ;;
	esac
done
`)
	t.Setenv("REC", rec) // the loader's environment is god's
	log, recs := testutil.NewLogger()
	startInProcess(t, dir, loggingTo(log), func(c *Config) { c.LoaderTimeout = time.Second })
	testutil.Eventually(t, 2*time.Minute, "every onWait reaches the loader", func() bool {
		b, _ := os.ReadFile(rec)
		return strings.Count(string(b), "\n") >= n
	})
	b, _ := os.ReadFile(rec)
	if got := strings.Count(string(b), "\n"); got != n {
		t.Errorf("loader got %d onWait hooks, want %d", got, n)
	}
	if k := recs.Count(isLoaderFailure); k > 0 {
		t.Errorf("a healthy loader was killed %d times", k)
	}
	if k := recs.Count(func(r slog.Record) bool { return strings.Contains(r.Message, "dropped") }); k > 0 {
		t.Errorf("hooks dropped though the queue had room")
	}
}
