package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watchGod returns a channel that is closed when the process pid (god) has exited, so that the
// exporter never outlives god, not even a god killed by SIGKILL. It watches a pidfd: event-driven,
// and immune to pid reuse once opened. The pidfd is opened while god is this process's parent,
// so it names god and no other process; a process started otherwise gets an error. A god that
// re-executes itself (god upgrade) keeps its pid and does not count as exited.
func watchGod(pid int) (<-chan struct{}, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: watch god (pid %d): %w", pid, err)
	}
	if ppid := os.Getppid(); ppid != pid {
		unix.Close(fd)
		return nil, fmt.Errorf("metrics exporter: --pid %d is not this process's parent (%d): god starts the exporter itself", pid, ppid)
	}
	gone := make(chan struct{})
	go func() {
		defer close(gone)
		defer unix.Close(fd)
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			// A pidfd becomes readable when its process exits.
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return gone, nil
}
