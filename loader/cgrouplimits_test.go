package loader

import (
	"reflect"
	"strings"
	"testing"
)

// TestParseCgroupLimits: the accepted files and values, what they are written as, and what is
// refused, with an error quoting the culprit.
func TestParseCgroupLimits(t *testing.T) {
	got, err := parseCgroupLimits(Message{"memory.max=512M", "memory.high=400M", "memory.swap.max=0",
		"pids.max=100", "cpu.max=50%", "cpu.weight=100", "memory.low=1G", "memory.min=4096"})
	if err != nil {
		t.Fatal(err)
	}
	want := []CgroupLimit{
		{"memory.max", "536870912"}, {"memory.high", "419430400"}, {"memory.swap.max", "0"},
		{"pids.max", "100"}, {"cpu.max", "50000 100000"}, {"cpu.weight", "100"},
		{"memory.low", "1073741824"}, {"memory.min", "4096"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	for item, want := range map[string]CgroupLimit{
		"memory.max=max":   {"memory.max", "max"},
		"pids.max=max":     {"pids.max", "max"},
		"cpu.max=max":      {"cpu.max", "max"},
		"cpu.max=250%":     {"cpu.max", "250000 100000"},
		"cpu.max=1%":       {"cpu.max", "1000 100000"},
		"memory.high=2T":   {"memory.high", "2199023255552"},
		"memory.max=3K":    {"memory.max", "3072"},
		"cpu.weight=1":     {"cpu.weight", "1"},
		"cpu.weight=10000": {"cpu.weight", "10000"},
	} {
		l, err := ParseCgroupLimit(item)
		if err != nil || l != want {
			t.Errorf("ParseCgroupLimit(%q) = %+v, %v; want %+v", item, l, err, want)
		}
		if l.Controller() != strings.SplitN(want.File, ".", 2)[0] {
			t.Errorf("%q: controller %q", item, l.Controller())
		}
	}
	for item, culprit := range map[string]string{
		"memory.max":                      "FILE=VALUE",
		"memory.maximum=1":                "unknown file",
		"io.max=1":                        "unknown file",
		"memory.max=":                     "size",
		"memory.max=512MB":                "size",
		"memory.max=512m":                 "size",
		"memory.max=-1":                   "size",
		"memory.max= 1":                   "size",
		"memory.max=infinity":             "size",
		"memory.max=9999999999999T":       "size",
		"memory.max=99999999999999999999": "size",
		"pids.max=0":                      "pids",
		"pids.max=4194305":                "pids",
		"pids.max=1K":                     "pids",
		"cpu.max=50":                      "cpu",
		"cpu.max=0%":                      "cpu",
		"cpu.max=12.5%":                   "cpu",
		"cpu.max=50000 100000":            "cpu",
		"cpu.max=100001%":                 "cpu",
		"cpu.weight=0":                    "weight",
		"cpu.weight=10001":                "weight",
		"cpu.weight=max":                  "weight",
	} {
		_, err := ParseCgroupLimit(item)
		if err == nil || !strings.Contains(err.Error(), culprit) {
			t.Errorf("ParseCgroupLimit(%q) = %v, want an error about %s", item, err, culprit)
		}
	}
	if _, err := parseCgroupLimits(Message{"pids.max=10", "pids.max=20"}); err == nil || !strings.Contains(err.Error(), "pids.max given twice") {
		t.Errorf("a file twice: %v", err)
	}
	for item, want := range map[string]string{"memory.max=512M": "memory.max=512M", "memory.high=1048576K": "memory.high=1G",
		"memory.low=1000": "memory.low=1000", "memory.swap.max=0": "memory.swap.max=0", "cpu.max=50%": "cpu.max=50%",
		"pids.max=1024": "pids.max=1024", "memory.max=max": "memory.max=max"} {
		if l, err := ParseCgroupLimit(item); err != nil || l.String() != want {
			t.Errorf("ParseCgroupLimit(%q).String() = %q, %v; want %q", item, l.String(), err, want)
		}
	}
	if l, err := parseCgroupLimits(Message{}); l != nil || err != nil {
		t.Errorf("[] = %v, %v; want nil", l, err)
	}
}

// FuzzParseCgroupLimits: whatever a loader answers for "cgroup", an accepted item is a known
// file, once, with a value the kernel reads (digits, max, or "QUOTA PERIOD"), and it prints back
// to itself.
func FuzzParseCgroupLimits(f *testing.F) {
	for _, s := range []string{"", "memory.max=512M", "cpu.max=50%", "pids.max=max", "cpu.weight=100",
		"memory.swap.max=0|memory.swap.max=1", "cpu.max=100000%", "memory.high=8589934591G", "x=1", "cpu.max=%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := parseCgroupLimits(split(s))
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, l := range list {
			if cgroupFiles[l.File] == nil || seen[l.File] {
				t.Fatalf("parseCgroupLimits(%q) accepted %+v", s, l)
			}
			seen[l.File] = true
			if strings.Trim(l.Value, "0123456789") != "" && l.Value != "max" &&
				!(l.File == "cpu.max" && strings.HasSuffix(l.Value, " 100000")) {
				t.Fatalf("parseCgroupLimits(%q): value %q", s, l.Value)
			}
			back, err := ParseCgroupLimit(l.String())
			if err != nil || back != l {
				t.Fatalf("ParseCgroupLimit(%q) = %+v, %v; want %+v", l.String(), back, err, l)
			}
		}
	})
}
