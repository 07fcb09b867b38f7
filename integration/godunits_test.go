package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// godUnitsDir installs cmd/god-units in g's loader directory as "units" (a symlink, as an
// operator might install it) and writes files into the unit directory units.d beside it.
func godUnitsDir(t *testing.T, g *god, files map[string]string) string {
	t.Helper()
	if err := os.Symlink(unitsBin, filepath.Join(g.dir, "units")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(g.dir, "units.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGodUnits runs jobs defined by systemd unit files through the god-units loader:
//   - a oneshot (migrate) and the services that Require= and order After= it start in systemd's
//     order: each dependent starts only once the oneshot has finished (done);
//   - web, a Type=notify service (examples/backend) on the socket of web.socket, reloads three
//     times under a bounded HTTP load without failing a request;
//   - web's [X-God] Check= is run by the loader when god asks, and answers ok;
//   - a directive god cannot honour is a warning in god's log naming the file and line.
func TestGodUnits(t *testing.T) {
	t.Parallel()
	g := newGod(t)
	addr := freePort(t)
	mark := filepath.Join(t.TempDir(), "migrated")
	godUnitsDir(t, g, map[string]string{
		// Line numbers matter: the test looks for the warning about line 11.
		"web.service": `[Unit]
Description=backend under load
Requires=migrate.service
After=migrate.service web.socket

[Service]
Type=notify
ExecStart=` + backendBin + `
Restart=always
TimeoutStopSec=10
Frobnicate=yes

[Install]
WantedBy=multi-user.target

[X-God]
Check=/bin/sh -c 'test -d /proc/$$MAINPID'
CheckInterval=500ms
`,
		"web.socket": `[Socket]
ListenStream=` + addr + `
FileDescriptorName=http
`,
		// The oneshot takes a moment, so that a dependent started too early would see no mark.
		"migrate.service": `[Unit]
Description=one-shot migration
[Service]
Type=oneshot
Environment="MARK=` + mark + `"
ExecStart=/bin/sh -c 'sleep 0.3; touch "$$MARK"'
[Install]
WantedBy=multi-user.target
`,
		// Fails (exit 3, not restarted) if it starts before migrate finished.
		"worker.service": `[Unit]
Wants=migrate.service
After=migrate.service
[Service]
Environment=MARK=` + mark + `
ExecStart=/bin/sh -c 'test -f "$$MARK" || exit 3; exec sleep 600'
KillSignal=SIGTERM
TimeoutStopSec=2
[Install]
WantedBy=multi-user.target
`,
	})
	g.start()

	// The warning names the file and line, once per loader start.
	g.waitLog(20*time.Second, "the Frobnicate= warning", func(r record) bool {
		return r.str("stream") == "loader-stderr" && r.Msg == "web.service:11: Frobnicate= is not supported by god-units (ignored)"
	})

	// systemd's order: migrate is done before web and worker start.
	g.waitState("migrate", "done", 30*time.Second)
	web := g.waitState("web", "run", 30*time.Second)
	g.waitState("worker", "run", 30*time.Second)
	migrate, _ := g.job("migrate")
	started := map[string]time.Time{}
	for _, r := range g.logs(0, func(r record) bool { return r.Msg == "started" }) {
		if _, ok := started[r.str("job")]; !ok {
			started[r.str("job")] = r.Time
		}
	}
	for _, j := range []string{"web", "worker"} {
		if started[j].IsZero() || started[j].Before(migrate.Since) {
			t.Errorf("%s started at %v, before migrate was done at %v", j, started[j], migrate.Since)
		}
	}
	if len(web.Sockets) == 0 || !strings.Contains(strings.Join(web.Sockets, " "), "http=tcp://"+addr) {
		t.Errorf("web's sockets %q, want http=tcp://%s", web.Sockets, addr)
	}

	// god-units answers god's check by running Check= with $MAINPID.
	g.waitJob("web", 20*time.Second, "checked ok", func(j controlJob) bool { return strings.HasPrefix(j.Check, "ok") })

	// Three reloads under load: no request fails, none is answered by a generation that was
	// already replaced. The load stops by itself (MaxTime) should the test hang.
	l := startLoad(t, loadOpts{URL: "http://" + addr + "/", Workers: 3, MaxTime: 90 * time.Second})
	l.waitServed(t, 20, 30*time.Second)
	var marks []reloadMark
	for range 3 {
		m, _ := g.reloadOK("web")
		// reloadOK reads the first "generation N serves" of the output, which with progress lines
		// ("generation 1 serves until it is ready") is the old one: take the serving one from status.
		if j, _ := g.job("web"); j.Generation > m.gen {
			m.gen = j.Generation
		}
		marks = append(marks, m)
		l.waitServed(t, 20, 30*time.Second)
	}
	l.finish()
	rep := l.check(marks)
	t.Logf("load: %s", rep)
	rep.expectClean(t)
	if last := marks[len(marks)-1].gen; last < 4 {
		t.Errorf("after 3 reloads generation %d serves, want at least 4", last)
	}

	// The loader warned about nothing else: the dependencies on migrate.service and on
	// web.socket are its own units, and the other directives all map.
	for _, r := range g.logs(0, func(r record) bool { return r.str("stream") == "loader-stderr" }) {
		if !strings.HasPrefix(r.Msg, "web.service:11: Frobnicate=") {
			t.Errorf("unexpected loader warning: %s", r.Msg)
		}
	}
}
