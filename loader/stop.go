package loader

import (
	"fmt"
	"syscall"
	"time"
)

// Stop is the reply to "stop": how god stops one process of a job.
type Stop struct {
	// Signal is sent to the process group; 0 means the loader stopped the
	// job itself and god only waits.
	Signal syscall.Signal
	// Timeout is how long god waits before SIGKILL.
	Timeout time.Duration
}

// DefaultStop is what [] means, and what god uses when a loader cannot say: SIGTERM, then
// SIGKILL after 5 s.
var DefaultStop = Stop{Signal: syscall.SIGTERM, Timeout: 5 * time.Second}

// ParseStop reads [MS] (the loader stopped the job itself: kill after MS),
// [SIGNAL, MS] or [SIGNAL] (kill after 5000 ms). [] gives SIGTERM and 5 s.
// A lone element made of digits is MS, as in v0.1; otherwise it is a signal.
func ParseStop(m Message) (Stop, error) {
	switch len(m) {
	case 0:
		return DefaultStop, nil
	case 1:
		if isDigits(m[0]) {
			d, err := parseMS(m[0])
			if err != nil {
				return Stop{}, err
			}
			return Stop{Timeout: d}, nil
		}
		sig, err := ParseSignal(m[0])
		if err != nil {
			return Stop{}, err
		}
		return Stop{Signal: sig, Timeout: DefaultStop.Timeout}, nil
	case 2:
		sig, err := ParseSignal(m[0])
		if err != nil {
			return Stop{}, err
		}
		d, err := parseMS(m[1])
		if err != nil {
			return Stop{}, err
		}
		return Stop{Signal: sig, Timeout: d}, nil
	}
	return Stop{}, fmt.Errorf("stop reply %.80q: want [MS], [SIGNAL] or [SIGNAL, MS]", []string(m))
}

// isDigits reports whether s is a non-empty run of decimal digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
