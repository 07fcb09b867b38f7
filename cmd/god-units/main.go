// Command god-units is a godv1 loader that reads systemd unit files. Placed in god's loader
// directory as NAME, it reads the *.service and *.socket files of the directory NAME.d next to
// it, once per start, and answers god's property requests from them: one job per .service (the
// unit name without .service), with the sockets of its .socket. Every directive it cannot
// honour is a warning on stderr (god's log) naming file:line. See README.md, "Jobs from systemd
// unit files".
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// main serves godv1 on stdin/stdout for the units of NAME.d.
func main() {
	if len(os.Args) < 2 || os.Args[1] != loader.Version {
		fmt.Fprintln(os.Stderr, "usage: god-units godv1 (a watchgod loader: reads systemd units from the directory NAME.d next to it)")
		os.Exit(2)
	}
	dir, err := unitDir(os.Args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "god-units:", err)
		os.Exit(1)
	}
	us := load(dir)
	for _, w := range us.warnings {
		fmt.Fprintln(os.Stderr, w)
	}
	if err := loader.Serve(os.Stdin, os.Stdout, us); err != nil {
		fmt.Fprintln(os.Stderr, "god-units:", err)
		os.Exit(1)
	}
}

// unitDir finds the unit directory of the loader started as argv0: NAME.d beside the file,
// named after the file as it is in god's directory (a symlink named web gives web.d), in the
// directory of the resolved path.
func unitDir(argv0 string) (string, error) {
	p, err := filepath.Abs(argv0)
	if err != nil {
		return "", fmt.Errorf("locate loader %s: %w", argv0, err)
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(p))
	if err != nil {
		return "", fmt.Errorf("locate loader %s: %w", argv0, err)
	}
	return filepath.Join(dir, filepath.Base(p)+".d"), nil
}

// Jobs names one job per loaded .service, for the handshake.
func (us *units) Jobs() []string {
	names := make([]string, len(us.jobs))
	for i, j := range us.jobs {
		names[i] = j.name
	}
	return names
}

// Answer replies to god from the loaded units: static properties from the mapping, and "check"
// by running the job's [X-God] Check= command.
func (us *units) Answer(job, prop string, args []string) []string {
	j := us.byName[job]
	if j == nil {
		return nil
	}
	if prop == "check" {
		if j.check == nil {
			return nil
		}
		pid := ""
		if len(args) > 0 {
			pid = args[0]
		}
		return j.runCheck(pid)
	}
	return j.props[prop]
}

// runCheck runs the job's Check= command for process pid ($MAINPID in its environment) and
// answers ok when it exits 0, fail otherwise or when it outlives CheckTimeout: a check must be
// bounded well under god's check timeout, and a hung probe means a hung service.
func (j *job) runCheck(pid string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), j.checkTimeout)
	defer cancel()
	argv, _ := expandVars(j.check, j.checkVars(pid))
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), j.checkEnv...), "MAINPID="+pid)
	cmd.Dir = j.checkDir
	// stdin and stdout stay away from the protocol's pipes; the whole group is killed on timeout.
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, nil, nil
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		// A non-zero exit, a timeout, or a program that cannot run: the check has failed.
		return []string{"fail"}
	}
	return []string{"ok", strconv.FormatInt(j.checkInterval.Milliseconds(), 10)}
}
