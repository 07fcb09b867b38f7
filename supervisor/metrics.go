package supervisor

import (
	"sync/atomic"
	"time"
)

// metrics counts what god does; exported later through --metrics.
type metrics struct {
	checks      atomic.Int64
	checkNanos  atomic.Int64
	reloads     atomic.Int64
	reloadFails atomic.Int64
	reloadNanos atomic.Int64
}

func newMetrics() *metrics { return &metrics{} }

func (m *metrics) checkLatency(d time.Duration) {
	m.checks.Add(1)
	m.checkNanos.Add(int64(d))
}

func (m *metrics) reloaded(d time.Duration, ok bool) {
	m.reloads.Add(1)
	m.reloadNanos.Add(int64(d))
	if !ok {
		m.reloadFails.Add(1)
	}
}
