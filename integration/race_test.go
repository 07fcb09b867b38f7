//go:build race

package integration

// raceEnabled builds god with the race detector too, so that the end-to-end runs also look for
// data races inside the daemon.
const raceEnabled = true
