package supervisor

import "github.com/emielm/watchgod/internal/jobstate"

// Backoff is the restart timing god applies to a job that does not set its own (see
// jobstate.Backoff): availability first for processes that served, exponential back-off for quick
// failures, a cool-down for jobs that failed.
type Backoff = jobstate.Backoff
