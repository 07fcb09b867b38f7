package procfs

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"testing"
)

func TestProcessGroup(t *testing.T) {
	pgrp, err := ProcessGroup(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if want := syscall.Getpgrp(); pgrp != want {
		t.Errorf("ProcessGroup(self) = %d, want %d", pgrp, want)
	}
	if _, err := ProcessGroup(0); err == nil {
		t.Error("ProcessGroup(0): no error")
	}
	// Above PID_MAX_LIMIT: never a process.
	if _, err := ProcessGroup(1<<22 + 1); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ProcessGroup(missing) = %v, want ErrNotExist", err)
	}
}

func TestStatPgrp(t *testing.T) {
	tests := []struct {
		stat string
		want int // -1: error
	}{
		{"123 (god) S 1 123 123 0 -1 4194560 ...\n", 123},
		{"77 (a) 1 2 (b) S 1 55 77 0", 55},
		{"77 ()) R 1 9 9", 9},
		{"77 (x y) Z 1 0 0", 0},
		{"77 (x) S 1", -1},
		{"77 x S 1 2 3", -1},
		{"77 (x) S 1 -5 3", -1},
		{"77 (x) S 1 abc 3", -1},
		{"", -1},
	}
	for _, tt := range tests {
		got, err := statPgrp([]byte(tt.stat))
		if tt.want < 0 {
			if err == nil {
				t.Errorf("%q: got %d, want an error", tt.stat, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: got %d, %v; want %d", tt.stat, got, err, tt.want)
		}
	}
}

// FuzzStatPgrp checks that the /proc/PID/stat reader never panics and
// finds the pgrp whatever the process name holds.
func FuzzStatPgrp(f *testing.F) {
	for _, s := range []string{
		"123 (god) S 1 123 123 0 -1 4194560 100 0 0 0\n",
		"77 (a) 1 2 (b) S 1 55 77 0",
		"77 ()) R 1 9 9",
		"", ")", "1 (x) S", "1 (x) S 1 -2 3",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, stat []byte) {
		pgrp, err := statPgrp(stat)
		if err == nil && pgrp < 0 {
			t.Fatalf("%q: negative pgrp %d", stat, pgrp)
		}
		// As a process name, even one with ')' and spaces, it cannot hide the pgrp.
		line := append([]byte("42 ("), stat...)
		line = append(line, ") S 1 4242 42 0"...)
		if got, err := statPgrp(line); err != nil || got != 4242 {
			t.Fatalf("name %q: got %d, %v; want 4242", stat, got, err)
		}
	})
}
