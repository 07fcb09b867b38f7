package watchgod

import (
	"os"
	"strconv"
)

// MainPID tells god (MAINPID= on NOTIFY_SOCKET) that this process is now the job's main process.
// A job that replaces itself by a child of its own, as tableflip and nginx-style binary upgrades
// do, calls it in the child before the parent exits: god, the subreaper that inherits the child,
// then follows it instead of counting the parent's exit as the job's. Without NOTIFY_SOCKET it
// does nothing and returns nil.
func MainPID() error { return notify("MAINPID=" + strconv.Itoa(os.Getpid())) }
