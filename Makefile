# goscache: a drop-in replacement for Postfix's scache(8).
#
#   make demo    build, start goscache standalone, cache a real TCP connection, find it back
#   make test    everything a merge needs: gofmt, go vet, golangci-lint, go test -race, the package checks, the compat suite
#   make deb     bin/goscache_<version>_<arch>.deb (cmd/goscache/deb/build.sh)
#   make soak    an hour of a server's life, compressed (SOAK=10m by default): docs/soak.md
#   make bench-e2e  mail through real Postfix: no cache, scache, goscache (docs/BENCHMARKS.md)
#
GO        ?= go
FUZZTIME  ?= 30s
FUZZEXECS ?= 10000000
BIN       := bin
PKGS      := ./...
DAEMON_DIR ?= $(shell postconf -h daemon_directory 2>/dev/null || echo /usr/lib/postfix/sbin)
export PATH := $(PATH):/usr/local/go/bin
# The version (the first entry of cmd/goscache/deb/changelog) and the git
# commit, stamped into every command (cmd/internal/buildinfo).
BUILDINFO := github.com/goscache/goscache/cmd/internal/buildinfo
LDFLAGS   := -X $(BUILDINFO).version=$(shell sh cmd/goscache/deb/version.sh) -X $(BUILDINFO).revision=$(shell sh cmd/goscache/deb/version.sh -revision)

.PHONY: all build test setup check fmt vet lint race allocs unit cover fuzz fuzz-long bench install demo compat compat-docker soak bench-compare bench-e2e clean deb deb-check man-check

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

# test is what CI runs (.ci/run): the merge checks plus the compatibility
# suite against real Postfix, natively and in Docker. setup comes first so
# that the unit tests which compare with the real Postfix binaries (postconf
# defaults, the real scache's answers) run instead of skipping.
#
# The Docker matrix's slow part that needs no Go (the engine, debootstrap of
# the base images, Postfix's layer of each image: archive downloads, mostly)
# runs in the background while check, deb-check and compat run, and is
# waited for before compat-docker (compat-tests/docker.sh --prepare; its log
# is bin/compat-prepare.log).
test: setup
	@mkdir -p $(BIN); sh compat-tests/docker.sh --prepare >$(BIN)/compat-prepare.log 2>&1 & prep=$$!; \
	rc=0; $(MAKE) --no-print-directory check deb-check compat || rc=$$?; \
	if ! wait $$prep; then echo "== compat-docker --prepare failed:"; cat $(BIN)/compat-prepare.log; exit 1; fi; \
	echo "== compat-docker --prepare:"; cat $(BIN)/compat-prepare.log; \
	[ $$rc = 0 ] || exit $$rc; \
	$(MAKE) --no-print-directory compat-docker

# setup installs Debian's postfix package when it is missing (root only),
# and the tools of deb-check and the metrics tests (lintian, man-db,
# prometheus for promtool, curl).
setup:
	@sh compat-tests/setup.sh
	@sh cmd/goscache/deb/setup-tools.sh

# deb builds the Debian package with dpkg-deb on a staged tree; the control
# files and maintainer scripts are in cmd/goscache/deb/.
DEB_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
deb:
	@DEB_ARCH=$(DEB_ARCH) sh cmd/goscache/deb/build.sh $(BIN)

# deb-check builds the package twice and fails unless the two are
# byte-identical, on any lintian error or warning not overridden with its
# reason, on binaries that do not report the package's version, on a
# missing documentation file, or on any warning of man(1) on the manual
# pages (cmd/goscache/deb/check.sh).
deb-check: man-check
	@sh cmd/goscache/deb/check.sh $(BIN)

