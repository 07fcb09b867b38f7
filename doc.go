// Package watchgod lets a Go program carry its own loader: the program
// defines its jobs in an init function, and when god runs it as
// "PROGRAM godv1" it answers god's questions about them instead of running
// main. Run normally, the program is not affected.
//
//	func init() {
//		job := watchgod.Job("backend")
//		job.Auto = true
//		job.Exec = []string{os.Args[0]}
//		job.Check = func() string { return "ok" }
//		watchgod.Init()
//	}
//
// # Values
//
// Every property of a [JobDef] is typed any, as in watchgod v0.1, and is
// turned into the godv1 reply (an array of strings) when god asks for it:
//
//   - nil: [] ("not defined": god uses the default)
//   - string: [s]; "" gives []
//   - []string: as is; []int: each number in decimal (the exit status lists)
//   - bool: ["true"] or ["false"]
//   - int and the other integer types: the decimal number, ["4"]
//   - time.Duration: decimal milliseconds, ["1500"] (a fraction of a
//     millisecond rounds up); for Ready it is ["delay", MS]
//   - syscall.Signal: its name, ["SIGHUP"]; for Reload it is ["signal", NAME]
//   - for Umask, a number (os.FileMode, int, uint32) is written in octal:
//     os.FileMode(0o027) gives ["0027"]
//   - func() string: [f()]; func() []string: f()
//   - func(string) string: [f(arg)]; func(string) []string: f(arg)
//   - func([]string) string: [f(args)]; func([]string) []string: f(args)
//   - func(), func(string), func([]string): called, then []
//
// A func returning "" gives []. "args" are the request's arguments and "arg"
// the first of them ("" when there is none): the pid for Check, Stop and the
// On<State> hooks, and for OnExit the exit status then the pid.
// Funcs run in the loader process, once per request: they must be quick and
// must not depend on state kept between calls (god may restart the loader or
// run several instances of it at any time).
//
// A panic in a func is recovered and answered with [] (["fail"] for Check),
// and a value of another type is answered with []; both are reported on
// stderr, which god logs under the loader's name. While serving godv1, the
// program's stdout and stdin are redirected (to stderr and /dev/null), so that
// a stray fmt.Println in a func cannot corrupt the protocol.
//
// # Jobs that are a function
//
// A job whose ExecFunc is set runs that function in a process of its own:
// unless Exec says otherwise, god runs this same binary with an environment
// variable that makes [Init] call ExecFunc and exit instead of returning.
package watchgod
