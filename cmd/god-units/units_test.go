package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loadFiles writes files (name -> content) into a fresh unit directory and loads it.
func loadFiles(t testing.TB, files map[string]string) (*units, string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return load(dir), dir
}

// TestSplitWords checks systemd's word splitting: quotes, escapes, and what systemd refuses.
func TestSplitWords(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "/bin/echo a b", want: []string{"/bin/echo", "a", "b"}},
		{in: `  a   "b c"  'd e' `, want: []string{"a", "b c", "d e"}},
		{in: `a"b c"d`, want: []string{"ab cd"}},
		{in: `"it's" 'say "hi"'`, want: []string{"it's", `say "hi"`}},
		{in: `a\ b c\tz \x41\101 \\ \"`, want: []string{"a b", "c\tz", "AA", `\`, `"`}},
		{in: `""`, want: []string{""}},
		{in: `"a\"b"`, want: []string{`a"b`}},
		{in: ``, want: nil},
		{in: `"open`, err: true},
		{in: `'open`, err: true},
		{in: `trailing\`, err: true},
		{in: `bad\q`, err: true},
	} {
		got, err := splitWords(c.in)
		if c.err {
			if err == nil {
				t.Errorf("splitWords(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestParseTimespan checks systemd time spans, the form of every *Sec= directive.
func TestParseTimespan(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "90", want: 90 * time.Second},
		{in: "500ms", want: 500 * time.Millisecond},
		{in: "1min 30s", want: 90 * time.Second},
		{in: "1min30s", want: 90 * time.Second},
		{in: "2.5s", want: 2500 * time.Millisecond},
		{in: "2h", want: 2 * time.Hour},
		{in: "100 msec", want: 100 * time.Millisecond},
		{in: "infinity", err: true},
		{in: "5 parsecs", err: true},
		{in: "", err: true},
		{in: "s", err: true},
	} {
		got, err := parseTimespan(c.in)
		if c.err != (err != nil) || !c.err && got != c.want {
			t.Errorf("parseTimespan(%q) = %v, %v; want %v (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

// TestMapping checks the answer to each property for one directive (or a few) of a unit.
func TestMapping(t *testing.T) {
	for _, c := range []struct {
		name    string
		service string // the [Service] section (ExecStart=/bin/x is added when it has none)
		extra   string // more sections
		prop    string
		want    []string
	}{
		{"exec", "ExecStart=/usr/bin/srv --port 80 'a b'", "", "exec", []string{"/usr/bin/srv", "--port", "80", "a b"}},
		{"exec dash prefix", "ExecStart=-/usr/bin/srv", "", "exec", []string{"/usr/bin/srv"}},
		{"exec at prefix", "ExecStart=@/usr/bin/srv srv-name -v", "", "exec", []string{"/usr/bin/srv", "-v"}},
		{"exec reset", "ExecStart=/bin/a\nExecStart=\nExecStart=/bin/b", "", "exec", []string{"/bin/b"}},
		{"exec variables", "ExecStart=/bin/x --port=${PORT} $FLAGS $$HOME '$$1'\nEnvironment=PORT=80 \"FLAGS=-a -b\"", "", "exec", []string{"/bin/x", "--port=80", "-a", "-b", "$HOME", "$1"}},
		{"exec percent", "ExecStart=/bin/x 100%%", "", "exec", []string{"/bin/x", "100%"}},
		{"environment", `Environment=A=1 "B=two words" C='x y'` + "\nEnvironment=D=4", "", "env", []string{"A=1", "B=two words", "C=x y", "D=4"}},
		{"environment reset", "Environment=A=1\nEnvironment=\nEnvironment=B=2", "", "env", []string{"B=2"}},
		{"environment file", "EnvironmentFile=/etc/a\nEnvironmentFile=-/etc/b", "", "env-file", []string{"/etc/a", "-/etc/b"}},
		{"dir", "WorkingDirectory=/srv", "", "dir", []string{"/srv"}},
		{"dir optional", "WorkingDirectory=-/srv", "", "dir", []string{"/srv"}},
		{"user", "User=www", "", "user", []string{"www"}},
		{"group", "Group=www", "", "group", []string{"www"}},
		{"groups", "SupplementaryGroups=a b\nSupplementaryGroups=c", "", "groups", []string{"a", "b", "c"}},
		{"umask", "UMask=0027", "", "umask", []string{"0027"}},
		{"limits", "LimitNOFILE=65536\nLimitCORE=infinity\nLimitNPROC=100:200", "", "limit", []string{"nofile=65536", "core=infinity", "nproc=100:200"}},
		{"type simple", "Type=simple", "", "ready", nil},
		{"type exec", "Type=exec", "", "ready", nil},
		{"type notify", "Type=notify", "", "ready", []string{"notify"}},
		{"type oneshot ready", "Type=oneshot", "", "ready", []string{"exit"}},
		{"type oneshot restart", "Type=oneshot", "", "restart", []string{"never"}},
		{"restart default", "", "", "restart", []string{"never"}},
		{"restart no", "Restart=no", "", "restart", []string{"never"}},
		{"restart always", "Restart=always", "", "restart", []string{"always"}},
		{"restart on-failure", "Restart=on-failure", "", "restart", []string{"on-failure"}},
		{"restart on-abnormal", "Restart=on-abnormal", "", "restart", []string{"on-failure"}},
		{"restart delay", "RestartSec=1.5", "", "restart-delay", []string{"1500"}},
		{"restart delay ms", "RestartSec=250ms", "", "restart-delay", []string{"250"}},
		{"success exit", "SuccessExitStatus=75 SIGHUP term", "", "success-exit-status", []string{"75", "SIGHUP", "SIGTERM"}},
		{"prevent exit", "RestartPreventExitStatus=255 SIGKILL", "", "restart-prevent-exit-status", []string{"255", "SIGKILL"}},
		{"stop timeout", "TimeoutStopSec=3", "", "stop", []string{"SIGTERM", "3000"}},
		{"stop signal", "KillSignal=SIGINT", "", "stop", []string{"SIGINT"}},
		{"stop both", "KillSignal=QUIT\nTimeoutStopSec=1min", "", "stop", []string{"SIGQUIT", "60000"}},
		{"stop no timeout", "TimeoutStopSec=0", "", "stop", []string{"SIGTERM", "86400000"}},
		{"stop infinity", "TimeoutStopSec=infinity", "", "stop", []string{"SIGTERM", "86400000"}},
		{"limit nice", "LimitNICE=-5", "", "limit", []string{"nice=-5"}},
		{"cgroup limits", "MemoryMax=512M\nMemoryHigh=infinity\nTasksMax=100\nCPUQuota=50%\nCPUWeight=200\nMemorySwapMax=0\nMemoryMax=1G", "", "cgroup",
			[]string{"memory.high=max", "pids.max=100", "cpu.max=50%", "cpu.weight=200", "memory.swap.max=0", "memory.max=1G"}},
		{"oneshot restart always", "Type=oneshot\nRestart=always", "", "restart", []string{"never"}},
		{"oneshot restart on-failure", "Type=oneshot\nRestart=on-failure", "", "restart", []string{"on-failure"}},
		{"stop none", "", "", "stop", nil},
		{"watchdog", "WatchdogSec=10s", "", "watchdog", []string{"10000"}},
		{"reload kill", "ExecReload=/bin/kill -HUP $MAINPID", "", "reload", []string{"signal", "SIGHUP"}},
		{"reload kill -s", "ExecReload=kill -s USR1 ${MAINPID}", "", "reload", []string{"signal", "SIGUSR1"}},
		{"reload kill --signal=", "ExecReload=/usr/bin/kill --signal=SIGUSR2 $MAINPID", "", "reload", []string{"signal", "SIGUSR2"}},
		{"reload other", "ExecReload=/usr/bin/srv reload", "", "reload", nil},
		{"x-god reload", "ExecReload=/bin/kill -HUP $MAINPID", "[X-God]\nReload=overlap", "reload", []string{"overlap"}},
		{"x-god reload signal", "", "[X-God]\nReload=signal USR2", "reload", []string{"signal", "USR2"}},
		{"x-god instances", "", "[X-God]\nInstances=3", "instances", []string{"3"}},
		{"x-god ready", "Type=notify", "[X-God]\nReady=delay 2s", "ready", []string{"delay", "2000"}},
		{"x-god log", "", "[X-God]\nLog=json", "log", []string{"json"}},
		{"manual", "", "", "auto", []string{"false"}},
		{"installed", "", "[Install]\nWantedBy=multi-user.target", "auto", []string{"true"}},
		{"continuation", "ExecStart=/bin/x a \\\n  b", "", "exec", []string{"/bin/x", "a", "b"}},
		{"unknown job prop", "", "", "nonsense", nil},
		{"stderr default", "", "", "stderr", nil},
		{"stderr inherit", "StandardError=inherit", "", "stderr", []string{"stdout"}},
		{"stderr null", "StandardError=null", "", "stderr", []string{"null"}},
		{"stderr journal", "StandardError=journal", "", "stderr", nil},
		{"stderr later line wins", "StandardError=inherit\nStandardError=journal+console", "", "stderr", nil},
		{"stderr reset", "StandardError=null\nStandardError=", "", "stderr", nil},
		{"stderr file", "StandardError=file:/var/log/x", "", "stderr", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc := c.service
			if !strings.Contains(svc, "ExecStart=") {
				svc = "ExecStart=/bin/x\n" + svc
			}
			us, _ := loadFiles(t, map[string]string{"a.service": "[Unit]\nDescription=test\n\n[Service]\n" + svc + "\n" + c.extra + "\n"})
			if len(us.jobs) != 1 {
				t.Fatalf("jobs %v, warnings %q", us.Jobs(), us.warnings)
			}
			if got := us.Answer("a", c.prop, nil); !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s = %q, want %q (warnings %q)", c.prop, got, c.want, us.warnings)
			}
		})
	}
}

// TestWarnings checks that what god-units cannot honour is reported with the file and the line.
func TestWarnings(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string // substrings, each of some warning
	}{
		{"pidfile", map[string]string{"web.service": "[Unit]\nDescription=x\n\n[Service]\n# comment\nExecStart=/bin/x\nPIDFile=/run/x.pid\n"},
			[]string{"web.service:7: PIDFile= is not needed by god (ignored)"}},
		{"unknown directive and section", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nFrobnicate=yes\n[Foo]\nBar=1\n"},
			[]string{"web.service:3: Frobnicate= is not supported", "web.service:4: section [Foo] is not supported"}},
		{"second occurrence", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nPIDFile=/a\nUser=x\nPIDFile=/b\n"},
			[]string{"web.service:3: PIDFile=", "web.service:5: PIDFile="}},
		{"continuation counts lines", map[string]string{"web.service": "[Service]\nExecStart=/bin/x \\\n  a \\\n  b\nExecStartPre=/bin/y\n"},
			[]string{"web.service:5: ExecStartPre= is not supported"}},
		{"type forking", map[string]string{"web.service": "[Service]\nType=forking\nExecStart=/bin/x\n"},
			[]string{"web.service:2: Type=forking is not supported"}},
		{"start timeout", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nTimeoutStartSec=5\n"},
			[]string{"web.service:3: TimeoutStartSec="}},
		{"exec reload other", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nExecReload=/bin/x reload\n"},
			[]string{"web.service:3: ExecReload="}},
		{"exec prefix", map[string]string{"web.service": "[Service]\nExecStart=+/bin/x\n"},
			[]string{`web.service:2: ExecStart=: prefix "+" is not supported`}},
		{"restart on-abort", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nRestart=on-abort\n"},
			[]string{"web.service:3: Restart=on-abort is run as on-failure"}},
		{"unset variable", map[string]string{"web.service": "[Service]\nEnvironmentFile=/etc/x\nExecStart=/bin/x $OPTS\n"},
			[]string{"web.service:3: ExecStart=: $OPTS is not set by an Environment= line"}},
		{"cgroup", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\n[X-God]\nCgroup=/x\n"},
			[]string{"web.service:4: Cgroup="}},
		{"cgroup limit god cannot take", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nMemoryMax=50%\nCPUWeight=idle\n"},
			[]string{"web.service:3: MemoryMax=50%: god's cgroup property cannot take it", "web.service:4: CPUWeight=idle"}},
		{"stderr to a file", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\nStandardError=file:/var/log/x\n"},
			[]string{"web.service:3: StandardError=file:/var/log/x: god logs the job's output (ignored)"}},
		{"unknown x-god", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\n[X-God]\nColour=red\n"},
			[]string{"web.service:4: Colour= is not a god-units [X-God] setting"}},
		{"before from a manual unit", map[string]string{
			"web.service":  "[Service]\nExecStart=/bin/x\n[Install]\nWantedBy=multi-user.target\n",
			"tool.service": "[Unit]\nDescription=x\nBefore=web.service\n[Service]\nExecStart=/bin/y\n"},
			[]string{"tool.service:3: Before=web.service: tool does not start by itself"}},
		{"target dependency", map[string]string{"web.service": "[Unit]\nAfter=network.target\n[Service]\nExecStart=/bin/x\n"},
			[]string{"web.service:2: After=network.target: not a service of this directory"}},
		{"invalid job name", map[string]string{"a@b.service": "[Service]\nExecStart=/bin/x\n"},
			[]string{`a@b.service: "a@b" is not a valid god job name`}},
		{"no exec", map[string]string{"web.service": "[Service]\nUser=x\n"},
			[]string{"web.service: no ExecStart="}},
		{"broken file", map[string]string{"web.service": "[Service\nExecStart=/bin/x\n"},
			[]string{"web.service: parse web.service:"}},
		{"other unit type", map[string]string{"web.timer": "[Timer]\n"},
			[]string{"web.timer: not a .service or .socket unit"}},
		{"socket without service", map[string]string{"db.socket": "[Socket]\nListenStream=5432\n"},
			[]string{"db.socket: no service db.service"}},
		{"socket options", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\n", "web.socket": "[Socket]\nListenDatagram=/run/d\nBacklog=x\nNoDelay=yes\nAccept=yes\nBindIPv6Only=maybe\nReceiveBuffer=0\nDeferAcceptSec=1.5s\n"},
			[]string{"web.socket:3: Backlog=x: backlog \"x\"", "web.socket:4: NoDelay= does not apply to ListenDatagram=/run/d", "web.socket:5: Accept=yes",
				"web.socket:6: BindIPv6Only=maybe", "web.socket:7: ReceiveBuffer=0", "web.socket:8: DeferAcceptSec=1.5s"}},
		{"socket seqpacket on a port", map[string]string{"web.service": "[Service]\nExecStart=/bin/x\n", "web.socket": "[Socket]\nListenSequentialPacket=80\n"},
			[]string{"web.socket:2: ListenSequentialPacket=80: sequential-packet sockets are unix sockets"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			us, _ := loadFiles(t, c.files)
			all := strings.Join(us.warnings, "\n")
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("no warning %q among:\n%s", w, all)
				}
			}
		})
	}
}

// TestNoWarnings checks that a plain, supported unit loads without any warning.
func TestNoWarnings(t *testing.T) {
	us, _ := loadFiles(t, map[string]string{
		"web.service": "[Unit]\nDescription=web\nRequires=db.service\nAfter=db.service web.socket\n\n[Service]\nType=notify\nExecStart=/bin/x\nRestart=always\nRestartSec=1\nStandardOutput=journal\nStandardError=inherit\n\n[Install]\nWantedBy=multi-user.target\n",
		"web.socket":  "[Unit]\nDescription=web socket\n[Socket]\nListenStream=127.0.0.1:8080\nFileDescriptorName=http\n[Install]\nWantedBy=sockets.target\n",
		"db.service":  "[Service]\nExecStart=/bin/db\n",
	})
	if len(us.warnings) > 0 {
		t.Errorf("warnings: %q", us.warnings)
	}
	if got := us.Answer("web", "auto", nil); !reflect.DeepEqual(got, []string{"db"}) {
		t.Errorf("web auto = %q", got)
	}
	if got := us.Answer("db", "auto", nil); !reflect.DeepEqual(got, []string{"true"}) {
		t.Errorf("db (required by an installed job) auto = %q", got)
	}
}

// TestRelativePaths checks that ./ and ../ are taken relative to the unit file's directory.
func TestRelativePaths(t *testing.T) {
	us, dir := loadFiles(t, map[string]string{"a.service": "[Service]\nExecStart=../bin/srv ./arg\nWorkingDirectory=./data\nEnvironmentFile=-./env\n[X-God]\nCheck=./probe\n"})
	want := map[string][]string{
		"exec":     {filepath.Join(filepath.Dir(dir), "bin", "srv"), "./arg"},
		"dir":      {filepath.Join(dir, "data")},
		"env-file": {"-" + filepath.Join(dir, "env")},
	}
	for prop, w := range want {
		if got := us.Answer("a", prop, nil); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %q, want %q", prop, got, w)
		}
	}
	if got := us.byName["a"].check[0]; got != filepath.Join(dir, "probe") {
		t.Errorf("check program = %q", got)
	}
	if got := us.Answer("a", "exec", nil)[0]; !filepath.IsAbs(got) {
		t.Errorf("program %q is not absolute", got)
	}
}

// TestSockets checks the listen entries made from .socket units.
func TestSockets(t *testing.T) {
	for _, c := range []struct {
		name   string
		socket string
		want   []string
	}{
		{"port only", "ListenStream=8080", []string{"web.socket=tcp://:8080"}},
		{"host port", "ListenStream=127.0.0.1:8082\nFileDescriptorName=http", []string{"http=tcp://127.0.0.1:8082"}},
		{"ipv6", "ListenStream=[::1]:80", []string{"web.socket=tcp://[::1]:80"}},
		{"udp", "ListenDatagram=127.0.0.1:53", []string{"web.socket=udp://127.0.0.1:53"}},
		{"unix", "ListenStream=/run/web.sock\nSocketMode=0660\nSocketUser=www\nSocketGroup=web", []string{"web.socket=unix:///run/web.sock?mode=0660&owner=www&group=web"}},
		{"unixgram", "ListenDatagram=/run/web.dgram", []string{"web.socket=unixgram:///run/web.dgram"}},
		{"several", "ListenStream=80\nListenStream=443\nFileDescriptorName=web", []string{"web=tcp://:80", "web-2=tcp://:443"}},
		{"reset", "ListenStream=80\nListenStream=\nListenStream=81", []string{"web.socket=tcp://:81"}},
		{"abstract", "ListenStream=@abs\nListenDatagram=@log\nFileDescriptorName=a", []string{"a=unix://@abs", "a-2=unixgram://@log"}},
		{"seqpacket", "ListenSequentialPacket=/run/p.sock\nSocketMode=0600", []string{"web.socket=unixpacket:///run/p.sock?mode=0600"}},
		{"fifo", "ListenFIFO=/run/in.fifo\nSocketMode=0620", []string{"web.socket=fifo:///run/in.fifo?mode=0620"}},
		{"tcp options", "ListenStream=8080\nBacklog=128\nReusePort=yes\nNoDelay=true\nKeepAlive=no\nDeferAcceptSec=2min\nReceiveBuffer=64K\nSendBuffer=1M\nMark=7\nBindToDevice=lo\nFreeBind=on\nTransparent=1\nBindIPv6Only=both",
			[]string{"web.socket=tcp://:8080?backlog=128&reuseport=true&nodelay=true&defer-accept=120&rcvbuf=65536&sndbuf=1048576&mark=7&bind-to-device=lo&freebind=true&transparent=true&ipv6only=false"}},
		{"options per kind", "ListenStream=80\nListenDatagram=/run/d\nNoDelay=yes\nFileDescriptorName=s",
			[]string{"s=tcp://:80?nodelay=true", "s-2=unixgram:///run/d"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			us, _ := loadFiles(t, map[string]string{"web.service": "[Service]\nExecStart=/bin/x\n", "web.socket": "[Socket]\n" + c.socket + "\n"})
			if got := us.Answer("web", "listen", nil); !reflect.DeepEqual(got, c.want) {
				t.Errorf("listen = %q, want %q (warnings %q)", got, c.want, us.warnings)
			}
		})
	}
	// Service= attaches a socket to a service of another name.
	us, _ := loadFiles(t, map[string]string{"app.service": "[Service]\nExecStart=/bin/x\n", "front.socket": "[Socket]\nListenStream=9000\nService=app.service\n"})
	if got := us.Answer("app", "listen", nil); !reflect.DeepEqual(got, []string{"front.socket=tcp://:9000"}) {
		t.Errorf("Service=: listen = %q (warnings %q)", got, us.warnings)
	}
}

// TestDependencies checks the auto property made from Requires=, Wants=, After=, Before= and
// [Install].
func TestDependencies(t *testing.T) {
	us, _ := loadFiles(t, map[string]string{
		"web.service":     "[Unit]\nRequires=migrate.service\nAfter=migrate.service\nWants=cache.service\n[Service]\nExecStart=/bin/web\n[Install]\nWantedBy=multi-user.target\n",
		"migrate.service": "[Unit]\nBefore=web.service\n[Service]\nType=oneshot\nExecStart=/bin/migrate\n",
		"cache.service":   "[Service]\nExecStart=/bin/cache\n",
		"tool.service":    "[Unit]\nAfter=web.service\n[Service]\nExecStart=/bin/tool\n",
		"early.service":   "[Unit]\nBefore=web.service\n[Service]\nExecStart=/bin/early\n[Install]\nWantedBy=multi-user.target\n",
	})
	wantAuto(t, us, map[string][]string{
		"web":     {"migrate", "cache", "early"},
		"migrate": {"true"},
		"cache":   {"true"},
		"tool":    {"false"},
		"early":   {"true"},
	})
}

// wantAuto checks each job's auto property, and that loading warned about nothing.
func wantAuto(t testing.TB, us *units, want map[string][]string) {
	t.Helper()
	for job, w := range want {
		if got := us.Answer(job, "auto", nil); !reflect.DeepEqual(got, w) {
			t.Errorf("%s auto = %q, want %q", job, got, w)
		}
	}
	if len(us.warnings) > 0 {
		t.Errorf("warnings: %q", us.warnings)
	}
}

// TestSocketActivation: a service that is not installed but whose socket is starts on its first
// connection (auto ["socket"]); an installed service starts at once, installed socket or not; a
// socket that is not installed activates nothing.
func TestSocketActivation(t *testing.T) {
	us, _ := loadFiles(t, map[string]string{
		"lazy.service":  "[Service]\nExecStart=/bin/lazy\n",
		"lazy.socket":   "[Socket]\nListenStream=127.0.0.1:8090\n[Install]\nWantedBy=sockets.target\n",
		"eager.service": "[Service]\nExecStart=/bin/eager\n[Install]\nWantedBy=multi-user.target\n",
		"eager.socket":  "[Socket]\nListenStream=127.0.0.1:8091\n[Install]\nWantedBy=sockets.target\n",
		"idle.service":  "[Service]\nExecStart=/bin/idle\n",
		"idle.socket":   "[Socket]\nListenStream=127.0.0.1:8092\n",
	})
	wantAuto(t, us, map[string][]string{"lazy": {"socket"}, "eager": {"true"}, "idle": {"false"}})
}

// TestBrokenUnitOthersLoad checks that a unit that does not parse is reported and skipped.
func TestBrokenUnitOthersLoad(t *testing.T) {
	us, _ := loadFiles(t, map[string]string{
		"bad.service":  "[Service\nExecStart=/bin/x\n",
		"good.service": "[Service]\nExecStart=/bin/good\n",
	})
	if got := us.Jobs(); !reflect.DeepEqual(got, []string{"good"}) {
		t.Errorf("jobs = %q", got)
	}
	if len(us.warnings) != 1 || !strings.HasPrefix(us.warnings[0], "bad.service: ") {
		t.Errorf("warnings = %q", us.warnings)
	}
}

// TestKillMainPID checks which ExecReload= lines become a signal reload.
func TestKillMainPID(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"/bin/kill -HUP $MAINPID", "SIGHUP"},
		{"kill -SIGUSR1 $MAINPID", "SIGUSR1"},
		{"/usr/bin/kill -s HUP $MAINPID", "SIGHUP"},
		{"kill --signal HUP ${MAINPID}", "SIGHUP"},
		{"kill -1 $MAINPID", "SIGHUP"},
		{"kill -HUP 123", ""},
		{"/usr/sbin/nginx -s reload", ""},
		{"kill -NOPE $MAINPID", ""},
		{"bin/kill -HUP $MAINPID", ""},
	} {
		got, ok := killMainPID(c.in)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("killMainPID(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// TestCheck checks that [X-God] Check= runs the command and answers by its exit status, and
// fails a command that outlives CheckTimeout.
func TestCheck(t *testing.T) {
	us, _ := loadFiles(t, map[string]string{
		"ok.service":     "[Service]\nExecStart=/bin/x\nEnvironment=WANT=7\n[X-God]\nCheck=/bin/sh -c 'test \"$MAINPID\" = 42 && test \"$WANT\" = 7'\nCheckInterval=2s\n",
		"bad.service":    "[Service]\nExecStart=/bin/x\n[X-God]\nCheck=/bin/false\n",
		"subst.service":  "[Service]\nExecStart=/bin/x\nEnvironment=DIR=/proc\n[X-God]\nCheck=/bin/test -d ${DIR}/${MAINPID}\n",
		"dollar.service": "[Service]\nExecStart=/bin/x\n[X-God]\nCheck=/bin/sh -c 'test $$MAINPID = 42'\n",
		"slow.service":   "[Service]\nExecStart=/bin/x\n[X-God]\nCheck=/bin/sleep 30\nCheckTimeout=200ms\n",
		"none.service":   "[Service]\nExecStart=/bin/x\n",
	})
	for _, c := range []struct {
		job  string
		want []string
	}{
		{"ok", []string{"ok", "2000"}},
		{"bad", []string{"fail"}},
		{"subst", []string{"ok", "1000"}},
		{"dollar", []string{"ok", "1000"}},
		{"slow", []string{"fail"}},
		{"none", nil},
	} {
		start := time.Now()
		pid := "42"
		if c.job == "subst" {
			pid = strconv.Itoa(os.Getpid())
		}
		if got := us.Answer(c.job, "check", []string{pid}); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s check = %q, want %q", c.job, got, c.want)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s check took %s", c.job, d)
		}
	}
}

// TestUnitDir checks where a loader looks for its units.
func TestUnitDir(t *testing.T) {
	dir := t.TempDir()
	got, err := unitDir(filepath.Join(dir, "units"))
	if err != nil || got != filepath.Join(dir, "units.d") {
		t.Errorf("unitDir = %q, %v", got, err)
	}
}
