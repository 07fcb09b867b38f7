package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"sync"
)

// profiler writes god's own profiles for the hidden debug flags `--cpuprofile FILE` (CPU from start
// to exit), `--stopprofile FILE` (CPU from the shutdown signal to exit: what stopping thousands of
// jobs costs, without the start in it) and `--memprofile FILE` (the live heap when shutdown
// begins, while every job still runs). It exists to find where god spends time and memory with
// many jobs (see integration/bench_start_test.go); all are off by default and cost nothing then.
type profiler struct {
	mu      sync.Mutex // startStop runs on the signal goroutine, stop on main's
	cpu     *os.File
	trace   *os.File
	mem     string
	stopCPU string // --stopprofile, until startStop starts it
}

// startProfiles starts the CPU profile if cpuFile is set and remembers memFile for writeHeap and
// stopFile for startStop. Go runs one CPU profile at a time: cpuFile and stopFile exclude each
// other.
func startProfiles(cpuFile, memFile, traceFile, stopFile string) (*profiler, error) {
	if cpuFile != "" && stopFile != "" {
		return nil, fmt.Errorf("--cpuprofile and --stopprofile: one CPU profile at a time")
	}
	p := &profiler{mem: memFile, stopCPU: stopFile}
	if traceFile != "" {
		// An execution trace (`go tool trace`): where god's goroutines wait, which a CPU profile
		// does not show (a start of thousands of jobs that is slow while god is mostly idle).
		f, err := os.Create(traceFile)
		if err != nil {
			return nil, fmt.Errorf("--trace: %w", err)
		}
		if err := trace.Start(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("--trace %s: %w", traceFile, err)
		}
		p.trace = f
	}
	if cpuFile == "" {
		return p, nil
	}
	f, err := os.Create(cpuFile)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile %s: %w", cpuFile, err)
	}
	p.cpu = f
	return p, nil
}

// writeHeap writes the heap profile once, after a GC so that it shows live memory only. It is
// called when shutdown begins; later calls do nothing.
func (p *profiler) writeHeap() error {
	if p.mem == "" {
		return nil
	}
	name := p.mem
	p.mem = ""
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--memprofile: %w", err)
	}
	runtime.GC()
	werr := pprof.Lookup("heap").WriteTo(f, 0)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("--memprofile %s: %w", name, werr)
	}
	return nil
}

// startStop starts the --stopprofile CPU profile when shutdown begins; later calls do nothing.
func (p *profiler) startStop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopCPU == "" {
		return nil
	}
	name := p.stopCPU
	p.stopCPU = ""
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("--stopprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("--stopprofile %s: %w", name, err)
	}
	p.cpu = f
	return nil
}

// stop ends the CPU profile and the trace and flushes them to their files.
func (p *profiler) stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopCPU = "" // a shutdown signal from now on starts no profile
	if p.trace != nil {
		trace.Stop()
		p.trace.Close()
		p.trace = nil
	}
	if p.cpu == nil {
		return nil
	}
	pprof.StopCPUProfile()
	err := p.cpu.Close()
	p.cpu = nil
	return err
}
