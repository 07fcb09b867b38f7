package fdpass

import (
	"path/filepath"
	"reflect"
	"testing"
)

func TestEnv(t *testing.T) {
	tests := []struct {
		names []string
		want  []string
	}{
		{nil, nil},
		{[]string{}, nil},
		{[]string{"web"}, []string{"LISTEN_FDS=1", "LISTEN_FDNAMES=web"}},
		{[]string{"web", "admin", "web"}, []string{"LISTEN_FDS=3", "LISTEN_FDNAMES=web:admin:web"}},
		{[]string{"", ""}, []string{"LISTEN_FDS=2"}},
		{[]string{"", "b"}, []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=:b"}},
	}
	for _, tt := range tests {
		if got := Env(tt.names); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Env(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}

// TestInherited starts the test binary through the shim with three sockets,
// two of them under one name, and checks what Inherited gives it.
func TestInherited(t *testing.T) {
	a1, f1 := mustOpen(t, "a=tcp://127.0.0.1:0")
	_, f2 := mustOpen(t, "a=udp://127.0.0.1:0")
	b, f3 := mustOpen(t, "b=unix://"+filepath.Join(t.TempDir(), "b.sock"))
	self := selfPath(t)
	env := append(baseEnv(), Env([]string{"a", "a", "b"})...)
	env = append(env, childEnv+"=inherited", "FDPASS_TEST_SPECS="+a1.String()+" "+b.String())
	rep := inheritedChild(t, ShimShell, ShimArgv([]string{self}), env, f1, f2, f3)
	if !reflect.DeepEqual(rep.Counts, map[string]int{"a": 2, "b": 1}) {
		t.Errorf("counts %v, want a:2 b:1", rep.Counts)
	}
	// a's spec is tcp: the tcp socket matches, the udp one under the same name does not.
	if !reflect.DeepEqual(rep.Matches, map[string][]bool{"a": {true, false}, "b": {true}}) {
		t.Errorf("matches %v", rep.Matches)
	}
	if !rep.Cloexec {
		t.Error("inherited fds are not close-on-exec")
	}
	if len(rep.EnvLeft) != 0 {
		t.Errorf("variables left set: %v", rep.EnvLeft)
	}
	if rep.SecondCall != 0 {
		t.Errorf("second Inherited returned %d names, want 0", rep.SecondCall)
	}
}

// TestInheritedWrongPID checks that fds meant for another process are
// ignored, and that unnamed fds get activation's default names.
func TestInheritedWrongPID(t *testing.T) {
	_, f := mustOpen(t, "a=tcp://127.0.0.1:0")
	self := selfPath(t)
	for _, tc := range []struct {
		name   string
		argv   []string
		env    []string
		counts map[string]int
	}{
		{"wrong pid", []string{self}, []string{"LISTEN_PID=1", "LISTEN_FDS=1"}, map[string]int{}},
		{"no names", ShimArgv([]string{self}), []string{"LISTEN_FDS=1"}, map[string]int{"LISTEN_FD_3": 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append(baseEnv(), tc.env...)
			env = append(env, childEnv+"=inherited")
			rep := inheritedChild(t, tc.argv[0], tc.argv, env, f)
			if !reflect.DeepEqual(rep.Counts, tc.counts) {
				t.Errorf("counts %v, want %v", rep.Counts, tc.counts)
			}
			if len(rep.EnvLeft) != 0 {
				t.Errorf("variables left set: %v", rep.EnvLeft)
			}
		})
	}
}
