package loader

import (
	"errors"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidJobName(t *testing.T) {
	for _, s := range []string{"a", "web", "A-Z_a.z-0.9", strings.Repeat("x", 64)} {
		if !ValidJobName(s) {
			t.Errorf("ValidJobName(%q) = false", s)
		}
	}
	for _, s := range []string{"", strings.Repeat("x", 65), "a b", "a/b", "ü", "a=b", "@web", "a\x00"} {
		if ValidJobName(s) {
			t.Errorf("ValidJobName(%q) = true", s)
		}
	}
}

func TestParseHandshake(t *testing.T) {
	jobs, err := parseHandshake(Message{"godv1", "web", "db"})
	if err != nil || !reflect.DeepEqual(jobs, []string{"web", "db"}) {
		t.Fatalf("parseHandshake = %q, %v", jobs, err)
	}
	jobs, err = parseHandshake(Message{"godv1"})
	if err != nil || len(jobs) != 0 {
		t.Fatalf("parseHandshake of no jobs = %q, %v", jobs, err)
	}
	for _, m := range []Message{nil, {}, {"godv2", "web"}, {"web"}, {"GODV1"}} {
		if _, err := parseHandshake(m); !errors.Is(err, ErrNotGodv1) {
			t.Errorf("parseHandshake(%q) = %v, want ErrNotGodv1", m, err)
		}
	}
	for _, m := range []Message{{"godv1", "web", "web"}, {"godv1", "bad name"}, {"godv1", ""}} {
		_, err := parseHandshake(m)
		if err == nil || errors.Is(err, ErrNotGodv1) {
			t.Errorf("parseHandshake(%q) = %v, want a naming error", m, err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"SIGTERM": syscall.SIGTERM, "TERM": syscall.SIGTERM, "term": syscall.SIGTERM,
		"sigHup": syscall.SIGHUP, "15": syscall.SIGTERM, "9": syscall.SIGKILL, "usr2": syscall.SIGUSR2,
		"64": 64,
	} {
		got, err := ParseSignal(in)
		if err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "65", "-1", "SIG", "BOGUS", "15x", "+15", " 15"} {
		if sig, err := ParseSignal(in); err == nil {
			t.Errorf("ParseSignal(%q) = %v, want error", in, sig)
		}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, 40} {
		back, err := ParseSignal(SignalName(sig))
		if err != nil || back != sig {
			t.Errorf("ParseSignal(SignalName(%d)) = %v, %v", sig, back, err)
		}
	}
	if got := SignalName(syscall.SIGTERM); got != "SIGTERM" {
		t.Errorf("SignalName(SIGTERM) = %q", got)
	}
}

func TestParseMS(t *testing.T) {
	for in, want := range map[string]time.Duration{"0": 0, "1": time.Millisecond, "1500": 1500 * time.Millisecond, "86400000": 24 * time.Hour} {
		if got, err := parseMS(in); err != nil || got != want {
			t.Errorf("parseMS(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5", "1e3", "86400001", "99999999999999999999", " 1", "+1", "1s"} {
		if d, err := parseMS(in); err == nil {
			t.Errorf("parseMS(%q) = %v, want error", in, d)
		}
	}
	if _, err := parseMS("-5"); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("parseMS(-5) error = %v, want it to say negative", err)
	}
	for d, want := range map[time.Duration]string{0: "0", time.Millisecond: "1", 1500 * time.Microsecond: "2", time.Second: "1000"} {
		if got := FormatMS(d); got != want {
			t.Errorf("FormatMS(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestParseStop(t *testing.T) {
	good := map[string]Stop{
		``:              {syscall.SIGTERM, 5 * time.Second},
		`3000`:          {0, 3 * time.Second},
		`0`:             {0, 0},
		`SIGINT`:        {syscall.SIGINT, 5 * time.Second},
		`SIGQUIT|100`:   {syscall.SIGQUIT, 100 * time.Millisecond},
		`15|2000`:       {syscall.SIGTERM, 2 * time.Second},
		`usr1|86400000`: {syscall.SIGUSR1, 24 * time.Hour},
	}
	for in, want := range good {
		got, err := ParseStop(split(in))
		if err != nil || got != want {
			t.Errorf("ParseStop(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{`-1`, `BOGUS`, `TERM|x`, `TERM|-5`, `TERM|1|2`, `x|100`, `99999999999`} {
		if got, err := ParseStop(split(in)); err == nil {
			t.Errorf("ParseStop(%q) = %+v, want error", in, got)
		}
	}
}

func TestParseCheck(t *testing.T) {
	good := map[string]Check{
		``:                       {Kind: CheckNone},
		`ok`:                     {Kind: CheckOK},
		`ok|500`:                 {Kind: CheckOK, Next: 500 * time.Millisecond},
		`ok|1`:                   {Kind: CheckOK, Next: 10 * time.Millisecond},
		`degrade|2000`:           {Kind: CheckDegrade, Next: 2 * time.Second},
		`degrade`:                {Kind: CheckDegrade},
		`fail`:                   {Kind: CheckFail},
		`start`:                  {Kind: CheckStart},
		`stop`:                   {Kind: CheckStop},
		`restart`:                {Kind: CheckRestart},
		`@db|restart`:            {Kind: CheckForward, Target: "db", Command: []string{"restart"}},
		`@cache|signal|HUP|more`: {Kind: CheckForward, Target: "cache", Command: []string{"signal", "HUP", "more"}},
	}
	for in, want := range good {
		got, err := ParseCheck(split(in))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseCheck(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{`OK`, `ok|x`, `ok|-1`, `ok|1|2`, `fail|why`, `@`, `@db`, `@db|`, `@bad name|start`, `none`, `forward`} {
		if got, err := ParseCheck(split(in)); err == nil {
			t.Errorf("ParseCheck(%q) = %+v, want error", in, got)
		}
	}
}

// propCase is an answer to a property and what its parser should make of it.
type propCase struct {
	parse func(Message) (any, error)
	in    string
	want  any // nil: want an error
}

// checkParses runs each case's parser on its answer.
func checkParses(t testing.TB, cases []propCase) {
	t.Helper()
	for _, c := range cases {
		got, err := c.parse(split(c.in))
		if c.want == nil {
			if err == nil {
				t.Errorf("parse(%q) = %#v, want error", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("parse(%q) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
}

func TestParseStaticProps(t *testing.T) {
	exec := func(m Message) (any, error) { return parseExec(m) }
	env := func(m Message) (any, error) { return parseEnv(m) }
	auto := func(m Message) (any, error) { return parseAuto(m) }
	listen := func(m Message) (any, error) { return parseListen(m) }
	inst := func(m Message) (any, error) { return parseInstances(m) }
	ready := func(m Message) (any, error) { return parseReady(m) }
	reload := func(m Message) (any, error) { return parseReload(m) }
	restart := func(m Message) (any, error) { return parseRestart(m) }
	dir := func(m Message) (any, error) { return parseDir(m) }
	logf := func(m Message) (any, error) { return parseLog(m) }
	wd := func(m Message) (any, error) { return parseWatchdog(m) }
	checkParses(t, []propCase{
		{exec, ``, []string(nil)},
		{exec, `/bin/sleep|10`, []string{"/bin/sleep", "10"}},
		{exec, `|x`, nil},
		{exec, "a|b\x00", nil},
		{env, ``, []string(nil)},
		{env, `A=1|B=|C==x`, []string{"A=1", "B=", "C==x"}},
		{env, `A`, nil},
		{env, `=x`, nil},
		{env, "A=\x00", nil},
		{auto, ``, Auto{}},
		{auto, `false`, Auto{}},
		{auto, `true`, Auto{Start: true}},
		{auto, `socket`, Auto{Start: true, Socket: true}},
		{auto, `socket|db`, Auto{Start: true, After: []string{"socket", "db"}}},
		{auto, `db|cache|db`, Auto{Start: true, After: []string{"db", "cache"}}},
		{auto, `db|bad name`, nil},
		{listen, ``, []string(nil)},
		{listen, `web=tcp://127.0.0.1:80|dns=udp://[::1]:53`, []string{"web=tcp://127.0.0.1:80", "dns=udp://[::1]:53"}},
		{listen, `web=tcp://a|web=tcp://b`, nil},
		{listen, `web`, nil},
		{listen, `web=`, nil},
		{listen, `=tcp://a`, nil},
		{listen, `a b=tcp://a`, nil},
		{inst, ``, 1},
		{inst, `4`, 4},
		{inst, `1024`, 1024},
		{inst, `0`, nil},
		{inst, `1025`, nil},
		{inst, `-1`, nil},
		{inst, `+2`, nil},
		{inst, `2|3`, nil},
		{ready, ``, Ready{}},
		{ready, `check`, Ready{Mode: ReadyCheck}},
		{ready, `notify`, Ready{Mode: ReadyNotify}},
		{ready, `delay|250`, Ready{Mode: ReadyDelay, Delay: 250 * time.Millisecond}},
		{ready, `delay`, nil},
		{ready, `delay|-1`, nil},
		{ready, `check|1`, nil},
		{ready, `started`, nil},
		{reload, ``, Reload{}},
		{reload, `overlap`, Reload{Mode: ReloadOverlap}},
		{reload, `restart`, Reload{Mode: ReloadRestart}},
		{reload, `signal`, Reload{Mode: ReloadSignal, Signal: syscall.SIGHUP}},
		{reload, `signal|USR2`, Reload{Mode: ReloadSignal, Signal: syscall.SIGUSR2}},
		{reload, `signal|NOPE`, nil},
		{reload, `hot`, nil},
		{restart, ``, RestartAlways},
		{restart, `on-failure`, RestartOnFailure},
		{restart, `never`, RestartNever},
		{restart, `sometimes`, nil},
		{dir, ``, ""},
		{dir, `/srv/web`, "/srv/web"},
		{dir, `|`, nil},
		{logf, ``, LogText},
		{logf, `json`, LogJSON},
		{logf, `logfmt`, LogLogfmt},
		{logf, `xml`, nil},
		{wd, ``, time.Duration(0)},
		{wd, `0`, time.Duration(0)},
		{wd, `30000`, 30 * time.Second},
		{wd, `-1`, nil},
		{wd, `1|2`, nil},
	})
}

// split turns "a|b" into a Message; "" is the empty reply.
func split(s string) Message {
	if s == "" {
		return Message{}
	}
	return Message(strings.Split(s, "|"))
}

func FuzzParseCheck(f *testing.F) {
	for _, s := range []string{"", "ok", "ok|500", "ok|1", "degrade|x", "fail", "@db|restart", "@|x", "ok|-1", "ok|99999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCheck(split(s))
		if err != nil {
			return
		}
		switch c.Kind {
		case CheckNone, CheckFail, CheckStart, CheckStop, CheckRestart:
			if c.Next != 0 || c.Target != "" || c.Command != nil {
				t.Fatalf("ParseCheck(%q) = %+v: extra fields", s, c)
			}
		case CheckOK, CheckDegrade:
			if c.Next != 0 && (c.Next < minCheckInterval || c.Next > maxDuration) {
				t.Fatalf("ParseCheck(%q).Next = %v out of range", s, c.Next)
			}
		case CheckForward:
			if !ValidJobName(c.Target) || len(c.Command) == 0 || c.Command[0] == "" {
				t.Fatalf("ParseCheck(%q) = %+v: bad forward", s, c)
			}
		default:
			t.Fatalf("ParseCheck(%q) kind %q", s, c.Kind)
		}
	})
}

func FuzzParseStop(f *testing.F) {
	for _, s := range []string{"", "3000", "TERM", "SIGKILL|0", "15|100", "x", "-1", "TERM|1|2", "0|0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStop(split(s))
		if err != nil {
			return
		}
		if st.Timeout < 0 || st.Timeout > maxDuration || st.Signal < 0 || st.Signal > maxSignal {
			t.Fatalf("ParseStop(%q) = %+v out of range", s, st)
		}
	})
}

func FuzzParseHandshake(f *testing.F) {
	for _, s := range []string{"", "godv1", "godv1|web|db", "godv1|web|web", "godv2", "godv1|a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := split(s)
		jobs, err := parseHandshake(m)
		if err != nil {
			return
		}
		if len(jobs) != len(m)-1 {
			t.Fatalf("parseHandshake(%q) = %q", s, jobs)
		}
		seen := map[string]bool{}
		for _, j := range jobs {
			if !ValidJobName(j) || seen[j] {
				t.Fatalf("parseHandshake(%q) accepted %q", s, j)
			}
			seen[j] = true
		}
	})
}

func FuzzDefinitionReplies(f *testing.F) {
	for _, s := range []string{"", "true", "false", "a|b", "A=B", "web=tcp://x", "4", "delay|5", "signal|HUP",
		"on-failure", "/tmp", "json", "1000", "check", "=", "0", "-3", "75|SIGTERM|255", "KILL", "256", "1048576", "1099511627777", "007", "stdout", "null", "pipe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m := split(s)
		if l, err := parseRestartLimit(m); err == nil && l != nil && (*l < 0 || *l > maxRestartLimit) {
			t.Fatalf("parseRestartLimit(%q) = %d", s, *l)
		}
		if d, err := parseOptionalMS(m); err == nil && d != nil && (*d < 0 || *d > maxDuration) {
			t.Fatalf("parseOptionalMS(%q) = %v", s, *d)
		}
		if list, err := parseExitStatuses(m); err == nil {
			for _, v := range list {
				if v < 0 || v > 256+maxSignal || v > 255 && v == 256 {
					t.Fatalf("parseExitStatuses(%q) accepted %d", s, v)
				}
			}
		}
		if exec, err := parseExec(m); err == nil && len(exec) > 0 && exec[0] == "" {
			t.Fatalf("parseExec(%q) = %q", s, exec)
		}
		if env, err := parseEnv(m); err == nil {
			for _, kv := range env {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
					t.Fatalf("parseEnv(%q) accepted %q", s, kv)
				}
			}
		}
		if a, err := parseAuto(m); err == nil {
			for _, j := range a.After {
				if !ValidJobName(j) {
					t.Fatalf("parseAuto(%q) accepted %q", s, j)
				}
			}
		}
		if l, err := parseListen(m); err == nil {
			for _, item := range l {
				if n, _, _ := strings.Cut(item, "="); !ValidJobName(n) {
					t.Fatalf("parseListen(%q) accepted %q", s, item)
				}
			}
		}
		if n, err := parseInstances(m); err == nil && (n < 1 || n > maxInstances) {
			t.Fatalf("parseInstances(%q) = %d", s, n)
		}
		if r, err := parseReady(m); err == nil && (r.Delay < 0 || r.Delay > maxDuration) {
			t.Fatalf("parseReady(%q) = %+v", s, r)
		}
		if r, err := parseReload(m); err == nil && r.Mode == ReloadSignal && (r.Signal < 1 || r.Signal > maxSignal) {
			t.Fatalf("parseReload(%q) = %+v", s, r)
		}
		if p, err := parseRestart(m); err == nil && p != RestartAlways && p != RestartOnFailure && p != RestartNever {
			t.Fatalf("parseRestart(%q) = %q", s, p)
		}
		if d, err := parseDir(m); err == nil && strings.ContainsRune(d, 0) {
			t.Fatalf("parseDir(%q) = %q", s, d)
		}
		if l, err := parseLog(m); err == nil && l != LogText && l != LogJSON && l != LogLogfmt {
			t.Fatalf("parseLog(%q) = %q", s, l)
		}
		if d, err := parseWatchdog(m); err == nil && (d < 0 || d > maxDuration) {
			t.Fatalf("parseWatchdog(%q) = %v", s, d)
		}
		if u, err := parseIdentity(m); err == nil && u != "" && strings.ContainsAny(u, ":,\x00 ") {
			t.Fatalf("parseIdentity(%q) = %q", s, u)
		}
		if files, err := parseEnvFiles(m); err == nil {
			for _, f := range files {
				if !strings.HasPrefix(f.Path, "/") || strings.ContainsRune(f.Path, 0) {
					t.Fatalf("parseEnvFiles(%q) accepted %+v", s, f)
				}
			}
		}
		if c, err := parseCritical(m); err == nil && c != (len(m) == 1 && m[0] == "true") {
			t.Fatalf("parseCritical(%q) = %v", s, c)
		}
		if n, err := parseLogSize(m); err == nil && n != nil && (*n < 1 || *n > maxLogSize) {
			t.Fatalf("parseLogSize(%q) = %d", s, *n)
		}
		if n, err := parseLogKeep(m); err == nil && n != nil && (*n < 0 || *n > maxLogKeep) {
			t.Fatalf("parseLogKeep(%q) = %d", s, *n)
		}
		if e, err := parseStderr(m); err == nil && e != StderrPipe && e != StderrStdout && e != StderrNull {
			t.Fatalf("parseStderr(%q) = %q", s, e)
		}
	})
}
