package loader

import (
	"errors"
	"fmt"
)

// ErrNotGodv1 means the program's first message is not a godv1 handshake (or
// it sent none in time): the file is not a loader, or a broken one.
var ErrNotGodv1 = errors.New("does not speak godv1")

// maxJobName is the longest job name godv1 allows.
const maxJobName = 64

// ValidJobName reports whether s is a godv1 job name: 1 to 64 of
// A-Z a-z 0-9 _ . -. The same rule applies to socket names in listen.
func ValidJobName(s string) bool {
	if len(s) == 0 || len(s) > maxJobName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// parseHandshake checks a loader's first message, ["godv1", JOB...], and
// returns the job names in the loader's order. A first element other than
// "godv1" gives an error wrapping ErrNotGodv1; an invalid or repeated name is
// an error naming it. A loader that defines no job is valid.
func parseHandshake(m Message) ([]string, error) {
	if len(m) == 0 || m[0] != Version {
		first := "nothing"
		if len(m) > 0 {
			first = fmt.Sprintf("%.40q", m[0])
		}
		return nil, fmt.Errorf("%w: handshake starts with %s", ErrNotGodv1, first)
	}
	jobs := make([]string, 0, len(m)-1)
	seen := make(map[string]bool, len(m)-1)
	for _, name := range m[1:] {
		if !ValidJobName(name) {
			return nil, fmt.Errorf("loader: handshake: invalid job name %.80q", name)
		}
		if seen[name] {
			return nil, fmt.Errorf("loader: handshake: job %s named twice", name)
		}
		seen[name] = true
		jobs = append(jobs, name)
	}
	return jobs, nil
}
