package fdpass_test

import (
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"

	"github.com/emielm/watchgod/fdpass"
	"golang.org/x/sys/unix"
)

func ExampleParseSpec() {
	s, err := fdpass.ParseSpec("api=unix:///run/app/api.sock?mode=660")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Name, s.Network, s.Address, s.Mode)
	fmt.Println(s)

	_, err = fdpass.ParseSpec("api=unix://run/api.sock")
	fmt.Println(err)
	// Output:
	// api unix /run/app/api.sock -rw-rw----
	// api=unix:///run/app/api.sock?mode=0660
	// socket spec "api=unix://run/api.sock": address "unix://run/api.sock": path "run/api.sock" is relative: want an absolute path (unix:///dir/file) or an abstract name (unix://@name)
}

// A job's sockets are opened once, then given to each of its processes as
// fds 3, 4, ... through the LISTEN_PID shim.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "fdpass-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var files []*os.File
	var names []string
	for _, decl := range []string{"web=tcp://127.0.0.1:0", "admin=unix://" + filepath.Join(dir, "admin.sock")} {
		s, err := fdpass.ParseSpec(decl)
		if err != nil {
			log.Fatal(err)
		}
		f, err := fdpass.Open(s)
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		files = append(files, f)
		names = append(names, s.Name)
	}
	argv := fdpass.ShimArgv([]string{"/usr/bin/app", "--serve"})
	env := append([]string{"PATH=/usr/bin:/bin"}, fdpass.Env(names)...)
	attr := &os.ProcAttr{Env: env, Files: append([]*os.File{os.Stdin, os.Stdout, os.Stderr}, files...)}
	_ = attr // os.StartProcess(fdpass.ShimShell, argv, attr)
	fmt.Println(argv[0], argv[3:])
	fmt.Println(env[1:])
	// Output:
	// /bin/sh [/usr/bin/app --serve]
	// [LISTEN_FDS=2 LISTEN_FDNAMES=web:admin]
}

func ExampleInherited() {
	// In god: adopt the sockets systemd passed, where they fit the spec.
	inherited := fdpass.Inherited()
	s, _ := fdpass.ParseSpec("web=tcp://:8080")
	var f *os.File
	for _, c := range inherited[s.Name] {
		if f == nil && fdpass.Matches(c, s) {
			f = c
		}
	}
	fmt.Println(f != nil)
	// Output: false
}

func ExampleRunShimIfRequested() {
	// At the top of main of a binary that may act as the LISTEN_PID shim:
	fdpass.RunShimIfRequested()
	// ... start a job through it:
	argv := fdpass.GoShimArgv("/usr/bin/god", []string{"/usr/bin/app"})
	env := []string{fdpass.ShimEnv + "=1", "LISTEN_FDS=1"}
	fmt.Println(argv, env)
	// Output: [/usr/bin/god /usr/bin/app] [WATCHGOD_LISTEN_PID_SHIM=1 LISTEN_FDS=1]
}

func ExampleSend() {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		panic(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			panic(err)
		}
		return c.(*net.UnixConn)
	}
	a, b := conn(fds[0]), conn(fds[1])
	defer a.Close()
	defer b.Close()

	r, w, err := os.Pipe()
	if err != nil {
		panic(err)
	}
	defer r.Close()
	if err := fdpass.Send(a, []byte("stdout"), w); err != nil {
		panic(err)
	}
	w.Close() // the receiver has its own copy now

	data, files, err := fdpass.Receive(b, 1)
	if err != nil {
		panic(err)
	}
	fmt.Fprint(files[0], "through the passed fd")
	files[0].Close()
	got, _ := io.ReadAll(r)
	fmt.Printf("%s: %s\n", data, got)
	// Output: stdout: through the passed fd
}
