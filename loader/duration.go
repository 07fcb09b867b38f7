package loader

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// maxDuration bounds every duration a loader sends: anything longer is a bug.
const maxDuration = 24 * time.Hour

// parseMS reads a duration written in decimal milliseconds ("1500").
// Negative, non-decimal and absurd (over 24 h) values are errors.
func parseMS(s string) (time.Duration, error) {
	if s == "" {
		return 0, errors.New("empty duration: want decimal milliseconds")
	}
	if s[0] == '-' {
		return 0, fmt.Errorf("negative duration %.20q ms", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("duration %.20q: want decimal milliseconds", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > maxDuration.Milliseconds() {
		return 0, fmt.Errorf("duration %.20q ms: longer than %v", s, maxDuration)
	}
	return time.Duration(n) * time.Millisecond, nil
}

// FormatMS writes d as godv1 decimal milliseconds, rounding a fraction of a
// millisecond up so that a positive duration never becomes "0".
func FormatMS(d time.Duration) string {
	ms := d / time.Millisecond
	if d%time.Millisecond > 0 {
		ms++
	}
	return strconv.FormatInt(int64(ms), 10)
}
