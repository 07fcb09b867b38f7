package loader

import (
	"context"
	"fmt"
	"time"
)

// Definition is a job's static properties, parsed, with godv1 defaults filled
// in for the properties the loader left undefined.
type Definition struct {
	Name      string
	Exec      []string // empty: the job cannot start
	Env       []string // KEY=VALUE, validated
	Auto      Auto
	Listen    []string // raw "NAME=ADDR" items, names validated and unique
	Instances int      // 1 to 1024
	Ready     Ready
	Reload    Reload
	Restart   RestartPolicy
	Dir       string
	Log       LogFormat
	Watchdog  time.Duration // 0: none
}

// Define asks the loader for every static property of job (exec, env, auto,
// listen, instances, ready, reload, restart, dir, log, watchdog) and parses
// the replies. An unparsable reply is an error naming the job and property;
// it does not break the Client. ctx bounds the whole set of requests.
func (c *Client) Define(ctx context.Context, job string) (Definition, error) {
	d := Definition{Name: job}
	props := []struct {
		name  string
		parse func(Message) error
	}{
		{"exec", func(m Message) (err error) { d.Exec, err = ParseExec(m); return }},
		{"env", func(m Message) (err error) { d.Env, err = ParseEnv(m); return }},
		{"auto", func(m Message) (err error) { d.Auto, err = ParseAuto(m); return }},
		{"listen", func(m Message) (err error) { d.Listen, err = ParseListen(m); return }},
		{"instances", func(m Message) (err error) { d.Instances, err = ParseInstances(m); return }},
		{"ready", func(m Message) (err error) { d.Ready, err = ParseReady(m); return }},
		{"reload", func(m Message) (err error) { d.Reload, err = ParseReload(m); return }},
		{"restart", func(m Message) (err error) { d.Restart, err = ParseRestart(m); return }},
		{"dir", func(m Message) (err error) { d.Dir, err = ParseDir(m); return }},
		{"log", func(m Message) (err error) { d.Log, err = ParseLog(m); return }},
		{"watchdog", func(m Message) (err error) { d.Watchdog, err = ParseWatchdog(m); return }},
	}
	for _, p := range props {
		m, err := c.Ask(ctx, job, p.name)
		if err != nil {
			return Definition{}, err // names the job and property
		}
		if err := p.parse(m); err != nil {
			return Definition{}, fmt.Errorf("loader: job %s: %s: %w", job, p.name, err)
		}
	}
	return d, nil
}
