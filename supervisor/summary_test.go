package supervisor

import "testing"

// TestSummaryString pins the STATUS= line systemd shows for god.
func TestSummaryString(t *testing.T) {
	for _, c := range []struct {
		m    Summary
		want string
	}{
		{Summary{}, "0 jobs, 0 running"},
		{Summary{Jobs: 1, Running: 1}, "1 job, 1 running"},
		{Summary{Jobs: 12, Running: 11, Failed: 1}, "12 jobs, 11 running, 1 failed"},
		{Summary{Jobs: 5, Running: 1, Degraded: 1, Starting: 1, Stopping: 1, Failed: 1, LoaderErr: 2},
			"5 jobs, 1 running, 1 degraded, 1 starting, 1 stopping, 1 failed, 2 loaders failing"},
		{Summary{Jobs: 3, Stopping: 2, Shutdown: true}, "shutting down: 3 jobs, 0 running, 2 stopping"},
	} {
		if got := c.m.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.m, got, c.want)
		}
	}
}
