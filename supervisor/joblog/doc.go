// Package joblog is god's logging: its own [slog.Logger] ([NewLogger]), the
// lines that jobs write on stdout and stderr ([Relay], [Parse]), and a [Hub]
// that keeps the recent lines of every job for `god logs` and fans new lines
// out to followers for `god logs -f`.
//
// A job's output flows Relay -> Hub.Add -> (ring, followers, god's logger).
// Every stage does bounded work per line: Relay splits lines longer than
// [MaxLine], Parse is linear in the line, and Add never waits for a follower.
package joblog
