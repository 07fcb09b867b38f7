package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/emielm/watchgod/supervisor/control"
)

// snapshotClient asks god for a MetricsSnapshot over its control socket. Scrapes that arrive
// while a request is under way wait for it and share its answer, so god answers at most one
// metrics request at a time, however many scrapers there are.
type snapshotClient struct {
	socket  string
	timeout time.Duration // one request, connect included

	mu  sync.Mutex
	cur *snapshotCall // the request under way, nil when none
}

// snapshotCall is one request to god and its answer, shared by every scrape that waited for it.
// The snapshot is only read once done is closed, so sharing its maps is safe.
type snapshotCall struct {
	done    chan struct{}
	waiters int // scrapes waiting for it; under snapshotClient.mu
	snap    control.MetricsSnapshot
	err     error
}

// snapshot returns god's current snapshot: the answer to the request under way if there is one,
// else to a new one. The error names the socket and says why god did not answer.
func (c *snapshotClient) snapshot() (control.MetricsSnapshot, error) {
	c.mu.Lock()
	call := c.cur
	if call == nil {
		call = &snapshotCall{done: make(chan struct{})}
		c.cur = call
		go c.fetch(call)
	}
	call.waiters++
	c.mu.Unlock()
	<-call.done
	return call.snap, call.err
}

// fetch runs one request and hands its answer to everyone waiting for it.
func (c *snapshotClient) fetch(call *snapshotCall) {
	call.snap, call.err = c.ask()
	c.mu.Lock()
	c.cur = nil
	c.mu.Unlock()
	close(call.done)
}

// ask sends {"v":1,"cmd":"metrics"} and decodes the snapshot of the result. A god too old to know
// the command answers `unknown command "metrics"`, which the error carries.
func (c *snapshotClient) ask() (control.MetricsSnapshot, error) {
	var snap control.MetricsSnapshot
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cl, err := control.Dial(c.socket)
	if err != nil {
		return snap, fmt.Errorf("metrics exporter: %w", err)
	}
	defer cl.Close()
	res, err := cl.Do(ctx, control.Request{Cmd: control.CmdMetrics}, nil)
	if err != nil {
		return snap, fmt.Errorf("metrics exporter: %w", err)
	}
	if !res.OK {
		return snap, fmt.Errorf("metrics exporter: god at %s: %s", c.socket, res.Error)
	}
	if err := json.Unmarshal(res.Metrics, &snap); err != nil {
		return snap, fmt.Errorf("metrics exporter: god at %s sent a bad snapshot: %w", c.socket, err)
	}
	return snap, nil
}
