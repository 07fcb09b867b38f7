package integration

import (
	"os"
	"strings"
	"testing"
	"time"
)

// abusiveLoaders are loader files that abuse god by volume or slowness, rather than by a single
// bad answer (brokenloader_test.go covers those). Each script notes its pid for the orphan check.
// want is what god must log, naming the file.
var abusiveLoaders = []struct {
	name, script string
	want         string // a substring of a record that names the file
	repeat       bool   // god retries the loader (with back-off), so it must be reported at least twice
}{
	// A handshake that drips in one byte every 300 ms: not complete within the handshake timeout.
	{name: "drip-handshake", want: "does not speak godv1", script: `msg='["godv1","dripjob"]'
for ((i=0; i<${#msg}; i++)); do printf '%s' "${msg:i:1}"; sleep 0.3; done
echo
exec sleep 1000`},
	// A handshake that starts and never ends.
	{name: "endless-handshake", want: "does not speak godv1", script: `printf '["godv1","never'
exec sleep 1000`},
	// A first line of 8 MB: god stops reading at its 1 MiB bound.
	{name: "huge-handshake", want: "does not speak godv1", script: `head -c 8000000 /dev/zero | tr '\0' a
exec sleep 1000`},
	// Every answer dripped one byte every 100 ms: past the loader timeout (1 s) every time.
	{name: "drip-reply", repeat: true, script: `echo '["godv1","dripper"]'
reply='["/bin/sh","-c","exec sleep 1000"]'
while IFS= read -r req; do
	for ((i=0; i<${#reply}; i++)); do printf '%s' "${reply:i:1}"; sleep 0.1; done
	echo
done`},
	// Every answer preceded by 50000 lines of garbage.
	{name: "garbage-flood", repeat: true, script: `echo '["godv1","flooder"]'
while IFS= read -r req; do
	yes 'this is not json at all' | head -n 50000
	echo '[]'
done`},
}

// TestLoaderAbuse runs loaders that abuse god by volume and slowness beside two healthy ones:
// handshakes that drip, never end or never stop; answers that drip past the loader timeout or
// come after a flood of garbage; a loader that floods its stderr (god's log). god reports each by
// name and retries the ones that spoke godv1, while status is answered within a generous bound,
// the healthy jobs keep their pids and their checks, and once the bad files are gone god holds no
// more fds or goroutines than before.
func TestLoaderAbuse(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	checks := healthy(t, g)
	writeLoader(t, g.dir, "pair", bashLoader{Jobs: map[string]bashJob{"other": {Exec: sleeper, Auto: autoTrue}}})
	g.start("--loader-timeout", "1s")
	pids, before := pairRunning(t, g)
	w := watchStatus(g, 3*time.Second, 60*time.Second)

	from := g.mark()
	paths := map[string]string{}
	for _, l := range abusiveLoaders {
		script := "#!/usr/bin/env bash\n[ \"$1\" = godv1 ] || exit 2\necho $$ >> \"$GOD_TEST_PIDS\"\n" + l.script + "\n"
		paths[l.name] = writeExecutable(t, g.dir, l.name, []byte(script))
	}
	// A loader that writes 20000 lines to its stderr, then behaves: its job starts all the same.
	noisy := writeLoader(t, g.dir, "noisy", bashLoader{
		Handshake: "yes 'loader noise on stderr' | head -n 20000 >&2\necho " + sq(jsonArray("godv1", "noisy")),
		Jobs:      map[string]bashJob{"noisy": {Exec: sleeper, Auto: autoTrue}},
	})
	g.waitState("noisy", "run", 20*time.Second)

	for _, l := range abusiveLoaders {
		path := paths[l.name]
		names := func(r record) bool {
			return strings.Contains(r.Raw, path) && (r.Level == "ERROR" || r.Level == "WARN") &&
				(l.want == "" || strings.Contains(r.Raw, l.want))
		}
		first := g.waitLogFrom(from, 15*time.Second, "a report naming "+path, names)
		t.Logf("%s: %.300s", l.name, first.Msg+" "+first.str("err"))
		if l.repeat {
			eventually(t, 15*time.Second, l.name+" retried and reported again", func() bool {
				return len(g.logs(from, names)) >= 2
			})
		}
	}
	// Let the retried ones go on failing for a moment while god does its work.
	checked := lines(checks)
	eventually(t, 10*time.Second, "steady checked 10 more times", func() bool { return lines(checks) >= checked+10 })
	w.judge(t)
	sameJobs(g, pids)
	noiseLines := len(g.logs(from, func(r record) bool { return strings.Contains(r.Raw, "loader noise on stderr") }))
	leftOut := g.logs(from, func(r record) bool { return strings.HasPrefix(r.Msg, "loader stderr: ") })
	t.Logf("noisy loader: %d stderr lines in god's log (20000 written per instance started), %d notes of lines left out", noiseLines, len(leftOut))
	// Rate-limited: a burst per instance, then a few lines a second, and a count of the rest.
	if noiseLines > 2000 || len(leftOut) == 0 {
		t.Errorf("a loader flooding its stderr put %d lines into god's log (%d notes of lines left out): want it rate-limited", noiseLines, len(leftOut))
	}

	// Remove the bad files: god retires their loaders and forgets the noisy job; nothing stays.
	for _, p := range append([]string{noisy}, abuseMapValues(paths)...) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	g.waitGone("noisy", 10*time.Second)
	after, bad := g.settle(before, leakBounds{fds: 2, goroutines: 6,
		perLoader: struct{ fds, goroutines int }{fds: 3, goroutines: 4}}, 15*time.Second)
	t.Logf("after:  %s", after)
	if len(bad) > 0 {
		t.Errorf("god leaked: %s", strings.Join(bad, "; "))
	}
	if n := len(g.logs(0, func(r record) bool {
		return (r.str("job") == "steady" || r.str("job") == "other") && r.Msg == "exited"
	})); n > 0 {
		g.fatalf("a healthy job exited %d times", n)
	}
}

// abuseMapValues returns m's values, in no particular order.
func abuseMapValues(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
