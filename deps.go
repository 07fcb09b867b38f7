package watchgod

import (
	_ "github.com/cloudflare/tableflip"
	_ "github.com/coreos/go-systemd/v22/activation"
	_ "github.com/coreos/go-systemd/v22/daemon"
	_ "github.com/coreos/go-systemd/v22/journal"
	_ "github.com/lmittmann/tint"
	_ "golang.org/x/sys/unix"
)
