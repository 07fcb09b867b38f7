// Package integration holds god's end-to-end tests: they build the god binary and the examples,
// run the daemon on a temporary loader directory with its own control socket, and drive it
// through its CLI, its log, signals and the loader files themselves, with real processes only.
//
// Run them with `go test -race ./integration/`. They need bash, sh and sleep; the test of refused
// peers runs only as root.
package integration
