package dirwatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// TestWatchFollowsThePath: a file written is named; the directory removed and created again is
// watched again, said on Events, and what the new one holds is reported: by its name, or by a
// full rescan ("") when it was written before the new directory was watched.
func TestWatchFollowsThePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "loaders")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w, err := New(dir, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.WriteFile(filepath.Join(dir, "a"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if n := testutil.Receive(t, w.Names(), 10*time.Second, "a name"); n != "a" {
		t.Fatalf("event %q, want a", n)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	select {
	case <-w.Events():
	case <-time.After(10 * time.Second):
		t.Fatal("nothing said about the directory")
	}
	if err := os.WriteFile(filepath.Join(dir, "b"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	for {
		if n := testutil.Receive(t, w.Names(), 10*time.Second, "a name"); n == "b" || n == "" {
			return
		}
	}
}
