package watchgod

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/emielm/watchgod/internal/testutil"
)

// serveIdle runs ServeHTTP with an idle exit of d on a loopback listener; the channel gets its
// result.
func serveIdle(t testing.TB, d time.Duration, h http.Handler) (string, <-chan error) {
	t.Helper()
	t.Setenv(idleExitEnv, d.String())
	t.Setenv("NOTIFY_SOCKET", "")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ServeHTTP(&http.Server{Handler: h}, ln) }()
	return ln.Addr().String(), done
}

func get(t testing.TB, addr string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServeHTTPIdleExit: with GOD_IDLE_EXIT set, ServeHTTP answers, then returns nil once idle.
func TestServeHTTPIdleExit(t *testing.T) {
	addr, done := serveIdle(t, 100*time.Millisecond, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hi")
	}))
	if got := get(t, addr); got != "hi" {
		t.Fatalf("body %q", got)
	}
	if err := testutil.Receive(t, done, 20*time.Second, "ServeHTTP's return when idle"); err != nil {
		t.Fatalf("ServeHTTP after idle: %v, want nil", err)
	}
}

// TestServeHTTPIdleExitWaitsForBusy: a request that takes longer than the idle time keeps the
// server up: a connection made while it runs is still served.
func TestServeHTTPIdleExitWaitsForBusy(t *testing.T) {
	const idle = 100 * time.Millisecond
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	addr, done := serveIdle(t, idle, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()
	<-entered
	time.Sleep(5 * idle) // lets several idle periods pass while the request is busy
	if got := get(t, addr); got != "ok" {
		t.Fatalf("body %q", got)
	}
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("slow request: %v", err)
	}
	if err := testutil.Receive(t, done, 20*time.Second, "ServeHTTP's return once idle"); err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
}