# man-check renders the manual pages as man(1) does and fails on warnings.
man-check:
	@for p in docs/man/*.[18]; do \
	  err=$$(MANWIDTH=80 man --warnings -l "$$p" 2>&1 >/dev/null); \
	  if [ -n "$$err" ]; then echo "$$p:"; echo "$$err"; exit 1; fi; \
	done; echo "man-check: docs/man/*.[18] render without warnings"

check: fmt vet lint race allocs

fmt:
	@out=$$(gofmt -l . | grep -v '^vendor/'); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# lint runs golangci-lint with .golangci.yml (staticcheck, unused, errcheck,
# ineffassign, govet and a few more; the compat-tagged files included) and
# fails on any finding. The pinned version is built from the Go module proxy
# on first use (a few minutes of CPU on a fresh module cache), then cached.
# Runs on one machine wait for each other (golangci-lint's lock) instead of
# failing.
GOLANGCI_LINT_VERSION ?= v2.15.0
GOLANGCI_LINT ?= $(GO) run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)
lint:
	$(GOLANGCI_LINT) run --allow-serial-runners ./...

race:
	$(GO) test -race -count=1 $(PKGS)

# allocs runs the zero-allocation tests, which the race detector's own
# allocations make skip under race.
allocs:
	$(GO) test -count=1 -run 'Allocs' ./attr/... ./scache/... ./cmd/...

unit:
	$(GO) test -count=1 $(PKGS)

cover:
	$(GO) test -count=1 -coverprofile=$(BIN)/cover.out ./attr/... ./scache/... ./mastercompat/... ./cmd/goscache/startupparams/...
	$(GO) tool cover -func=$(BIN)/cover.out | tail -1

# fuzz runs every fuzz target, one at a time, for FUZZTIME each. A run that
# fails without writing a reproducer under testdata/fuzz/ is Go's fuzztime
# deadline race (go.dev/issue/75804, fixed in Go 1.27), not a finding: it is
# reported and the next target runs. A written reproducer fails the target.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; before=$$(ls $$dir/testdata/fuzz/$$t 2>/dev/null | wc -l); \
	    if ! $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; then \
	      after=$$(ls $$dir/testdata/fuzz/$$t 2>/dev/null | wc -l); \
	      if [ "$$after" -gt "$$before" ]; then echo "== $$t: reproducer written under $$dir/testdata/fuzz/$$t"; exit 1; fi; \
	      echo "== $$t: failed without a reproducer (Go fuzztime deadline race), not a finding"; \
	    fi; \
	  done; done

# fuzz-long runs every fuzz target for FUZZEXECS executions (10 million by
# default), one at a time and niced, and writes the figures to
# bin/fuzz-long/results.md (scripts/fuzz-long.sh; name targets with
# FUZZTARGETS="FuzzServer FuzzExpand"). The last run's figures are in
# docs/contributing.md. Hours on a busy machine.
fuzz-long:
	FUZZEXECS=$(FUZZEXECS) ./scripts/fuzz-long.sh $(FUZZTARGETS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./attr/... ./scache/...

# bench-compare (root; a few minutes) runs goscache, Postfix's own scache and
# the floor side by side under a private master(8) and regenerates
# docs/BENCHMARKS.md. Knobs: see compat-tests/bench/bench-compare.sh.
bench-compare:
	./compat-tests/bench/bench-compare.sh

# bench-e2e (root; 15-30 minutes) delivers the same mail through real
# Postfix three ways, no connection cache, Postfix's scache and goscache, to
# sinks that answer after a WAN round trip (some over STARTTLS, one closing
# idle connections), in interleaved rounds, writes docs/bench/e2e.json and
# regenerates docs/BENCHMARKS.md (compat-tests/bench_e2e_test.go; knobs
# BENCH_E2E_MSGS, _ROUNDS, _RTT, _DESTS, _PROCS, _PORT there). Not part of
# make test: it is a benchmark.
BENCH_E2E_ENV ?=
bench-e2e:
	@sh compat-tests/setup.sh
	BENCH_E2E=1 $(BENCH_E2E_ENV) $(GO) test -tags compat -count=1 -timeout 120m -run '^TestBenchE2E$$' -v ./compat-tests/
	$(GO) run ./cmd/benchplot -dir docs/bench -out docs/BENCHMARKS.md -svg docs/bench/throughput.svg -notes docs/bench/notes.md

# install puts goscache next to Postfix's own daemons (master.cf's command
# field is relative to daemon_directory), scachectl, when it builds, into
# /usr/local/bin (BIN_DIR) and the manual pages into /usr/local/share/man
# (MAN_DIR); DAEMON_DIR overrides daemon_directory. It changes
# no Postfix configuration: see docs/operator.md.
MAN_DIR ?= /usr/local/share/man
BIN_DIR ?= /usr/local/bin
install:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/goscache ./cmd/goscache
	install -m 0755 $(BIN)/goscache $(DAEMON_DIR)/goscache
	@echo "installed $(DAEMON_DIR)/goscache"
	install -d $(MAN_DIR)/man8 $(MAN_DIR)/man1
	install -m 0644 docs/man/goscache.8 $(MAN_DIR)/man8/goscache.8
	install -m 0644 docs/man/scachectl.1 $(MAN_DIR)/man1/scachectl.1
	@echo "installed $(MAN_DIR)/man8/goscache.8 and $(MAN_DIR)/man1/scachectl.1"
	@if [ -d cmd/scachectl ] && $(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/scachectl ./cmd/scachectl 2>/dev/null; then \
	  install -m 0755 $(BIN)/scachectl $(BIN_DIR)/scachectl && echo "installed $(BIN_DIR)/scachectl"; \
	else echo "scachectl not built: skipped"; fi
	@echo ""
	@echo "Switch Postfix to goscache in one of two ways (docs/operator.md):"
	@echo "  1. replace the scache daemon (keeps the service name, socket and log tag postfix/scache):"
	@echo "       postconf -F 'scache/unix/command = goscache'"
	@echo "  2. or run goscache as its own service and point smtp(8)/lmtp(8) at it:"
	@echo "       postconf -M 'goscache/unix = goscache unix - - y - 1 goscache'"
	@echo "       postconf -e 'connection_cache_service_name = goscache'"
	@echo "  then: postfix check && postfix reload"
	@echo "Switch back: postconf -F 'scache/unix/command = scache'"
	@echo "         or: postconf -e 'connection_cache_service_name = scache'; postconf -MX goscache/unix"

# demo starts goscache standalone on a temporary socket, caches a real TCP
# connection in it (cmd/goscache-demo), finds it back, then stops it.
demo: build
	@set -e; dir=$$(mktemp -d); trap 'rm -rf "$$dir"' EXIT; \
	echo "== starting $(BIN)/goscache -listen unix:$$dir/scache -ttl-limit 60s -v"; \
	$(BIN)/goscache -listen unix:$$dir/scache -ttl-limit 60s -v -log $$dir/goscache.log & pid=$$!; \
	status=0; $(BIN)/goscache-demo -socket $$dir/scache -scachectl $(BIN)/scachectl || status=$$?; \
	kill -TERM $$pid; wait $$pid || true; \
	echo; echo "== goscache log"; cat $$dir/goscache.log; exit $$status

# compat runs the compatibility suite against real Postfix natively (root;
# installs Debian's postfix when missing) and prints the side-by-side table.
COMPAT_TABLE ?= $(BIN)/compat-table.txt
compat:
	@sh compat-tests/setup.sh
	@mkdir -p $(BIN); rm -f $(COMPAT_TABLE)
	@COMPAT_TABLE=$(abspath $(COMPAT_TABLE)) $(GO) test -tags compat -count=1 -timeout 10m ./compat-tests/...; rc=$$?; \
	  if [ -s $(COMPAT_TABLE) ]; then echo "== compat: real scache vs goscache"; cat $(COMPAT_TABLE); fi; exit $$rc

# compat-docker runs the same suite, with the startup-parameter and replay
# tests, in one container per Debian release (bullseye, bookworm, trixie, sid:
# Postfix 3.5, 3.7, 3.10, 3.11) at once, and rewrites docs/compat-matrix.md
# (compat-tests/docker.sh; see docs/compat.md).
compat-docker:
	@sh compat-tests/docker.sh

# soak (root; Docker) runs real Postfix master(8) twice at once, with
# Postfix's scache and with goscache, in a Debian container, for SOAK, with
# the same relay-like mail into both while reloads, SIGKILLs of the cache,
# stop/start, max_idle exits, package upgrades and downgrades (goscache's
# side) and descriptor squeezes fire at seeded random times; then it checks
# that every message arrived exactly once, nothing stayed queued, no warning
# is unexplained and the cache daemons did not grow, and writes docs/soak.md
# and docs/soak/ (compat-tests/soak_test.go). SOAK_SEED repeats a run's
# schedule; SOAK=1h is the long run. make test runs a 2-minute soak beside
# the Docker matrix (compat-tests/docker.sh, COMPAT_SOAK).
SOAK ?= 10m
soak:
	@SOAK=$(SOAK) sh compat-tests/docker.sh --soak

clean:
	rm -rf $(BIN)
