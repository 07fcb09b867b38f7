// Command sockjob is the job binary of watchgod's socket integration tests. One binary plays
// every role the tests need, chosen by its first argument:
//
//	sockjob serve [flags]   serve the named sockets with watchgod.Listener / PacketConn
//	sockjob systemd         print what go-systemd's activation package sees, then wait
//	sockjob notify [flags] MSG...   print LISTEN_FDNAMES, send each MSG to NOTIFY_SOCKET, then wait
//
// With SOCKJOB_LISTEN set (space-separated NAME=ADDR items) it defines the job "sockjob" with
// those sockets, so that watchgod.Listener can fall back to listening on its own definition
// when no god is reachable.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/emielm/watchgod"
)

func init() {
	if l := os.Getenv("SOCKJOB_LISTEN"); l != "" {
		watchgod.Job("sockjob").Listen = strings.Fields(l)
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: sockjob serve|systemd|http|flood|notify|count [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "systemd":
		err = systemd()
	case "http":
		err = serveHTTP(os.Args[2:])
	case "flood":
		err = flood(os.Args[2:])
	case "notify":
		err = notifySeq(os.Args[2:])
	case "count":
		err = count(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sockjob:", err)
		os.Exit(1)
	}
}

// serve answers every connection and datagram on the named sockets with "NAME pid=P gen=G",
// after printing one "socket NAME ino=I addr=A" line per socket and "serving pid=P".
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	names := fs.String("names", "", "comma-separated socket names to serve")
	ready := fs.Bool("ready", true, "send READY=1 once serving")
	status := fs.String("status", "", "send STATUS= with this text once serving")
	readyWhen := fs.String("ready-when", "", "send READY=1 only once this file exists (waits at most 60 s)")
	watchdogFor := fs.Duration("watchdog-for", -1, "send WATCHDOG=1 for this long, then stop (negative: forever)")
	startDelay := fs.Duration("start-delay", 0, "take this long to start: no READY=1 and no WATCHDOG=1 before")
	if err := fs.Parse(args); err != nil {
		return err
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	reply := func(name string) []byte {
		return fmt.Appendf(nil, "%s pid=%d gen=%s\n", name, os.Getpid(), os.Getenv("GOD_GENERATION"))
	}
	inherited := os.Getenv("LISTEN_FDS") != ""
	for _, name := range strings.FieldsFunc(*names, func(r rune) bool { return r == ',' }) {
		if ln, err := watchgod.Listener(name); err == nil {
			fmt.Printf("socket %s ino=%d addr=%s inherited=%v\n", name, inode(ln), ln.Addr(), inherited)
			go acceptLoop(ln, reply(name))
			continue
		}
		pc, err := watchgod.PacketConn(name)
		if err != nil {
			return err
		}
		fmt.Printf("socket %s ino=%d addr=%s inherited=%v\n", name, inode(pc), pc.LocalAddr(), inherited)
		go echoLoop(pc, reply(name))
	}
	fmt.Printf("serving pid=%d\n", os.Getpid())
	if *status != "" {
		if err := watchgod.Status(*status); err != nil {
			return err
		}
	}
	if *readyWhen != "" {
		waitFile(*readyWhen, 60*time.Second)
	}
	if *startDelay > 0 {
		time.Sleep(*startDelay) // the start-up the test asks for
		fmt.Println("start-up done")
	}
	if *ready {
		if err := watchgod.Ready(); err != nil {
			return err
		}
	}
	if iv := watchgod.WatchdogInterval(); iv > 0 && *watchdogFor != 0 {
		go pingWatchdog(iv/3, *watchdogFor)
	}
	<-stop
	return nil
}

// waitFile returns once path exists, or after max: the test holds readiness back with it.
func waitFile(path string, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			fmt.Println("ready-when: file is there")
			return
		}
		time.Sleep(10 * time.Millisecond) // polling a file the test creates, bounded by max
	}
}

// acceptLoop writes msg to every accepted connection and closes it.
func acceptLoop(ln net.Listener, msg []byte) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(5 * time.Second))
		c.Write(msg)
		c.Close()
	}
}

// echoLoop answers every datagram with msg.
func echoLoop(pc net.PacketConn, msg []byte) {
	buf := make([]byte, 1500)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo(msg, from)
	}
}

