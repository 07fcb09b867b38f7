package integration

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestListenerModes proves watchgod.Listener's three sources with one binary (sockjob serve):
// (a) under god it takes the inherited fds; (b) started by hand with GOD_SOCKET and GOD_JOB it
// fetches god's very sockets over SCM_RIGHTS and accepts connections made to god's address;
// (c) with no god reachable it listens itself on its own definition's address.
func TestListenerModes(t *testing.T) {
	t.Parallel()
	tcp, unixPath := freePort(t), filepath.Join(t.TempDir(), "m.sock")
	g := newGod(t)
	writeLoader(t, g.dir, "modes", bashLoader{Jobs: map[string]bashJob{
		"sj": sockJob([]string{sockjobBin, "serve", "-names", "tcp,unix"},
			[]string{"tcp=tcp://" + tcp, "unix=unix://" + unixPath}, []string{"notify"}, nil),
	}})
	g.start()
	g.waitState("sj", "run", 10*time.Second)
	godSocks := socketInodes(t, g.cmd.Process.Pid)

	// (a) Inherited: the job's sockets are god's (same inodes), received as LISTEN_FDS.
	for _, name := range []string{"tcp", "unix"} {
		line := g.jobLine(0, "sj", "socket "+name+" ", time.Second)
		if field(line, "inherited") != "true" || !godSocks[inode(line)] {
			t.Errorf("(a) under god: %q: want inherited=true and an inode god holds", line)
		}
	}

	// (b) Fetched: a process god did not start asks god for job sj's sockets.
	g.mustCLI("stop", "sj") // from now on only the fetching process accepts on god's sockets
	p := startLineProc(t, plainEnv("GOD_SOCKET="+g.socket, "GOD_JOB=sj"), sockjobBin, "serve", "-names", "tcp,unix")
	for _, name := range []string{"tcp", "unix"} {
		line := p.line(t, "socket "+name+" ", 10*time.Second)
		if field(line, "inherited") != "false" || !godSocks[inode(line)] {
			t.Errorf("(b) fetched from god: %q: want inherited=false and an inode god holds %v", line, godSocks)
		}
	}
	p.line(t, "serving ", 5*time.Second)
	for _, c := range []struct{ network, addr string }{{"tcp", tcp}, {"unix", unixPath}} {
		r, err := ask(c.network, c.addr, 10*time.Second)
		if err != nil || answeredBy(r) != p.cmd.Process.Pid {
			t.Errorf("(b) %s %s: answer %q err %v, want one from the fetching process %d", c.network, c.addr, r, err, p.cmd.Process.Pid)
		}
	}

	// (c) Alone: no god (GOD_SOCKET unset, or naming no socket): the definition's address.
	for _, env := range [][]string{nil, {"GOD_SOCKET=" + filepath.Join(t.TempDir(), "nobody.sock")}} {
		own := freePort(t)
		p := startLineProc(t, plainEnv(append(env, "SOCKJOB_LISTEN=tcp=tcp://"+own)...), sockjobBin, "serve", "-names", "tcp")
		line := p.line(t, "socket tcp ", 10*time.Second)
		if field(line, "addr") != own || field(line, "inherited") != "false" || godSocks[inode(line)] {
			t.Errorf("(c) alone (env %v): %q: want its own socket on %s", env, line, own)
		}
		p.line(t, "serving ", 5*time.Second)
		if r, err := ask("tcp", own, 10*time.Second); err != nil || answeredBy(r) != p.cmd.Process.Pid {
			t.Errorf("(c) alone (env %v): answer %q err %v, want one from pid %d", env, r, err, p.cmd.Process.Pid)
		}
	}
}

// inode is the ino= field of a sockjob "socket" line.
func inode(line string) uint64 {
	n, _ := strconv.ParseUint(field(line, "ino"), 10, 64)
	return n
}
