package supervisor

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/emielm/watchgod/loader"
)

func TestResolveSettings(t *testing.T) {
	if _, err := resolveSettings("web", &loader.Definition{User: "nosuch"}); err == nil || err.Error() != `job web: user "nosuch": unknown user` {
		t.Errorf("unknown user: %v", err)
	}
	if _, err := resolveSettings("web", &loader.Definition{Group: "nosuch-group"}); err == nil || !strings.Contains(err.Error(), `job web: group "nosuch-group": unknown group`) {
		t.Errorf("unknown group: %v", err)
	}
	p, err := resolveSettings("web", &loader.Definition{})
	if err != nil || p.cred != nil || p.env != nil || p.needShim() {
		t.Errorf("no settings = %+v, %v", p, err)
	}
	u := uint32(0o22)
	if p, err := resolveSettings("web", &loader.Definition{Umask: &u}); err != nil || !p.needShim() {
		t.Errorf("umask = %+v, %v; want the shim", p, err)
	}
	p, err = resolveSettings("web", &loader.Definition{User: "root"})
	if err != nil || !reflect.DeepEqual(p.env[:3], []string{"HOME=/root", "USER=root", "LOGNAME=root"}) {
		t.Errorf("user root = %+v, %v", p, err)
	}
	if os.Geteuid() == 0 && (p.cred == nil || p.cred.Uid != 0) {
		t.Errorf("user root as root: cred %+v", p.cred)
	}
	if os.Geteuid() != 0 {
		if _, err := resolveSettings("web", &loader.Definition{User: "root"}); err == nil || !strings.Contains(err.Error(), "not root") {
			t.Errorf("user root as uid %d: %v, want an error", os.Geteuid(), err)
		}
	}
}

func TestReadEnvFiles(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.env"), filepath.Join(dir, "b.env")
	os.WriteFile(a, []byte("A=1\nB=1\n"), 0o600)
	os.WriteFile(b, []byte("B=2\n"), 0o600)
	env, err := readEnvFiles("web", []loader.EnvFile{{Path: a}, {Path: filepath.Join(dir, "none"), Optional: true}, {Path: b}})
	if err != nil || !reflect.DeepEqual(mergeEnv(nil, env...), []string{"A=1", "B=2"}) {
		t.Errorf("readEnvFiles = %q, %v", env, err)
	}
	if _, err := readEnvFiles("web", []loader.EnvFile{{Path: filepath.Join(dir, "none")}}); err == nil || !strings.HasPrefix(err.Error(), "job web: env-file "+filepath.Join(dir, "none")+": no such file") {
		t.Errorf("missing file: %v", err)
	}
}