// pingWatchdog sends WATCHDOG=1 every every for d (forever when d is negative), then falls
// silent, so the tests can let the watchdog expire.
func pingWatchdog(every, d time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	end := time.Now().Add(d)
	for range t.C {
		if d >= 0 && time.Now().After(end) {
			fmt.Println("watchdog: falling silent")
			return
		}
		watchgod.Watchdog()
	}
}

// inode is the socket's inode number, as /proc/PID/fd shows it ("socket:[INODE]").
func inode(c any) uint64 {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var st syscall.Stat_t
	rc.Control(func(fd uintptr) { syscall.Fstat(int(fd), &st) })
	return st.Ino
}

// activationReport is what `sockjob systemd` prints as one JSON line.
type activationReport struct {
	Pid       int                 `json:"pid"`
	ListenPid string              `json:"listen_pid"`
	Fds       map[string][]int    `json:"fds"`       // name -> fd numbers, from activation.Files
	Listeners map[string][]string `json:"listeners"` // name -> addresses, from ListenersWithNames
}

// systemd reports the inherited sockets as go-systemd's activation package sees them, then waits
// for SIGTERM (so that god keeps it running).
func systemd() error {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	rep := activationReport{Pid: os.Getpid(), ListenPid: os.Getenv("LISTEN_PID"), Fds: map[string][]int{}, Listeners: map[string][]string{}}
	files := activation.Files(false) // keeps the variables for ListenersWithNames
	defer runtime.KeepAlive(files)   // ListenersWithNames closes fds 3..: never let these close again
	for _, f := range files {
		rep.Fds[f.Name()] = append(rep.Fds[f.Name()], rawFd(f))
	}
	lns, err := activation.ListenersWithNames()
	if err != nil {
		return err
	}
	for name, list := range lns {
		for _, ln := range list {
			addr := "<nil>" // a datagram socket: ListenersWithNames has no listener for it
			if ln != nil {
				addr = ln.Addr().String()
			}
			rep.Listeners[name] = append(rep.Listeners[name], addr)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Println("activation " + string(b))
	<-stop
	return nil
}

// serveHTTP serves a tiny HTTP handler on the socket named by its first argument with
// watchgod.ServeHTTP, for the benchmark of inherited against self-opened listeners.
func serveHTTP(args []string) error {
	name := "http"
	if len(args) > 0 {
		name = args[0]
	}
	ln, err := watchgod.Listener(name)
	if err != nil {
		return err
	}
	fmt.Printf("http serving on %s pid=%d\n", ln.Addr(), os.Getpid())
	body := []byte("ok " + strconv.Itoa(os.Getpid()) + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(body) })
	return watchgod.ServeHTTP(&http.Server{Handler: h}, ln)
}

// rawFd is f's fd number, read without f.Fd (which may switch the shared file description to
// blocking mode, for god and every other holder too).
func rawFd(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}

// flood sends -n datagrams to the unixgram socket -to as fast as it can, for at most -max, and
// prints how many it sent: a hostile neighbour of god's notify socket.
func flood(args []string) error {
	fs := flag.NewFlagSet("flood", flag.ContinueOnError)
	to := fs.String("to", "", "socket path")
	n := fs.Int("n", 500000, "datagrams to send")
	maxTime := fs.Duration("max", time.Minute, "give up after this long")
	payload := fs.String("payload", "READY=1", "each datagram's payload")
	fds := fs.Int("fds", 0, "attach this many fds (of /dev/null) to each datagram (SCM_RIGHTS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var oob []byte
	if *fds > 0 {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return err
		}
		defer null.Close()
		rights := make([]int, *fds)
		for i := range rights {
			rights[i] = int(null.Fd())
		}
		oob = syscall.UnixRights(rights...)
	}
	*payload = strings.ReplaceAll(*payload, `\n`, "\n")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"}) // autobind
	if err != nil {
		return err
	}
	defer c.Close()
	addr := &net.UnixAddr{Name: *to, Net: "unixgram"}
	deadline := time.Now().Add(*maxTime)
	sent := 0
	for sent < *n && time.Now().Before(deadline) {
		c.SetWriteDeadline(deadline)
		if _, _, err := c.WriteMsgUnix([]byte(*payload), oob, addr); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			return fmt.Errorf("after %d datagrams: %w", sent, err)
		}
		sent++
	}
	fmt.Printf("sent %d\n", sent)
	return nil
}

