package main

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/emielm/watchgod/supervisor"
	"github.com/emielm/watchgod/supervisor/control"
)

// god as a service of systemd (Type=notify), or of anything else that sets NOTIFY_SOCKET: god
// tells its own parent READY=1 once it has read its loaders and started the auto jobs,
// RELOADING=1 and READY=1 around rescans and upgrades, STOPPING=1 at shutdown, a STATUS= line
// with the job counts, and WATCHDOG=1 pings when the unit sets WatchdogSec=.
//
// god never unsets NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID: after an upgrade by re-exec the
// new image, same pid, finds them and carries on. Jobs never see them: the supervisor builds
// every job's environment without them and gives jobs god's own NOTIFY_SOCKET instead.
// Without NOTIFY_SOCKET every function here does nothing.

// statusEvery bounds how often god sends STATUS=: a job that flaps must not flood systemd.
const statusEvery = 500 * time.Millisecond

// sdLog is where god reports notifications its parent did not take; runDaemon sets it to god's
// logger before any notification is sent.
var sdLog = slog.New(slog.DiscardHandler)

// sdNotify sends one message to god's parent. A message that cannot be sent is logged, not
// fatal: god supervises the same with or without a service manager listening.
func sdNotify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		sdLog.Warn("sd_notify: parent did not take the message", "state", state, "err", err)
	}
}

// notifyReady tells the service manager that god serves: after start-up, and to end a rescan
// or an upgrade that notifyReloading began.
func notifyReady() { sdNotify(daemon.SdNotifyReady) }

// notifyReloading tells the service manager that god reloads (a rescan, an upgrade) until the
// next notifyReady. MONOTONIC_USEC is what lets `systemctl reload` match this message to the
// reload it asked for; without it systemd waits for its timeout.
func notifyReloading() {
	sdNotify(daemon.SdNotifyReloading + "\n" + daemon.SdNotifyMonotonicUsec())
}

// stoppingOnce keeps STOPPING=1 to one message, whichever path of shutdown comes first.
var stoppingOnce sync.Once

// notifyStopping tells the service manager that god has begun to stop its jobs.
func notifyStopping() { stoppingOnce.Do(func() { sdNotify(daemon.SdNotifyStopping) }) }

// notifyStatus sets the one-line status `systemctl status god` shows.
func notifyStatus(line string) { sdNotify("STATUS=" + line) }

// superviseNotify runs god's side of sd_notify for one supervisor until ctx is done or the
// supervisor ends: READY=1 once the first scan of the loaders has finished, then STATUS= on
// changes, and WATCHDOG=1 pings when the service manager asked for them.
func superviseNotify(ctx context.Context, sup *supervisor.Supervisor, log *slog.Logger) {
	managed := os.Getenv("NOTIFY_SOCKET") != ""
	if managed {
		if wd, err := daemon.SdWatchdogEnabled(false); err != nil {
			log.Warn("sd_notify: bad watchdog settings; not pinging", "err", err)
		} else if wd > 0 {
			go watchdogPings(ctx, sup, wd/2)
		}
	}
	msg, err := sup.WaitLoaded(ctx)
	if err != nil {
		return
	}
	log.Info("loaders read; god ready", "scan", msg)
	if !managed {
		return // nobody to tell: spare the loop a status watcher
	}
	notifyReady()
	sup.WatchSummary(ctx, statusEvery, func(m supervisor.Summary) { notifyStatus(m.String()) })
}

// watchdogPings sends WATCHDOG=1 every interval while the supervisor's loop answers. A loop that
// hangs stops the pings, and systemd then kills and restarts god: that is the watchdog's point.
// The pid check is go-systemd's: with WATCHDOG_PID set to another pid god does not ping.
func watchdogPings(ctx context.Context, sup *supervisor.Supervisor, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, ok := sup.Summary(); !ok {
			return // Run has returned: god is about to exit
		}
		sdNotify(daemon.SdNotifyWatchdog)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// rescanNotified is a rescan as systemd sees a reload: RELOADING=1, the rescan and its loads,
// then READY=1 (also when the rescan failed: god serves on with what it has).
func rescanNotified(ctx context.Context, sup *supervisor.Supervisor) (string, error) {
	notifyReloading()
	defer notifyReady()
	return sup.RescanAndWait(ctx)
}

// notifyingHandler is the supervisor's control handler with the requests that change god's
// service state reported to systemd: `god rescan` (RELOADING=1, READY=1, so that
// ExecReload=god rescan completes a `systemctl reload`) and `god shutdown` (STOPPING=1).
// Embedding keeps every other method of the supervisor, HandleConn (`god fds`) included.
type notifyingHandler struct {
	*supervisor.Supervisor
}

// The control server finds `god fds` through this interface: the wrapper must keep it.
var _ control.ConnHandler = notifyingHandler{}

// Handle wraps the supervisor's Handle for the requests above.
func (h notifyingHandler) Handle(ctx context.Context, peer control.Peer, req control.Request, emit func(control.Response) error) control.Response {
	switch req.Cmd {
	case "rescan":
		notifyReloading()
		defer notifyReady()
	case "shutdown":
		notifyStopping()
	}
	return h.Supervisor.Handle(ctx, peer, req, emit)
}
