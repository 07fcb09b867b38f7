package loader

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSignal is the highest Linux signal number (SIGRTMAX).
const maxSignal = 64

// ParseSignal reads a signal as loaders write it: a name with or without the
// SIG prefix, in any case ("SIGTERM", "term"), or its number ("15", 1 to 64).
func ParseSignal(s string) (syscall.Signal, error) {
	if s != "" && s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxSignal {
			return 0, fmt.Errorf("loader: signal %.20q: not a number from 1 to %d", s, maxSignal)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("loader: unknown signal %.20q", s)
}

// SignalName gives the name ParseSignal reads back: "SIGTERM", or the decimal
// number for a signal without a name (real-time signals).
func SignalName(sig syscall.Signal) string {
	if name := unix.SignalName(sig); name != "" {
		return name
	}
	return strconv.Itoa(int(sig))
}