// notifySeq prints "fdnames=LISTEN_FDNAMES", then sends each argument (\n written as a
// backslash and n) as one datagram to NOTIFY_SOCKET, in order, from this very process (so god
// knows the sender while it reads them), attaching one fd (of /dev/null) to those that say
// FDSTORE=1; prints "notified" and waits for SIGTERM. With -pipes the fd attached is instead the
// read end of a new pipe whose write end it then closes: a stored fd that hangs up at once.
// With -repeat N it sends them N times, -every apart (the slow start-up a test asks for), and
// then the -last message if one is given.
func notifySeq(args []string) error {
	fs := flag.NewFlagSet("notify", flag.ContinueOnError)
	repeat := fs.Int("repeat", 1, "send the messages this many times")
	every := fs.Duration("every", 0, "pause between rounds")
	last := fs.String("last", "", "a message to send after the last round")
	pipes := fs.Bool("pipes", false, "attach the read end of a pipe whose write end is closed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	msgs := fs.Args()
	fmt.Printf("fdnames=%s\n", os.Getenv("LISTEN_FDNAMES"))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"}) // autobind
	if err != nil {
		return err
	}
	defer c.Close()
	addr := &net.UnixAddr{Name: os.Getenv("NOTIFY_SOCKET"), Net: "unixgram"}
	send := func(m string) error {
		m = strings.ReplaceAll(m, `\n`, "\n")
		var oob []byte
		if strings.Contains(m, "FDSTORE=1") {
			fd := null.Fd()
			if *pipes {
				r, w, err := os.Pipe()
				if err != nil {
					return err
				}
				defer r.Close()
				w.Close() // the read end hangs up: no writer is left
				fd = r.Fd()
			}
			oob = syscall.UnixRights(int(fd))
		}
		_, _, err := c.WriteMsgUnix([]byte(m), oob, addr)
		return err
	}
	for round := range *repeat {
		if round > 0 {
			time.Sleep(*every) // the job's own pace, not a synchronisation
		}
		for _, m := range msgs {
			if err := send(m); err != nil {
				return err
			}
		}
	}
	if *last != "" {
		if err := send(*last); err != nil {
			return err
		}
	}
	fmt.Println("notified")
	<-stop
	return nil
}

// count writes the numbered lines "n=I" to stdout, I from the number in -state (1 when it is
// missing) to -to, as fast as the pipe takes them. Before line K of each -gate K:PATH it waits
// until PATH exists. SIGTERM stops it after a whole line: it writes out what it buffered, puts
// the next number in -state and exits 0, so that the next process goes on from there and every
// number is written exactly once across processes. Past -to it waits for SIGTERM.
func count(args []string) error {
	fs := flag.NewFlagSet("count", flag.ContinueOnError)
	to := fs.Int("to", 1000000, "last number")
	state := fs.String("state", "", "file holding the next number")
	var gates []string
	fs.Func("gate", "K:PATH: wait for PATH before line K", func(s string) error { gates = append(gates, s); return nil })
	if err := fs.Parse(args); err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	next := 1
	if b, err := os.ReadFile(*state); err == nil {
		if next, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("state %s: %w", *state, err)
		}
	}
	wait := map[int]string{}
	for _, g := range gates {
		k, path, ok := strings.Cut(g, ":")
		n, err := strconv.Atoi(k)
		if !ok || err != nil {
			return fmt.Errorf("bad -gate %q", g)
		}
		wait[n] = path
	}
	out := bufio.NewWriterSize(os.Stdout, 32<<10)
	save := func() error {
		if err := out.Flush(); err != nil {
			return err
		}
		tmp := *state + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(next)), 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, *state)
	}
	var line []byte
	for ; next <= *to; next++ {
		if path, ok := wait[next]; ok {
			if err := out.Flush(); err != nil {
				return err
			}
			for {
				if _, err := os.Stat(path); err == nil {
					break
				}
				select {
				case <-term:
					return save()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
		if next%256 == 0 {
			select {
			case <-term:
				return save()
			default:
			}
		}
		line = strconv.AppendInt(append(line[:0], "n="...), int64(next), 10)
		line = append(line, '\n')
		if _, err := out.Write(line); err != nil {
			return err
		}
	}
	if err := save(); err != nil {
		return err
	}
	<-term
	return nil
}
