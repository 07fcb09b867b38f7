package loader

import (
	"fmt"
	"strconv"
	"strings"
)

// The "cgroup" property: resource limits of a job process's cgroup (cgroup v2 interface files),
// which god writes into the cgroup it creates for each job process before the process starts
// (god's cgroup mode). Only the files below are accepted, each at most once, with values in a
// small, strict syntax: a loader's typo must fail its definition, not reach the kernel.

// CgroupLimit is one item of "cgroup": the interface file and the value god writes into it.
type CgroupLimit struct {
	File  string // "memory.max", "pids.max", "cpu.max", ...
	Value string // as the kernel reads it: "536870912", "max", "50000 100000", "100"
}

// cgroupPeriod is the period god writes with cpu.max, in microseconds (the kernel's default):
// a percentage of one CPU is a quota of that many thousandths of it.
const cgroupPeriod = 100000

// Bounds of the values, from the kernel's own: pids.max up to PID_MAX_LIMIT, cpu.weight
// 1..10000, cpu.max a quota of at least 1 ms per period (1%) and, here, of 1000 CPUs at most.
const (
	maxCgroupPids    = 4194304
	maxCgroupWeight  = 10000
	maxCgroupPercent = 100000
)

// cgroupFiles maps each accepted file to the parser of its value.
var cgroupFiles = map[string]func(string) (string, error){
	"memory.max":      parseCgroupSize,
	"memory.high":     parseCgroupSize,
	"memory.low":      parseCgroupSize,
	"memory.min":      parseCgroupSize,
	"memory.swap.max": parseCgroupSize,
	"pids.max":        parseCgroupPids,
	"cpu.max":         parseCgroupCPUMax,
	"cpu.weight":      parseCgroupWeight,
}

// Controller is the cgroup controller the file belongs to ("memory" for memory.swap.max): the one
// god must enable in the parent's cgroup.subtree_control.
func (l CgroupLimit) Controller() string {
	c, _, _ := strings.Cut(l.File, ".")
	return c
}

// String gives the item back in the property's syntax (a size with the largest suffix that
// divides it, cpu.max in percent), which parses to l again: "memory.max=512M".
func (l CgroupLimit) String() string {
	v := l.Value
	if quota, _, ok := strings.Cut(v, " "); ok && l.File == "cpu.max" {
		n, _ := strconv.ParseUint(quota, 10, 64)
		v = strconv.FormatUint(n*100/cgroupPeriod, 10) + "%"
	} else if n, err := strconv.ParseUint(v, 10, 64); err == nil && n > 0 && strings.HasPrefix(l.File, "memory.") {
		for _, u := range []byte("TGMK") {
			if sh := cgroupUnits[u]; n%(1<<sh) == 0 {
				v = strconv.FormatUint(n>>sh, 10) + string(u)
				break
			}
		}
	}
	return l.File + "=" + v
}

// parseCgroupLimits reads ["FILE=VALUE", ...]; [] gives nil (no limits: the job runs without
// any, and needs no cgroup mode).
func parseCgroupLimits(m Message) ([]CgroupLimit, error) {
	if len(m) == 0 {
		return nil, nil
	}
	out := make([]CgroupLimit, 0, len(m))
	seen := make(map[string]bool, len(m))
	for _, item := range m {
		l, err := ParseCgroupLimit(item)
		if err != nil {
			return nil, err
		}
		if seen[l.File] {
			return nil, fmt.Errorf("cgroup %s given twice", l.File)
		}
		seen[l.File] = true
		out = append(out, l)
	}
	return out, nil
}

// ParseCgroupLimit reads one "FILE=VALUE" item of "cgroup": memory.max, memory.high, memory.low,
// memory.min and memory.swap.max take a size (bytes, or a number with K, M, G or T: powers of
// 1024) or max; pids.max a number or max; cpu.max a percentage of one CPU ("50%", "200%") or max;
// cpu.weight 1 to 10000.
func ParseCgroupLimit(item string) (CgroupLimit, error) {
	file, val, ok := strings.Cut(item, "=")
	if !ok {
		return CgroupLimit{}, fmt.Errorf("cgroup %.80q is not FILE=VALUE", item)
	}
	parse, ok := cgroupFiles[file]
	if !ok {
		return CgroupLimit{}, fmt.Errorf("cgroup %.80q: unknown file %.30q (want memory.max, memory.high, memory.low, memory.min, memory.swap.max, pids.max, cpu.max or cpu.weight)", item, file)
	}
	v, err := parse(val)
	if err != nil {
		return CgroupLimit{}, fmt.Errorf("cgroup %.80q: %w", item, err)
	}
	return CgroupLimit{File: file, Value: v}, nil
}

// cgroupUnits are the size suffixes, powers of 1024 as systemd's MemoryMax= reads them.
var cgroupUnits = map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40}

// parseCgroupSize reads "max" or a number of bytes with an optional K, M, G or T suffix.
func parseCgroupSize(s string) (string, error) {
	if s == "max" {
		return s, nil
	}
	digits, shift := s, uint(0)
	if n := len(s); n > 0 {
		if sh, ok := cgroupUnits[s[n-1]]; ok {
			digits, shift = s[:n-1], sh
		}
	}
	v, err := parseDigits(digits, 1<<63-1)
	if err != nil || v > (1<<63-1)>>shift {
		return "", fmt.Errorf("size %.30q: want bytes, a number with K, M, G or T, or max", s)
	}
	return strconv.FormatUint(v<<shift, 10), nil
}

// parseCgroupPids reads "max" or 1 to 4194304 processes.
func parseCgroupPids(s string) (string, error) {
	if s == "max" {
		return s, nil
	}
	v, err := parseDigits(s, maxCgroupPids)
	if err != nil || v == 0 {
		return "", fmt.Errorf("pids %.30q: want 1 to %d or max", s, maxCgroupPids)
	}
	return strconv.FormatUint(v, 10), nil
}

// parseCgroupCPUMax reads "max" or "N%" of one CPU (1 to 100000), written as "QUOTA PERIOD".
func parseCgroupCPUMax(s string) (string, error) {
	if s == "max" {
		return s, nil
	}
	pct, ok := strings.CutSuffix(s, "%")
	v, err := parseDigits(pct, maxCgroupPercent)
	if !ok || err != nil || v == 0 {
		return "", fmt.Errorf("cpu %.30q: want a percentage of one CPU, 1%% to %d%% (50%%, 200%%), or max", s, maxCgroupPercent)
	}
	return strconv.FormatUint(v*cgroupPeriod/100, 10) + " " + strconv.Itoa(cgroupPeriod), nil
}

// parseCgroupWeight reads 1 to 10000.
func parseCgroupWeight(s string) (string, error) {
	v, err := parseDigits(s, maxCgroupWeight)
	if err != nil || v == 0 {
		return "", fmt.Errorf("weight %.30q: want 1 to %d", s, maxCgroupWeight)
	}
	return strconv.FormatUint(v, 10), nil
}

// parseDigits reads a plain decimal number (no sign, no blank, at most 19 digits) up to limit.
func parseDigits(s string, limit uint64) (uint64, error) {
	if s == "" || len(s) > 19 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a number: %.30q", s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v > limit {
		return 0, fmt.Errorf("out of range: %.30q", s)
	}
	return v, nil
}
