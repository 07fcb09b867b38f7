package main

import (
	"flag"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// hiddenFlags are parsed but not listed in help: --stay-up (the name min-uptime replaced, kept so
// that an upgraded god still parses its argv) and the profiling switches (debugging god itself).
var hiddenFlags = map[string]bool{"stay-up": true, "cpuprofile": true, "memprofile": true, "trace": true, "fork-server": true, "stopprofile": true}

// ignoredFlag marks a flag a command accepts without using it (--socket of `god help` and
// `god completion`, which talk to no god): it is parsed, so a shared command line still works,
// and not listed in the command's help.
const ignoredFlag = "(ignored)"

// printFlags lists fs's flags the way the global help writes them, `--name VALUE` (`-n N` for
// a one-letter flag) and the usage
// beside it, so that every help page of god spells flags alike (flag.PrintDefaults writes
// `-name`). A flag's VALUE is the back-quoted word of its usage, else its type.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		if hiddenFlags[f.Name] || f.Usage == ignoredFlag {
			return
		}
		value, usage := flag.UnquoteUsage(f)
		head := "  --" + f.Name
		if len(f.Name) == 1 {
			head = "  -" + f.Name // -f, -n: spelt as tail's
		}
		if value != "" {
			head += " " + strings.ToUpper(value)
		}
		if def := f.DefValue; def != "" && !isZeroValue(f) {
			usage += fmt.Sprintf(" (default %s)", def)
		}
		fmt.Fprintf(w, "%s\n      %s\n", head, usage)
	})
}

// isZeroValue says whether f's default is its type's zero value, which help does not print.
func isZeroValue(f *flag.Flag) bool {
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	zero, ok := z.Interface().(flag.Value)
	if !ok {
		return false
	}
	return f.DefValue == zero.String()
}
