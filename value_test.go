package watchgod

import (
	"os"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/emielm/watchgod/loader"
)

func TestReplyRules(t *testing.T) {
	args := []string{"143", "77"}
	var called []string
	for _, tc := range []struct {
		name string
		v    any
		want []string
	}{
		{"nil", nil, nil},
		{"string", "ok", []string{"ok"}},
		{"empty string", "", nil},
		{"slice", []string{"a", "b"}, []string{"a", "b"}},
		{"true", true, []string{"true"}},
		{"false", false, []string{"false"}},
		{"int", 4, []string{"4"}},
		{"int64", int64(-2), []string{"-2"}},
		{"uint", uint(7), []string{"7"}},
		{"duration", 1500 * time.Millisecond, []string{"1500"}},
		{"sub-ms duration", time.Microsecond, []string{"1"}},
		{"signal", syscall.SIGHUP, []string{"SIGHUP"}},
		{"func() string", func() string { return "ok" }, []string{"ok"}},
		{"func() string empty", func() string { return "" }, nil},
		{"func() []string", func() []string { return []string{"x", "y"} }, []string{"x", "y"}},
		{"func(string) string", func(s string) string { return "first " + s }, []string{"first 143"}},
		{"func(string) []string", func(s string) []string { return []string{s, s} }, []string{"143", "143"}},
		{"func([]string) string", func(a []string) string { return a[1] }, []string{"77"}},
		{"func([]string) []string", func(a []string) []string { return a }, args},
		{"func()", func() { called = append(called, "f") }, nil},
		{"func(string)", func(s string) { called = append(called, s) }, nil},
		{"func([]string)", func(a []string) { called = append(called, a...) }, nil},
	} {
		got, err := reply(tc.v, args)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: reply = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	if want := []string{"f", "143", "143", "77"}; !reflect.DeepEqual(called, want) {
		t.Errorf("hooks called with %q, want %q", called, want)
	}
	if got, err := reply(func(s string) string { return s }, nil); err != nil || got != nil {
		t.Errorf("func(string) without args = %q, %v; want [] (arg is empty)", got, err)
	}
	for _, v := range []any{3.5, []float64{1}, func() int { return 1 }, map[string]string{}} {
		if _, err := reply(v, nil); err == nil {
			t.Errorf("reply(%T) succeeded, want an error", v)
		}
	}
}

func TestAnswerShorthandsAndDefaults(t *testing.T) {
	d := &JobDef{
		Name:     "j",
		Ready:    2 * time.Second,
		Reload:   syscall.SIGUSR2,
		Check:    func() string { panic("boom") },
		Stop:     func() []string { panic("boom") },
		ExecFunc: func() {},
		Env:      []string{"A=1"},
	}
	for prop, want := range map[string][]string{
		"ready":   {"delay", "2000"},
		"reload":  {"signal", "SIGUSR2"},
		"check":   {"fail"},
		"stop":    nil,
		"exec":    {self()},
		"env":     {"A=1", "WATCHGOD_EXECFUNC=j"},
		"unknown": nil,
	} {
		if got := d.answer("j", prop, []string{"1"}); !reflect.DeepEqual(got, want) {
			t.Errorf("answer(%s) = %q, want %q", prop, got, want)
		}
	}
	if env := d.Env.([]string); len(env) != 1 {
		t.Errorf("answer changed the JobDef's Env: %q", env)
	}
	d.Exec = []string{"/bin/other"}
	if got := d.answer("j", "exec", nil); !reflect.DeepEqual(got, []string{"/bin/other"}) {
		t.Errorf("an explicit Exec beside ExecFunc = %q, want it kept", got)
	}
}

// TestAnswerRestartRules: the restart rule fields answer their properties in a form the loader
// package parses back.
func TestAnswerRestartRules(t *testing.T) {
	d := &JobDef{Name: "j", RestartDelay: 250 * time.Millisecond, RestartDelayMax: 5 * time.Second, RestartLimit: 0,
		MinUptime: 2 * time.Second, CoolDown: time.Duration(0), SuccessExitStatus: []int{0, 75},
		RestartPreventExitStatus: []string{"255", "SIGKILL"}}
	for prop, want := range map[string][]string{
		"restart-delay":               {"250"},
		"restart-delay-max":           {"5000"},
		"restart-limit":               {"0"},
		"min-uptime":                  {"2000"},
		"cool-down":                   {"0"},
		"success-exit-status":         {"0", "75"},
		"restart-prevent-exit-status": {"255", "SIGKILL"},
	} {
		if got := d.answer("j", prop, nil); !reflect.DeepEqual(got, want) {
			t.Errorf("answer(%s) = %q, want %q", prop, got, want)
		}
	}
	if got := (&JobDef{Name: "k"}).answer("k", "restart-limit", nil); got != nil {
		t.Errorf("an unset rule answers %q, want [] (god's default)", got)
	}
}

// TestAnswerLogFiles: log-size and log-keep answer their numbers, [] when unset.
func TestAnswerLogFiles(t *testing.T) {
	d := &JobDef{Name: "j", LogSize: int64(1 << 20), LogKeep: 0}
	for prop, want := range map[string][]string{"log-size": {"1048576"}, "log-keep": {"0"}} {
		if got := d.answer("j", prop, nil); !reflect.DeepEqual(got, want) {
			t.Errorf("answer(%s) = %q, want %q", prop, got, want)
		}
	}
	if got := (&JobDef{Name: "k"}).answer("k", "log-size", nil); got != nil {
		t.Errorf("an unset log-size answers %q, want [] (god's --log-size)", got)
	}
}

// TestAnswerStderr: stderr answers a string as it is and a loader.StderrMode by its name
// ("pipe" for the default), [] when unset.
func TestAnswerStderr(t *testing.T) {
	for v, want := range map[any][]string{
		"stdout": {"stdout"}, "null": {"null"},
		loader.StderrStdout: {"stdout"}, loader.StderrNull: {"null"}, loader.StderrPipe: {"pipe"},
	} {
		d := &JobDef{Name: "j", Stderr: v}
		if got := d.answer("j", "stderr", nil); !reflect.DeepEqual(got, want) {
			t.Errorf("answer(stderr) of %#v = %q, want %q", v, got, want)
		}
	}
	if got := (&JobDef{Name: "k"}).answer("k", "stderr", nil); got != nil {
		t.Errorf("an unset stderr answers %q, want [] (its own pipe)", got)
	}
}

func TestJobRegistry(t *testing.T) {
	a := Job("registry-test-a")
	if Job("registry-test-a") != a {
		t.Fatal("Job returned a new definition for a known name")
	}
	Job("registry-test-b")
	names := registered()
	ia, ib := -1, -1
	for i, n := range names {
		switch n {
		case "registry-test-a":
			ia = i
		case "registry-test-b":
			ib = i
		}
	}
	if ia < 0 || ib != ia+1 {
		t.Fatalf("registered() = %q, want a then b in order", names)
	}
}

// TestJobDefSettings: the process-environment properties answer what loader parses.
func TestJobDefSettings(t *testing.T) {
	d := &JobDef{Name: "web", User: "nobody", Group: 65534, Groups: []string{"adm", "100"}, Umask: os.FileMode(0o027),
		Limit: []string{"nofile=65536", "core=infinity"}, EnvFile: []string{"/etc/web.env", "-/etc/web.local"}, Critical: true,
		Cgroup: []string{"memory.max=512M", "cpu.max=50%"}}
	for prop, want := range map[string][]string{
		"user": {"nobody"}, "group": {"65534"}, "groups": {"adm", "100"}, "umask": {"0027"},
		"limit": {"nofile=65536", "core=infinity"}, "env-file": {"/etc/web.env", "-/etc/web.local"}, "critical": {"true"},
		"cgroup": {"memory.max=512M", "cpu.max=50%"},
	} {
		if got := d.answer("web", prop, nil); !reflect.DeepEqual(got, want) {
			t.Errorf("answer(%s) = %q, want %q", prop, got, want)
		}
	}
	for _, v := range []any{0o077, uint32(0o077), "0077"} {
		d.Umask = v
		if got := d.answer("web", "umask", nil); !reflect.DeepEqual(got, []string{"0077"}) {
			t.Errorf("answer(umask %#v) = %q", v, got)
		}
	}
}

// TestAnswerOnDemand: Auto "socket" and IdleExit answer what the loader package reads as an
// on-demand job with an idle exit.
func TestAnswerOnDemand(t *testing.T) {
	d := &JobDef{Name: "j", Auto: "socket", IdleExit: 30 * time.Second}
	if got := d.answer("j", "auto", nil); !reflect.DeepEqual(got, []string{"socket"}) {
		t.Errorf("answer(auto) = %q, want [socket]", got)
	}
	if got := d.answer("j", "idle-exit", nil); !reflect.DeepEqual(got, []string{"30000"}) {
		t.Errorf("answer(idle-exit) = %q, want [30000]", got)
	}
}
