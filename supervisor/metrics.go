package supervisor

import (
	"sync/atomic"
	"time"
)

// metrics counts what god does; exported later through --metrics.
type metrics struct {
	checks     atomic.Int64
	checkNanos atomic.Int64
}

func newMetrics() *metrics { return &metrics{} }

func (m *metrics) checkLatency(d time.Duration) {
	m.checks.Add(1)
	m.checkNanos.Add(int64(d))
}
