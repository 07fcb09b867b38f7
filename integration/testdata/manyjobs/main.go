// Command manyjobs is a godv1 loader of many trivial jobs for the scaling benchmark and test:
// `manyjobs godv1 N [ARGV...]` defines jobs s00001..sN, each auto-started, running ARGV (default
// `sleep 100000`), every other property undefined. It answers at once, so what is measured is
// god's cost, not the loader's.
//
// MANYJOBS_STDERR=MODE in its environment answers stderr [MODE] for every job: "stdout" gives
// each job one output pipe in god instead of two (stderr into stdout's), as a runit or s6
// service with one log has.
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/emielm/watchgod/loader"
)

type many struct {
	jobs   []string
	argv   []string
	stderr []string // the reply to stderr; nil: [] (god's default, a pipe of its own)
}

func (m many) Jobs() []string { return m.jobs }

func (m many) Answer(job, prop string, args []string) []string {
	switch prop {
	case "exec":
		return m.argv
	case "auto":
		return []string{"true"}
	case "stderr":
		return m.stderr
	}
	return nil
}

func main() {
	if len(os.Args) < 3 || os.Args[1] != loader.Version {
		fmt.Fprintln(os.Stderr, "usage: manyjobs godv1 N [ARGV...]")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[2])
	if err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "manyjobs: bad job count %q\n", os.Args[2])
		os.Exit(2)
	}
	if f := os.Getenv("GOD_TEST_PIDS"); f != "" {
		// The tests' cleanup checks that every loader process is gone after god.
		if pf, err := os.OpenFile(f, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintln(pf, os.Getpid())
			pf.Close()
		}
	}
	m := many{argv: []string{"sleep", "100000"}}
	if len(os.Args) > 3 {
		m.argv = os.Args[3:]
	}
	if mode := os.Getenv("MANYJOBS_STDERR"); mode != "" {
		m.stderr = []string{mode}
	}
	for i := 1; i <= n; i++ {
		m.jobs = append(m.jobs, fmt.Sprintf("s%05d", i))
	}
	if err := loader.Serve(os.Stdin, os.Stdout, m); err != nil {
		fmt.Fprintln(os.Stderr, "manyjobs:", err)
		os.Exit(1)
	}
}
