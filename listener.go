package watchgod

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/emielm/watchgod/fdpass"
	"github.com/emielm/watchgod/supervisor/control"
)

// The sockets of this process, found once: the first call to Listener, Listeners or PacketConn
// takes what the process inherited (and unsets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, so that
// children do not see them).
var sockets struct {
	once     sync.Once
	files    map[string][]*os.File // inherited or fetched, not yet turned into listeners
	source   string                // "inherited", "god", or "" (none yet)
	mu       sync.Mutex
	given    map[string]any // name -> net.Listener or net.PacketConn already returned
	fetchErr error
}

// Listener returns the listening stream socket called name (a NAME from the job's `listen`). It
// looks in three places, in order:
//
//  1. the sockets the process inherited as fds 3.. with LISTEN_FDS, LISTEN_FDNAMES and a LISTEN_PID
//     equal to its own pid (god's and systemd's socket activation);
//  2. when GOD_SOCKET names a reachable god that defines this job (GOD_JOB, or the job of this
//     binary whose Listen declares name), the job's sockets fetched from god over SCM_RIGHTS;
//  3. when no god is reachable, a socket the process opens itself on the address its own
//     definition declares (Job(...).Listen), so a binary runs alone on a developer's laptop.
//
// Calling it again with the same name returns the same listener. A name declared nowhere is an
// error that says where it looked.
func Listener(name string) (net.Listener, error) {
	v, err := socketNamed(name, false)
	if err != nil {
		return nil, err
	}
	ln, ok := v.(net.Listener)
	if !ok {
		return nil, fmt.Errorf("watchgod: socket %q is a datagram socket: use PacketConn", name)
	}
	return ln, nil
}

// PacketConn is Listener for datagram sockets (udp://, unixgram://).
func PacketConn(name string) (net.PacketConn, error) {
	v, err := socketNamed(name, true)
	if err != nil {
		return nil, err
	}
	pc, ok := v.(net.PacketConn)
	if !ok {
		return nil, fmt.Errorf("watchgod: socket %q is a stream socket: use Listener", name)
	}
	return pc, nil
}

// Listeners returns every stream socket the process has from god or systemd, by name
// (datagram sockets are left for PacketConn). Without inherited or fetched sockets it opens the
// ones its own definition declares.
func Listeners() (map[string]net.Listener, error) {
	loadSockets()
	sockets.mu.Lock()
	names := make([]string, 0, len(sockets.files))
	for n := range sockets.files {
		names = append(names, n)
	}
	for n := range sockets.given {
		names = append(names, n)
	}
	sockets.mu.Unlock()
	if len(names) == 0 {
		for _, spec := range ownSpecs() {
			names = append(names, spec.Name)
		}
	}
	out := map[string]net.Listener{}
	for _, n := range names {
		v, err := socketNamed(n, false)
		if err != nil {
			return nil, err
		}
		if ln, ok := v.(net.Listener); ok {
			out[n] = ln
		}
	}
	return out, nil
}

func loadSockets() {
	sockets.once.Do(func() {
		sockets.files = map[string][]*os.File{}
		sockets.given = map[string]any{}
		if fs := activation.Files(true); len(fs) > 0 {
			for _, f := range fs {
				sockets.files[f.Name()] = append(sockets.files[f.Name()], f)
			}
			sockets.source = "inherited"
			return
		}
		path, job := os.Getenv("GOD_SOCKET"), godJob()
		if path == "" || job == "" {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		names, files, err := control.FetchSockets(ctx, path, job)
		if err != nil {
			sockets.fetchErr = err
			return
		}
		for i, f := range files {
			sockets.files[names[i]] = append(sockets.files[names[i]], f)
		}
		sockets.source = "god"
	})
}

// godJob is the job whose sockets to ask god for: GOD_JOB when god started this process, else
// the first job of this binary that declares sockets.
func godJob() string {
	if j := os.Getenv("GOD_JOB"); j != "" {
		return j
	}
	for _, name := range registered() {
		if len(listenOf(name)) > 0 {
			return name
		}
	}
	return ""
}

// socketNamed turns the named inherited or fetched file into a listener or packet conn, or opens
// the socket itself from the binary's own definition.
func socketNamed(name string, packet bool) (any, error) {
	loadSockets()
	sockets.mu.Lock()
	defer sockets.mu.Unlock()
	if v, ok := sockets.given[name]; ok {
		return v, nil
	}
	if list := sockets.files[name]; len(list) > 0 {
		f := list[0]
		sockets.files[name] = list[1:]
		v, err := fromFile(f, packet)
		f.Close() // net.File* made its own copy
		if err != nil {
			return nil, fmt.Errorf("watchgod: socket %q from %s: %w", name, sockets.source, err)
		}
		sockets.given[name] = v
		return v, nil
	}
	if sockets.source != "" {
		return nil, fmt.Errorf("watchgod: no socket %q among those from %s", name, sockets.source)
	}
	for _, spec := range ownSpecs() {
		if spec.Name != name {
			continue
		}
		f, err := fdpass.Open(spec)
		if err != nil {
			return nil, fmt.Errorf("watchgod: socket %q: %w", name, err)
		}
		v, err := fromFile(f, packet || spec.Network == "udp" || strings.HasPrefix(spec.Network, "udp") || spec.Network == "unixgram")
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("watchgod: socket %q: %w", name, err)
		}
		sockets.given[name] = v
		return v, nil
	}
	where := "no LISTEN_FDS"
	if sockets.fetchErr != nil {
		where += ", god: " + sockets.fetchErr.Error()
	}
	return nil, fmt.Errorf("watchgod: no socket %q (%s, and no job of this binary declares it in Listen)", name, where)
}

// fromFile wraps a socket fd as a listener, or a packet conn for datagram sockets.
func fromFile(f *os.File, packet bool) (any, error) {
	if ln, err := net.FileListener(f); err == nil {
		if ul, ok := ln.(*net.UnixListener); ok {
			// The socket file belongs to god (or to the definition): never unlink it here.
			ul.SetUnlinkOnClose(false)
		}
		return ln, nil
	} else if !packet {
		if pc, perr := net.FilePacketConn(f); perr == nil {
			return pc, nil
		}
		return nil, err
	}
	return net.FilePacketConn(f)
}

// ownSpecs are the sockets this binary's own definitions declare.
func ownSpecs() []fdpass.Spec {
	var out []fdpass.Spec
	for _, job := range registered() {
		for _, item := range listenOf(job) {
			if spec, err := fdpass.ParseSpec(item); err == nil {
				out = append(out, spec)
			}
		}
	}
	return out
}

// listenOf evaluates a registered job's Listen property.
func listenOf(job string) []string {
	return jobSet{}.Answer(job, "listen", nil)
}
