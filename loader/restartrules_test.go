package loader

import (
	"reflect"
	"syscall"
	"testing"
	"time"
)

func TestParseRestartRules(t *testing.T) {
	ms := func(d time.Duration) *time.Duration { return &d }
	n := func(v int) *int { return &v }
	for _, tc := range []struct {
		prop  string
		reply Message
		want  any // nil pointer for [], or an error when wantErr
		bad   bool
	}{
		{"restart-delay", Message{}, (*time.Duration)(nil), false},
		{"restart-delay", Message{"250"}, ms(250 * time.Millisecond), false},
		{"restart-delay", Message{"0"}, ms(0), false},
		{"restart-delay", Message{"-1"}, nil, true},
		{"restart-delay", Message{"1s"}, nil, true},
		{"restart-delay", Message{"1", "2"}, nil, true},
		{"cool-down", Message{"0"}, ms(0), false},
		{"restart-limit", Message{}, (*int)(nil), false},
		{"restart-limit", Message{"0"}, n(0), false},
		{"restart-limit", Message{"7"}, n(7), false},
		{"restart-limit", Message{"-1"}, nil, true},
		{"restart-limit", Message{"+3"}, nil, true},
		{"restart-limit", Message{"1000001"}, nil, true},
		{"success-exit-status", Message{}, []int(nil), false},
		{"success-exit-status", Message{"0", "75", "SIGTERM", "hup"}, []int{0, 75, 256 + int(syscall.SIGTERM), 256 + int(syscall.SIGHUP)}, false},
		{"success-exit-status", Message{"256"}, nil, true},
		{"success-exit-status", Message{"SIGNOPE"}, nil, true},
		{"success-exit-status", Message{""}, nil, true},
		{"restart-prevent-exit-status", Message{"15"}, []int{15}, false},
		{"restart-prevent-exit-status", make(Message, 65), nil, true},
	} {
		var got any
		var err error
		switch tc.prop {
		case "restart-delay", "cool-down":
			got, err = parseOptionalMS(tc.reply)
		case "restart-limit":
			got, err = parseRestartLimit(tc.reply)
		default:
			got, err = parseExitStatuses(tc.reply)
		}
		if tc.bad {
			if err == nil {
				t.Errorf("%s %q: accepted as %v", tc.prop, tc.reply, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s %q = %v, %v; want %v", tc.prop, tc.reply, got, err, tc.want)
		}
	}
}

func TestExitStatusMatches(t *testing.T) {
	list := []int{75, 256 + int(syscall.SIGTERM)}
	if !ExitStatusMatches(list, true, 75, 0) || !ExitStatusMatches(list, false, 0, int(syscall.SIGTERM)) {
		t.Error("listed statuses do not match")
	}
	if ExitStatusMatches(list, true, 15, 0) || ExitStatusMatches(list, false, 0, 75-0) {
		t.Error("an exit code matched a signal or the other way round")
	}
	if formatExitStatus(75) != "75" || formatExitStatus(256+int(syscall.SIGTERM)) != "SIGTERM" {
		t.Error("formatExitStatus")
	}
}
