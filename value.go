package watchgod

import (
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/emielm/watchgod/loader"
)

// reply turns the value of a JobDef property into a godv1 reply, calling it
// with the request's args if it is a func. The rules are in the package
// documentation; a value of any other type is an error.
func reply(v any, args []string) ([]string, error) {
	arg := ""
	if len(args) > 0 {
		arg = args[0]
	}
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return one(v), nil
	case []string:
		return v, nil
	case []int:
		out := make([]string, len(v))
		for i, n := range v {
			out[i] = strconv.Itoa(n)
		}
		return out, nil
	case bool:
		return []string{strconv.FormatBool(v)}, nil
	case int:
		return []string{strconv.Itoa(v)}, nil
	case int32:
		return []string{strconv.FormatInt(int64(v), 10)}, nil
	case int64:
		return []string{strconv.FormatInt(v, 10)}, nil
	case uint:
		return []string{strconv.FormatUint(uint64(v), 10)}, nil
	case uint32:
		return []string{strconv.FormatUint(uint64(v), 10)}, nil
	case uint64:
		return []string{strconv.FormatUint(v, 10)}, nil
	case time.Duration:
		return []string{loader.FormatMS(v)}, nil
	case syscall.Signal:
		return []string{loader.SignalName(v)}, nil
	case func() string:
		return one(v()), nil
	case func() []string:
		return v(), nil
	case func(string) string:
		return one(v(arg)), nil
	case func(string) []string:
		return v(arg), nil
	case func([]string) string:
		return one(v(args)), nil
	case func([]string) []string:
		return v(args), nil
	case func():
		v()
		return nil, nil
	case func(string):
		v(arg)
		return nil, nil
	case func([]string):
		v(args)
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported value of type %T", v)
}

// one is the reply holding s, or [] for "".
func one(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
