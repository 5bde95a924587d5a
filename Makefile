# slewd: build, test and release targets. See README.md.
# Go 1.26: `go` on PATH, or the toolchain at /usr/local/go.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)

VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Static binaries: no libc, so one build runs on any Linux of its architecture.
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)"

DESTDIR ?=
SBINDIR ?= /usr/local/sbin
BENCHTIME ?= 1s
# Where `make install` puts the integration files (dist/, docs/deploy.md):
# the FHS places for /usr/local (systemd reads units, sysusers.d and
# ntp-units.d there; /etc/systemd/system stays the admin's).
UNITDIR ?= /usr/local/lib/systemd/system
SYSUSERSDIR ?= /usr/local/lib/sysusers.d
NTPUNITSDIR ?= /usr/local/lib/systemd/ntp-units.d
INITDIR ?= /etc/init.d
MANDIR ?= /usr/local/share/man
DOCDIR ?= /usr/local/share/doc/slewd
BASHCOMPDIR ?= /usr/local/share/bash-completion/completions
ZSHCOMPDIR ?= /usr/local/share/zsh/site-functions
LOGROTATEDIR ?= /etc/logrotate.d
DEFAULTSFILE ?= /etc/default/slewd
CONFDIR ?= /etc/slewd
# NTPDATE=yes also installs $(SBINDIR)/ntpdate -> slewd (ntpdate's flags and output, slewing only).
NTPDATE ?= no

.PHONY: scenarios scenarios-ci
.PHONY: all build test test-unit test-units test-kernel test-peers chrony-peers test-alerts promtool conformance-doc bench lint cross size install man completion clean deb test-deb debian-units

all: build

build:
	$(GOBUILD) -o bin/slewd ./cmd/slewd

# The full suite: the README's test command, and what .ci/run runs.
# Add further suites as prerequisites here.
test: lint size test-unit test-units test-deb test-kernel test-peers test-alerts fuzz-ci scenarios-ci

# Every package's tests; the qemu rig and the chrony peers are skipped
# (test-kernel and test-peers run them).
test-unit:
	SLEWD_SKIP_KERNEL=1 SLEWD_SKIP_PEERS=1 $(GO) test ./...

# The real-kernel rig: boots throwaway qemu guests (test/kernel, docs/rig.md),
# prints the conformance table and keeps it in bin/conformance.md. Fails if
# the rig cannot run (no qemu, no kernel): it is never skipped here.
test-kernel:
	@mkdir -p bin
	SLEWD_SKIP_KERNEL= SLEWD_CONFORMANCE_OUT=$(CURDIR)/bin/conformance.md \
		SLEWD_RIG_RUN_OUT=$(CURDIR)/bin/rig-slewd-run.md \
		SLEWD_RIG_FOREIGN_OUT=$(CURDIR)/bin/rig-foreign.md \
		$(GO) test -count=1 -timeout 30m -v ./test/kernel/

# The systemd units: `systemd-analyze verify` on copies pointed at the built
# binary, and the gate drop-in on a stand-in dovecot.service; any warning
# fails. Starts nothing. Needs systemd-analyze (.ci/run installs it).
test-units: build
	dist/verify-units.sh bin/slewd

# Regenerate the man page (dist/slewd.8, checked in) from the CLI's help.
man:
	$(GO) test ./cmd/slewd -run '^TestManPage$$' -count=1 -update-man

# Regenerate the bash and zsh completion (dist/completion, checked in)
# from the CLI's flags.
completion:
	$(GO) test ./cmd/slewd -run '^TestCompletion$$' -count=1 -update-completion

# Refresh docs/conformance.md, docs/rig-slewd-run.md and docs/rig-foreign.md from a rig run.
conformance-doc: test-kernel
	cp bin/conformance.md docs/conformance.md
	cp bin/rig-slewd-run.md docs/rig-slewd-run.md
	cp bin/rig-foreign.md docs/rig-foreign.md

# Every benchmark of the module; figures into docs/benchmarks.md.
bench:
	$(GO) run .ci/benchreport.go -benchtime $(BENCHTIME) -out docs/benchmarks.md ./...

# Issue 15's scenario matrix (initial error × network × fault, in
# simulation; discipline/simulation/matrix): SEEDS seeds per combination on
# two workers, the table into docs/scenarios.md. Fails if any run does.
SEEDS ?= 3
scenarios:
	$(GO) run .ci/scenarios.go -seeds $(SEEDS) -parallel 2 -out docs/scenarios.md

# CI's run of the matrix: one seed, every combination (352 runs, 10-20 s
# on an idle 2-core machine).
scenarios-ci:
	@mkdir -p bin
	$(GO) run .ci/scenarios.go -seeds 1 -parallel 2 -out bin/scenarios.md

# Formatting, and vet on every architecture slewd ships for (unix.Timex
# field types differ on 32-bit arm).
lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet .ci/benchreport.go
	$(GO) vet .ci/scenarios.go
	GOARCH=arm64 $(GO) vet ./...
	GOARCH=arm GOARM=7 $(GO) vet ./...

# Static binaries for small boards.
cross:
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o bin/slewd-linux-arm64 ./cmd/slewd
	GOOS=linux GOARCH=arm GOARM=7 $(GOBUILD) -o bin/slewd-linux-armv7 ./cmd/slewd

# The size budget (docs/operations.md): every static binary (this
# machine's, arm64, armv7) at most 10,000,000 bytes.
SIZE_LIMIT := 10000000
size: build cross
	@for b in bin/slewd bin/slewd-linux-arm64 bin/slewd-linux-armv7; do \
		n=$$(stat -c %s $$b); echo "size: $$b $$n bytes (limit $(SIZE_LIMIT))"; \
		if [ $$n -gt $(SIZE_LIMIT) ]; then echo "size: $$b is over the budget: see docs/operations.md before adding a dependency" >&2; exit 1; fi; \
	done

