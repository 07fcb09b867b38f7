package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSocketOptionsThroughGod gives a job a tcp socket with reuseport and nodelay, an abstract
// unix socket and an abstract seqpacket socket, all opened by god from the listen addresses. The
// job (sockjob serve, watchgod.Listener) answers on each; god's copy of the tcp socket carries
// SO_REUSEPORT, shown by the kernel letting another reuseport socket bind the same port (it
// refuses that unless both sockets have it); status lists the specs with their options.
func TestSocketOptionsThroughGod(t *testing.T) {
	t.Parallel()
	tcp := freePort(t)
	abs := fmt.Sprintf("@watchgod-it-%d-ctl", os.Getpid())
	pkt := fmt.Sprintf("@watchgod-it-%d-pkt", os.Getpid())
	listen := []string{
		"web=tcp://" + tcp + "?backlog=64&reuseport=true&nodelay=true",
		"ctl=unix://" + abs,
		"pkt=unixpacket://" + pkt + "?backlog=8",
	}
	g := newGod(t)
	writeLoader(t, g.dir, "opts", bashLoader{Jobs: map[string]bashJob{
		"sj": sockJob([]string{sockjobBin, "serve", "-names", "web,ctl,pkt"}, listen, []string{"notify"}, nil),
	}})
	g.start()
	st := g.waitState("sj", "run", 10*time.Second)
	if !slices.Equal(st.Sockets, listen) {
		t.Errorf("status sockets %q, want %q", st.Sockets, listen)
	}
	for _, c := range []struct{ network, addr, name string }{{"tcp", tcp, "web"}, {"unix", abs, "ctl"}, {"unixpacket", pkt, "pkt"}} {
		r, err := ask(c.network, c.addr, 10*time.Second)
		if err != nil || answeredBy(r) != st.Processes[0].Pid || r[:len(c.name)] != c.name {
			t.Errorf("%s %s: answer %q err %v, want one from %s of pid %d", c.network, c.addr, r, err, c.name, st.Processes[0].Pid)
		}
	}
	// SO_REUSEPORT on god's socket: a second reuseport socket of the same uid may bind its port.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		t.Fatal(err)
	}
	ap, err := net.ResolveTCPAddr("tcp", tcp)
	if err != nil {
		t.Fatal(err)
	}
	sa := &unix.SockaddrInet4{Port: ap.Port}
	copy(sa.Addr[:], ap.IP.To4())
	if err := unix.Bind(fd, sa); err != nil {
		t.Errorf("bind a reuseport socket beside god's %s: %v (want success: god's socket has SO_REUSEPORT)", tcp, err)
	}
	// An abstract socket has no file, and the job's socket is in the abstract namespace.
	if _, err := os.Lstat(abs[1:]); err == nil {
		t.Errorf("a file %s for an abstract socket", abs[1:])
	}
}

// TestSocketOptionsReload reloads a job whose listen address changes only in options a bound
// socket can still take (backlog, nodelay to keepalive): god keeps the very socket (same inode in
// god's fds, so nothing queued is lost), status shows the new spec, and the kernel has the new
// backlog (ss). A change of a bind-time option (reuseport) on a busy address cannot open a second
// socket: the reload's error names it, and the job keeps serving on the old socket.
func TestSocketOptionsReload(t *testing.T) {
	t.Parallel()
	tcp := freePort(t)
	g := newGod(t)
	loader := func(listen string) bashLoader {
		return bashLoader{Jobs: map[string]bashJob{
			"sj": sockJob([]string{sockjobBin, "serve", "-names", "web"}, []string{listen}, []string{"notify"}, nil),
		}}
	}
	first := "web=tcp://" + tcp + "?backlog=64&nodelay=true"
	writeLoader(t, g.dir, "opts", loader(first))
	g.start()
	g.waitState("sj", "run", 10*time.Second)
	before := socketInodes(t, g.cmd.Process.Pid)

	second := "web=tcp://" + tcp + "?backlog=32&keepalive=true"
	writeLoader(t, g.dir, "opts", loader(second))
	g.mustCLI("reload", "sj")
	st := g.waitState("sj", "run", 10*time.Second)
	if !slices.Equal(st.Sockets, []string{second}) {
		t.Errorf("status sockets after reload %q, want %q", st.Sockets, second)
	}
	after := socketInodes(t, g.cmd.Process.Pid)
	for ino := range after {
		if !before[ino] {
			t.Errorf("god holds a new socket (inode %d) after a reload that changed options in place", ino)
		}
	}
	_, port, _ := net.SplitHostPort(tcp)
	if out, err := exec.Command("ss", "-ltnH", "sport = :"+port).Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) < 3 || f[2] != "32" {
			t.Errorf("ss after reload: %q, want Send-Q (backlog) 32", out)
		}
	}
	if r, err := ask("tcp", tcp, 10*time.Second); err != nil || !strings.HasPrefix(r, "web ") {
		t.Errorf("after reload: answer %q, %v", r, err)
	}

	third := "web=tcp://" + tcp + "?backlog=32&reuseport=true&keepalive=true"
	writeLoader(t, g.dir, "opts", loader(third))
	r := g.cli("reload", "sj")
	st = g.waitState("sj", "run", 10*time.Second)
	if !slices.Equal(st.Sockets, []string{second}) {
		t.Errorf("status sockets after a reload that could not reopen: %q, want the old %q (cli: %d %s)", st.Sockets, second, r.code, r.stdout+r.stderr)
	}
	g.waitLog(10*time.Second, "the socket error", func(rec record) bool {
		return strings.Contains(rec.str("err"), "job sj: socket "+third) && strings.Contains(rec.str("err"), "address already in use")
	})
	if r, err := ask("tcp", tcp, 10*time.Second); err != nil || !strings.HasPrefix(r, "web ") {
		t.Errorf("after the refused reopen: answer %q, %v", r, err)
	}
}
