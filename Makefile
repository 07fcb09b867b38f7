# watchgod: the two commands of the README are `make demo` and `make test`.
GO      ?= go
BIN     := bin
DEMO    := build/god

.PHONY: all build demo test test-long vet fuzz fuzz-short bench soak abuse clean

all: build

# god, its metrics exporter (god --metrics runs bin/god-metrics, found next to bin/god), the
# systemd-unit loader god-units, and the examples, the loaders of the demo, in build/god (god-units
# as build/god/units, reading build/god/units.d). god, god-metrics and god-units are static
# (CGO_ENABLED=0): no libc mapped in god's memory, and they run in a scratch image; user and group
# names (unix socket owner=, group=) are then read from /etc/passwd and /etc/group.
build:
	@mkdir -p $(BIN) $(DEMO)
	CGO_ENABLED=0 $(GO) build -o $(BIN)/god ./cmd/god
	CGO_ENABLED=0 $(GO) build -o $(BIN)/god-metrics ./cmd/god-metrics
	CGO_ENABLED=0 $(GO) build -o $(BIN)/god-units ./cmd/god-units
	$(GO) build -o $(DEMO)/backend ./examples/backend
	@if [ -d examples/tableflip ]; then $(GO) build -o $(DEMO)/tableflip ./examples/tableflip; fi
	cp examples/shell/clock $(DEMO)/clock
	@# the systemd-unit loader and its units (examples/units: the backend as web.service + web.socket);
	@# cp then mv, so that a running loader's binary is replaced, never written into.
	cp $(BIN)/god-units $(DEMO)/.units.new && mv -f $(DEMO)/.units.new $(DEMO)/units
	rm -rf $(DEMO)/units.d && cp -r examples/units $(DEMO)/units.d

# god in the foreground supervising the examples; its control socket is build/god.sock:
#   bin/god status --socket build/god.sock     curl 127.0.0.1:8080     curl 127.0.0.1:8082 (units)
demo: build
	$(BIN)/god --dir $(DEMO) --socket build/god.sock

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt would change:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Every test, with the race detector (the README's test command: under 4 minutes on 2 cores).
# -short leaves out the two long proofs, which CI runs after it (make test-long).
test: vet
	$(GO) test -race -short -count=1 -timeout 15m ./...

# The long proofs that -short leaves out: 60 s of the chaos soak, a million log lines through
# --log-dir across an upgrade and a reload, and 5000 jobs on one god (.ci/run runs them after
# make test).
test-long:
	$(GO) test -race -count=1 -timeout 20m -run '^(TestChaosSoak|TestLogDirMillionLines|TestManyJobs)$$' ./integration/

# A short run of every fuzz target (CI runs it after make test); FUZZTIME=4000000x for a long one.
fuzz-short:
	./scripts/fuzz-short

fuzz:
	FUZZTIME=4000000x ./scripts/fuzz-short

# The benchmark suite: figures are printed, never asserted.
bench:
	./scripts/bench

# The chaos soak: load, random reloads, kills, loader swaps, SIGSTOPs, floods and god upgrades for
# SOAK (default 5m); it fails when a request failed or anything leaked. `make test-long` runs 60 s of it.
SOAK ?= 5m
soak:
	WATCHGOD_SOAK=$(SOAK) $(GO) test -count=1 -run '^TestChaosSoak$$' -v -timeout 30m ./integration/

# The abuse soak: the chaos soak plus a flapping job, a hanging check, binary output, a 20 MB line
# and notify floods from another user, without god upgrades, for ABUSE (default 30m); it fails
# when god's RSS floor in the last minute is over 1.2 x the first minute's. Needs root.
ABUSE ?= 30m
abuse:
	WATCHGOD_SOAK=$(ABUSE) WATCHGOD_SOAK_ABUSE=1 $(GO) test -count=1 -run '^TestChaosSoak$$' -v -timeout 90m ./integration/

clean:
	rm -rf $(BIN) build