# The binary, units and drop-ins, init script, man page, completion,
# logrotate, ntp-units.d list and examples; prints what it installed and
# enables nothing (dist/install.sh).
install: build
	BIN=$(CURDIR)/bin/slewd DESTDIR=$(DESTDIR) SBINDIR=$(SBINDIR) UNITDIR=$(UNITDIR) SYSUSERSDIR=$(SYSUSERSDIR) \
		NTPUNITSDIR=$(NTPUNITSDIR) INITDIR=$(INITDIR) MANDIR=$(MANDIR) DOCDIR=$(DOCDIR) \
		BASHCOMPDIR=$(BASHCOMPDIR) ZSHCOMPDIR=$(ZSHCOMPDIR) LOGROTATEDIR=$(LOGROTATEDIR) \
		DEFAULTSFILE=$(DEFAULTSFILE) CONFDIR=$(CONFDIR) NTPDATE=$(NTPDATE) dist/install.sh

clean:
	rm -rf bin

# Real NTP peers (test/peers): Debian's chronyd 4.3 as loopback servers
# (-x, in a user namespace) and chronyd -Q as a reference client. chrony is
# unpacked, never installed; the suite fails if it cannot run.
PEERS_CACHE ?= $(CURDIR)/test/peers/.cache
chrony-peers:
	test/peers/fetch-chrony.sh $(PEERS_CACHE)

test-peers: chrony-peers
	SLEWD_SKIP_PEERS= SLEWD_PEERS_CACHE=$(PEERS_CACHE) $(GO) test -count=1 -v ./test/peers/

# ------------------------------------------------------------ Debian packages
# make deb: bin/deb/slewd_VERSION_ARCH.deb for each of DEB_ARCHS and
# bin/deb/slewd-ntpdate_VERSION_all.deb, with nfpm (pinned in tools/go.mod;
# `go tool` fetches it from the module proxy). See dist/deb/build.sh.
DEB_ARCHS ?= amd64 arm64 armhf
DEB_BUILD ?= $(CURDIR)/bin/deb
DEB_VERSION ?= $(shell dist/deb/version.sh)
DEB_RELEASE ?= 1
DEB_MAINTAINER ?= slewd developers <slewd@users.noreply.github.com>
NFPM ?= $(GO) tool -modfile=$(CURDIR)/tools/go.mod nfpm
deb_goarch_amd64 := GOARCH=amd64
deb_goarch_arm64 := GOARCH=arm64
deb_goarch_armhf := GOARCH=arm GOARM=7

deb:
	rm -rf $(DEB_BUILD)
	$(foreach a,$(DEB_ARCHS),GOOS=linux $(deb_goarch_$(a)) $(GOBUILD) -o $(DEB_BUILD)/$(a)/slewd ./cmd/slewd &&) true
	DEB_BUILD=$(DEB_BUILD) DEB_VERSION=$(DEB_VERSION) DEB_RELEASE=$(DEB_RELEASE) \
		DEB_MAINTAINER="$(DEB_MAINTAINER)" DEB_ARCHS="$(DEB_ARCHS)" NFPM="$(NFPM)" dist/deb/build.sh

# Debian 12's postfix and dovecot-core, downloaded and unpacked (never
# installed), for the mail-unit gating test.
DEBIAN_UNITS_CACHE ?= $(CURDIR)/dist/.cache
debian-units:
	dist/deb/fetch-debian-units.sh $(DEBIAN_UNITS_CACHE)

# The packages, tested: dpkg-deb (contents, conffiles, metadata) for every
# architecture, lintian, an install into a throwaway root with dpkg --root
# (maintainer scripts included, nothing on this machine touched), the
# installed units through systemd-analyze verify and security, and the mail
# daemons' gating against Debian's real postfix and dovecot units.
test-deb: deb debian-units
	dist/deb/test-deb.sh $(DEB_BUILD) $(DEBIAN_UNITS_CACHE)

# The example alert rules (dist/prometheus): promtool check rules and test
# rules, and promtool check metrics on slewd's exposition. promtool comes
# from Debian's prometheus package, unpacked (test/alerts/fetch-promtool.sh),
# never installed: installing it would start a Prometheus server.
PROMTOOL_CACHE ?= $(or $(SLEWD_PROMTOOL_CACHE),$(CURDIR)/test/alerts/.cache)
promtool:
	test/alerts/fetch-promtool.sh $(PROMTOOL_CACHE)

test-alerts: promtool
	SLEWD_REQUIRE_PROMTOOL=1 SLEWD_PROMTOOL_CACHE=$(PROMTOOL_CACHE) $(GO) test -count=1 -v ./test/alerts/
# ------------------------------------------------------------------ fuzzing
# make fuzz runs every Fuzz target of the module for at least FUZZTIME
# seconds each (tools/fuzz.sh: targets found with go test -list, so a new one
# cannot be left out; FUZZ=REGEXP picks some); fuzz-ci, in `make test`, for
# 5 s each. tools/fuzz.sh counts inputs in rounds rather than passing
# -fuzztime a duration, which Go 1.26 can fail with a bare "context deadline
# exceeded" (see there). What a target finds lands in its package's
# testdata/fuzz/NAME, the checked-in corpus that plain `go test` replays.
FUZZTIME ?= 30
.PHONY: fuzz fuzz-ci
fuzz:
	GO=$(GO) tools/fuzz.sh $(FUZZTIME)

fuzz-ci:
	$(MAKE) fuzz FUZZTIME=5
