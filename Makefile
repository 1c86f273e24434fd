GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/ramd/ramd/internal/version.Version=$(VERSION)

.PHONY: all build install test test-pglock test-unit fuzz demo bench-api bench-failover chaos sim sim-mesh vet fmt clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ramd ./cmd/ramd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ramctl ./cmd/ramctl

# Install the binaries, the systemd unit and the annotated configuration.
# DESTDIR stages the tree (packaging); the unit's ExecStart and config path
# follow BINDIR and SYSCONFDIR. An existing ramd.toml is never overwritten.
# systemd reads units from /usr/local/lib/systemd/system and
# /usr/lib/systemd/system, so UNITDIR follows PREFIX.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/ramd
	install -m 0755 $(BIN)/ramd $(BIN)/ramctl $(DESTDIR)$(BINDIR)/
	sed -e 's|/usr/local/bin/ramd|$(BINDIR)/ramd|' -e 's|/etc/ramd/|$(SYSCONFDIR)/ramd/|' \
		deploy/systemd/ramd.service > $(DESTDIR)$(UNITDIR)/ramd.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/ramd.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/ramd/ramd.toml ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/ramd/ramd.toml"; \
	else \
		install -m 0644 configs/ramd.toml $(DESTDIR)$(SYSCONFDIR)/ramd/ramd.toml; \
	fi

# Every test, the real-PostgreSQL ones included. Tests run package by
# package (-p 1) so real clusters do not fight for the two cores. Then the
# shared failover suite once more on the pglock election backend.
test: build vet
	$(GO) test -count=1 -p 1 -timeout 14m ./...
	RAMD_E2E_ELECTION=pglock $(GO) test -count=1 -timeout 10m -run '$(PGLOCK_E2E)' ./e2e

# The shared failover suite on the pglock election backend (each test
# with its own coordination server): about 2 minutes on 2 cores in
# `make test`. Reclaim runs there once (TestFailoverLagReclaim); the
# second reclaim story, whose decision code is shared with the quorum
# backend (election/shared.go), runs on pglock only in `make test-pglock`
# (about 3 minutes), to keep `make test` near 15 minutes.
PGLOCK_E2E ?= TestFailoverKillPrimary|TestFailoverLagReclaim|TestPostgresCrashRestartsInPlace|TestReplicaLossNoFailover|TestReplicaLossQuorum|TestKillPrimaryDaemonOnly|TestFrozenPrimaryDaemon|TestPartitionPrimary$$|TestSwitchover$$
test-pglock: build
	RAMD_E2E_ELECTION=pglock $(GO) test -count=1 -timeout 10m -run '$(PGLOCK_E2E)|TestFailoverReclaim' ./e2e

test-unit:
	$(GO) test -count=1 -short ./...

# Every fuzz target for FUZZTIME each (about 5 minutes in all at 20s),
# one after another. Their seed corpora (and any failure found, which
# go test saves under testdata/fuzz) run in every plain `go test`.
# FUZZPAR caps the fuzzing workers (the default leaves a core free).
# Keep FUZZTIME at 10s or more: go test first replays the corpus cached
# from earlier runs, and a shorter budget can end during that replay
# ("context deadline exceeded") without having fuzzed anything.
FUZZTIME ?= 20s
FUZZPAR ?= 1
FUZZ_TARGETS := \
	./api:FuzzHandler ./api:FuzzParseLag ./api:FuzzSwitchoverBody \
	./api:FuzzFailoverBody ./api:FuzzMaintenanceBody ./api:FuzzInstallKeyBody \
	./configs:FuzzParse ./configs:FuzzEnv \
	./mesh:FuzzDecodeMessage \
	./election:FuzzDecodeMessage ./election:FuzzDecodeCommand \
	./election/storage:FuzzDecodeRecord ./election/storage:FuzzReplaySegment
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t#*:}; \
		echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -parallel $(FUZZPAR) $$pkg; \
	done

# Regenerate docs/configuration.md from configs/types.go's field comments
# (configs/cmd/gendoc's test fails while it is stale).
.PHONY: docs
docs:
	$(GO) run ./configs/cmd/gendoc -o docs/configuration.md

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

demo: build
	./$(BIN)/ramd demo

bench-api: build
	$(GO) run ./e2e/cmd/benchapi -ramd $(BIN)/ramd

# Unplanned failover: TRIALS fresh 3-node clusters per synchronous mode
# (SYNC, default off and quorum), kill -9 of the primary. ELECTION=pglock
# measures the pglock backend (NODES=2 for two-node clusters).
TRIALS ?= 10
SYNC ?= off,quorum
ELECTION ?= quorum
NODES ?= 3
bench-failover: build
	$(GO) run ./e2e/cmd/benchfailover -ramd $(BIN)/ramd -trials $(TRIALS) -sync $(SYNC) -election $(ELECTION) -nodes $(NODES)

# Jepsen-style chaos (e2e/chaos): a real cluster, each node in its own
# network namespace, HAProxy in front, random faults from SEED for
# DURATION; NODES 3 or 5, SYNC off/quorum/strict, ELECTION quorum/pglock
# (pglock starts a coordination PostgreSQL), FAULTS a comma list or
# all. Needs root. Reports under CHAOS_OUT/<time>-n<nodes>-<mode>-seed<seed>/
# (summary.txt, timeline.txt, writes.svg, schedule.txt, ops.csv, logs/);
# docs/benchmarks.md, "Chaos", explains them.
DURATION ?= 5m
SEED ?= $(shell date +%s)
FAULTS ?= all
CHAOS_OUT ?= chaos-results
chaos: build
	$(GO) run ./e2e/cmd/chaos -ramd $(BIN)/ramd -duration $(DURATION) -seed $(SEED) -nodes $(NODES) \
		-sync $(if $(filter command line,$(origin SYNC)),$(SYNC),quorum) -election $(ELECTION) -faults $(FAULTS) -out $(CHAOS_OUT)

# The cluster simulator over 10,000 seeds (both election backends).
sim: build
	./$(BIN)/ramd sim run -nodes 5 -seeds 10000
	./$(BIN)/ramd sim run -nodes 5 -seeds 10000 -election pglock

# The mesh simulator: real memberlists on an in-memory network with 5%
# packet loss (see docs/benchmarks.md, "Mesh simulator").
MESH_NODES ?= 1000
MESH_LOSS ?= 0.05
sim-mesh: build
	./$(BIN)/ramd sim mesh --nodes $(MESH_NODES) --loss $(MESH_LOSS)

clean:
	rm -rf $(BIN)
