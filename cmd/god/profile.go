package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
)

// profiler writes god's own profiles for the hidden debug flags `--cpuprofile FILE` (CPU from start
// to exit) and `--memprofile FILE` (the live heap when shutdown begins, while every job still
// runs). It exists to find where god spends time and memory with many jobs (see
// integration/bench_start_test.go); both are off by default and cost nothing then.
type profiler struct {
	cpu   *os.File
	trace *os.File
	mem   string
}

// startProfiles starts the CPU profile if cpuFile is set and remembers memFile for writeHeap.
func startProfiles(cpuFile, memFile, traceFile string) (*profiler, error) {
	p := &profiler{mem: memFile}
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

// stop ends the CPU profile and the trace and flushes them to their files.
func (p *profiler) stop() error {
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
