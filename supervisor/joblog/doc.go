// Package joblog is god's logging: its own [slog.Logger] ([NewLogger]), the
// lines that jobs write on stdout and stderr ([Mux], [Splitter], [Relay],
// [Parse]), and a [Hub] that keeps the recent lines of every job for
// `god logs` and fans new lines out to followers for `god logs -f`.
//
// A job's output flows pipe -> Mux (one goroutine, one epoll set, one read
// buffer for every pipe) -> Splitter (the unfinished line of each pipe) ->
// Hub.AddHeldLines, the lines of one read at once -> (ring, followers, god's logger, and
// with `god --log-dir` a [Files] buffer that its own goroutine writes to DIR/JOB/current),
// with one Hub.Flush per round of the Mux, which also wakes the files' writer. Relay is the same splitting on an io.Reader, a goroutine per
// stream. Every stage does bounded work per line: a Splitter cuts lines longer
// than [MaxLine], Parse is linear in the line, Add never waits for a follower,
// and the Mux reads at most one buffer of a pipe per round.
//
// Files by concept: splitter.go (bytes to lines), mux.go (many pipes, one
// goroutine, pause and hand-over), relay.go (one reader), format.go, json.go,
// logfmt.go and level.go (Parse), hub.go, ring.go and follow.go (the Hub),
// logger.go, output.go and journal.go (god's own logger), files.go (the log files) and
// clean.go (escaping for terminals, shared by `god logs` and the files).
package joblog
