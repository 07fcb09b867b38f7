package loader

import (
	"fmt"
	"strconv"
)

// Per-connection jobs (systemd's Accept=yes, inetd, s6-tcpserver): god accepts on the job's
// stream socket itself and runs one process of the job per connection.

// DefaultMaxConnections is max-connections when the loader leaves it undefined.
const DefaultMaxConnections = 64

// maxMaxConnections bounds max-connections: each connection is a process of god's.
const maxMaxConnections = 65536

// parseAccept reads ["true"] or ["false"]; [] is false.
func parseAccept(m Message) (bool, error) { return parseFlag("accept", m) }

// parseMaxConnections reads [N], 1 <= N <= maxMaxConnections, in decimal digits; [] is
// DefaultMaxConnections.
func parseMaxConnections(m Message) (int, error) {
	if err := wantLen(m, 0, 1); err != nil {
		return 0, err
	}
	if len(m) == 0 {
		return DefaultMaxConnections, nil
	}
	n, err := strconv.Atoi(m[0])
	if err != nil || !isDigits(m[0]) || n < 1 || n > maxMaxConnections {
		return 0, fmt.Errorf("max-connections %.20q: want a number from 1 to %d", m[0], maxMaxConnections)
	}
	return n, nil
}
