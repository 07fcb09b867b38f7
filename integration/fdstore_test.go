package integration

import (
	"strings"
	"testing"
	"time"
)

// TestFdStoreRemove: a job stores one fd named keep and one named gone (FDSTORE=1 with FDNAME=),
// then removes gone (FDSTOREREMOVE=1, FDNAME=gone). Its next process gets only keep, named in
// LISTEN_FDNAMES: FDNAME= reaches the successor, FDSTOREREMOVE= takes the fd away from it.
func TestFdStoreRemove(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	writeLoader(t, g.dir, "s", bashLoader{Jobs: map[string]bashJob{
		"storer": {Exec: []string{sockjobBin, "notify", `FDSTORE=1\nFDNAME=keep`, `FDSTORE=1\nFDNAME=gone`,
			`FDSTOREREMOVE=1\nFDNAME=gone`}, Auto: autoTrue},
	}})
	g.start()
	if line := g.jobLine(0, "storer", "fdnames=", 10*time.Second); line != "fdnames=" {
		t.Errorf("first process: %q, want no fds", line)
	}
	g.waitLog(10*time.Second, "FDSTOREREMOVE applied", func(r record) bool {
		return strings.Contains(r.Msg, "FDSTOREREMOVE") && r.str("name") == "gone" && r.int("count") == 1
	})
	from := g.mark()
	g.mustCLI("restart", "storer")
	if line := g.jobLine(from, "storer", "fdnames=", 10*time.Second); line != "fdnames=keep" {
		t.Errorf("next process: %q, want fdnames=keep (the stored fd named keep, not gone)", line)
	}
}
