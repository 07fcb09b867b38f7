package control

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// Peer is the verified identity of a client, read from the kernel
// (SO_PEERCRED) when it connected; a client cannot forge it.
type Peer struct{ Pid, UID, GID int }

// String formats the peer for logs and errors.
func (p Peer) String() string {
	return fmt.Sprintf("pid %d uid %d gid %d", p.Pid, p.UID, p.GID)
}

// peerOf reads the credentials the kernel recorded for the other end of conn
// when it called connect(2).
func peerOf(conn *net.UnixConn) (Peer, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	err = raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = credErr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("peer credentials: %w", err)
	}
	return Peer{Pid: int(cred.Pid), UID: int(cred.Uid), GID: int(cred.Gid)}, nil
}

// allowed says whether peer may control this god: the same user, or root.
func allowed(peer Peer) bool {
	return peer.UID == 0 || peer.UID == os.Geteuid()
}
