package identity

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	PasswdFile = filepath.Join(dir, "passwd")
	t.Cleanup(func() { PasswdFile = "/etc/passwd" })
	if err := os.WriteFile(PasswdFile, []byte("# c\nroot:x:0:0:root:/root:/bin/bash\nweb:x:1234:4321:Web:/srv/web:/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id, err := Resolve("web", "", []string{"7", "8"})
	if err != nil || id.Uid != 1234 || id.Gid != 4321 || !reflect.DeepEqual(id.Groups, []uint32{7, 8}) {
		t.Fatalf("Resolve(web) = %+v, %v", id, err)
	}
	if want := []string{"HOME=/srv/web", "USER=web", "LOGNAME=web", "SHELL=/bin/sh"}; !reflect.DeepEqual(id.Env(), want) {
		t.Errorf("Env = %q", id.Env())
	}
	if id, err := Resolve("1234", "99", []string{}); err != nil || id.Name != "web" || id.Gid != 99 || len(id.Groups) != 0 {
		t.Errorf("Resolve(1234) = %+v, %v", id, err)
	}
	if id, err := Resolve("5000", "", nil); err != nil || id.Uid != 5000 || id.Gid != 5000 || id.Env() != nil {
		t.Errorf("Resolve(5000) = %+v, %v", id, err)
	}
	if _, err := Resolve("nosuch", "", nil); !errors.Is(err, ErrUnknownUser) || err.Error() != `user "nosuch": unknown user` {
		t.Errorf("Resolve(nosuch) = %v", err)
	}
	if _, err := Resolve("", "nosuchgroup-xyz", nil); !errors.Is(err, ErrUnknownGroup) {
		t.Errorf("Resolve(group nosuch) = %v", err)
	}
}
