package control

import "testing"

func TestSuggest(t *testing.T) {
	names := []string{"backend", "worker", "clock"}
	for in, want := range map[string]string{
		"bakend":  ` (did you mean "backend"?)`,
		"wroker":  ` (did you mean "worker"?)`,
		"zzzzzzz": "",
		"clock":   "",
	} {
		if in == "clock" {
			if got := Suggest(in, nil); got != want {
				t.Errorf("Suggest(%q, none) = %q", in, got)
			}
			continue
		}
		if got := Suggest(in, names); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
