package integration

import (
	"fmt"
	"net"
	"os"
	"slices"
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
