module github.com/emielm/watchgod

go 1.26.0

require (
	github.com/cloudflare/tableflip v1.2.3
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/lmittmann/tint v1.2.1
	golang.org/x/sys v0.50.0
)
