package joblog_test

import (
	"fmt"
	"strings"

	"github.com/emielm/watchgod/supervisor/joblog"
)

func ExampleParse_json() {
	level, msg, attrs := joblog.Parse(joblog.FormatJSON,
		`{"time":"2024-05-06T07:08:09Z","level":"warn","msg":"slow request","path":"/api","ms":950,"req":{"id":"r1"}}`)
	fmt.Println(level, msg)
	for _, a := range attrs {
		fmt.Println(a)
	}
	// Output:
	// WARN slow request
	// path=/api
	// ms=950
	// req=[id=r1]
}

func ExampleParse_logfmt() {
	level, msg, attrs := joblog.Parse(joblog.FormatLogfmt, `time=2024-05-06T07:08:09Z level=ERROR msg="open failed" err="no such file"`)
	fmt.Println(level, msg, attrs)
	// Output:
	// ERROR open failed [err=no such file]
}

func ExampleParse_text() {
	// A line that is not valid in its format stays text at level Info.
	level, msg, attrs := joblog.Parse(joblog.FormatJSON, `panic: runtime error: index out of range`)
	fmt.Println(level, msg, attrs == nil)
	// Output:
	// INFO panic: runtime error: index out of range true
}

func ExampleHub() {
	hub := joblog.NewHub(nil, 100) // a nil logger: keep and fan out only
	follow, cancel := hub.Follow([]string{"web"}, 16)
	defer cancel()

	out := strings.NewReader("{\"level\":\"info\",\"msg\":\"listening\"}\n{\"level\":\"error\",\"msg\":\"crashed\"}\n")
	meta := joblog.Line{Job: "web", Generation: 1, Pid: 1234, Stream: joblog.StreamStdout}
	if err := joblog.Relay(out, meta, joblog.FormatJSON, hub.Add); err != nil {
		fmt.Println(err)
	}

	for _, l := range hub.Tail(nil, 10) {
		fmt.Println(l.Seq, l.Job, l.Level, l.Msg)
	}
	fmt.Println("followed:", (<-follow).Msg, "then", (<-follow).Msg)
	// Output:
	// 1 web INFO listening
	// 2 web ERROR crashed
	// followed: listening then crashed
}
