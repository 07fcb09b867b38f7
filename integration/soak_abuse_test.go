package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The abuse soak (`make abuse`, WATCHGOD_SOAK_ABUSE=1): the chaos soak with what a hostile or
// broken neighbourhood adds, run for long enough to see whether god's memory creeps. Beside the
// chaos it runs a job that fails at once for ever (flapping), a job whose check hangs past the
// check timeout, a job that writes binary output, a chatty burst with a 20 MB line, and floods of
// notify datagrams from another user. god is not upgraded in this mode: an upgrade starts a fresh
// image and would hide a leak. The judgement: the floor of god's RSS in the last minute is within
// 20 % of the floor in the first minute (floors, not samples: the Go heap breathes between
// collections).

// soakAbuse says whether the soak runs in abuse mode.
func soakAbuse() bool { return os.Getenv("WATCHGOD_SOAK_ABUSE") != "" }

// abuseLoader defines the misfits of the abuse soak. Each is its own loader file for hangcheck,
// whose hanging check ties up a loader instance.
func abuseLoaders(dir string) map[string]bashLoader {
	return map[string]bashLoader{
		"flappers": {Jobs: map[string]bashJob{
			"flapper": {Exec: shJob(`echo flapping; exit 1`), Auto: autoTrue},
			"binary":  {Exec: shJob(`head -c 262144 /dev/urandom; sleep 5; exit 0`), Auto: autoTrue},
		}},
		"hangers": {Jobs: map[string]bashJob{
			"hangcheck": {Exec: sleeper, Auto: autoTrue, Check: "sleep 15; " + checkOK("1000")},
		}},
	}
}

// abuseJobs are the misfits' names, stopped before the leak judgement.
var abuseJobs = []string{"flapper", "binary", "hangcheck"}

// notifyFlood sends datagrams to god's notify socket from uid 65534 (another user), the way a
// hostile neighbour would: they must cost god nothing lasting.
func (c *chaos) notifyFlood() error {
	pid := c.jobPid("backend")
	if pid == 0 {
		return nil
	}
	sock := envValue(pid, "NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	cmd := exec.Command(sockjobBin, "flood", "-to", sock, "-n", "50000", "-max", "20s")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("notify flood: %v: %s", err, out)
	}
	return nil
}

// rssSampler samples god's RSS every 10 s, for the abuse judgement.
type rssSampler struct {
	mu      sync.Mutex
	start   time.Time
	samples []rssSample
	stop    chan struct{}
	done    chan struct{}
}

type rssSample struct {
	at    time.Duration // since start
	rssKB int
}

// sampleRSS starts sampling the RSS of whatever process pid() names at the time.
func sampleRSS(pid func() int) *rssSampler {
	s := &rssSampler{start: time.Now(), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			if st, ok := readProc(pid()); ok {
				s.mu.Lock()
				s.samples = append(s.samples, rssSample{time.Since(s.start), st.rssKB})
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// floors ends the sampling and returns the lowest RSS of each whole minute.
func (s *rssSampler) floors() []int {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, smp := range s.samples {
		m := int(smp.at / time.Minute)
		for len(out) <= m {
			out = append(out, 0)
		}
		if out[m] == 0 || smp.rssKB < out[m] {
			out[m] = smp.rssKB
		}
	}
	return slices.DeleteFunc(out, func(v int) bool { return v == 0 })
}

// openForOthers lets another user reach files under path's directory (traverse only), as a job
// of another user would need to reach god's notify socket.
func openForOthers(path string) error {
	for d := filepath.Dir(path); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if err := os.Chmod(d, fi.Mode().Perm()|0o711); err != nil {
			return err
		}
	}
	return nil
}

// abuseVerdict judges the RSS floors: the last within 20 % of the first.
func abuseVerdict(floors []int) (string, bool) {
	parts := make([]string, len(floors))
	for i, f := range floors {
		parts[i] = strconv.Itoa(f / 1024)
	}
	msg := "god's RSS floor per minute (MiB): " + strings.Join(parts, " ")
	if len(floors) < 2 {
		return msg + " (too short to judge)", true
	}
	first, last := floors[0], floors[len(floors)-1]
	return msg, float64(last) <= 1.2*float64(first)
}
