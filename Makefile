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
# Where `make install` puts the integration files (dist/, docs/deploy.md).
UNITDIR ?= /etc/systemd/system
SYSUSERSDIR ?= /etc/sysusers.d
INITDIR ?= /etc/init.d
MANDIR ?= /usr/local/share/man
DOCDIR ?= /usr/local/share/doc/slewd
DEFAULTSFILE ?= /etc/default/slewd
CONFDIR ?= /etc/slewd
BASHCOMPDIR ?= /usr/local/share/bash-completion/completions
ZSHCOMPDIR ?= /usr/local/share/zsh/site-functions
# NTPDATE=yes also installs $(SBINDIR)/ntpdate -> slewd (ntpdate's flags and output, slewing only).
NTPDATE ?= no

.PHONY: all build test test-unit test-units test-kernel test-peers chrony-peers conformance-doc bench lint cross install man completion clean

all: build

build:
	$(GOBUILD) -o bin/slewd ./cmd/slewd

# The full suite: the README's test command, and what .ci/run runs.
# Add further suites as prerequisites here.
test: lint cross test-unit test-units test-kernel test-peers

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

# Refresh docs/conformance.md and docs/rig-slewd-run.md from a rig run.
conformance-doc: test-kernel
	cp bin/conformance.md docs/conformance.md
	cp bin/rig-slewd-run.md docs/rig-slewd-run.md

# Every benchmark of the module; figures into docs/benchmarks.md.
bench:
	$(GO) run .ci/benchreport.go -benchtime $(BENCHTIME) -out docs/benchmarks.md ./...

# Formatting, and vet on every architecture slewd ships for (unix.Timex
# field types differ on 32-bit arm).
lint:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (gofmt -w):"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet .ci/benchreport.go
	GOARCH=arm64 $(GO) vet ./...
	GOARCH=arm GOARM=7 $(GO) vet ./...

# Static binaries for small boards.
cross:
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o bin/slewd-linux-arm64 ./cmd/slewd
	GOOS=linux GOARCH=arm GOARM=7 $(GOBUILD) -o bin/slewd-linux-armv7 ./cmd/slewd

install: build
	install -D -m 0755 bin/slewd $(DESTDIR)$(SBINDIR)/slewd
	# systemd units, SysV init script, man page, examples (cron job, the
	# dovecot/postfix gate drop-in); units and scripts call $(SBINDIR)/slewd.
	# Nothing is enabled or started: see docs/deploy.md.
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(INITDIR) $(DESTDIR)$(MANDIR)/man8 \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(SYSUSERSDIR)
	for f in slewd.service slewd-boot.service slewd-wait.service; do \
		sed 's|/usr/sbin/slewd|$(SBINDIR)/slewd|g' dist/systemd/$$f >$(DESTDIR)$(UNITDIR)/$$f && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$f || exit 1; done
	sed 's|/usr/sbin/slewd|$(SBINDIR)/slewd|g' dist/sysvinit/slewd >$(DESTDIR)$(INITDIR)/slewd
	chmod 0755 $(DESTDIR)$(INITDIR)/slewd
	sed 's|/usr/sbin/slewd|$(SBINDIR)/slewd|g' dist/cron/slewd-sync >$(DESTDIR)$(DOCDIR)/examples/slewd-sync
	chmod 0755 $(DESTDIR)$(DOCDIR)/examples/slewd-sync
	install -m 0644 dist/systemd/slewd-gate.conf $(DESTDIR)$(DOCDIR)/examples/slewd-gate.conf
	install -m 0644 dist/slewd.8 $(DESTDIR)$(MANDIR)/man8/slewd.8
	install -D -m 0644 dist/completion/slewd.bash $(DESTDIR)$(BASHCOMPDIR)/slewd
	install -D -m 0644 dist/completion/_slewd $(DESTDIR)$(ZSHCOMPDIR)/_slewd
	install -m 0644 dist/sysusers.d/slewd.conf $(DESTDIR)$(SYSUSERSDIR)/slewd.conf
	install -m 0644 docs/deploy.md $(DESTDIR)$(DOCDIR)/deploy.md
	# The configuration is never overwritten.
	[ -e $(DESTDIR)$(DEFAULTSFILE) ] || install -D -m 0644 dist/default/slewd $(DESTDIR)$(DEFAULTSFILE)
	[ -e $(DESTDIR)$(CONFDIR)/slewd.conf ] || install -D -m 0644 dist/slewd.conf $(DESTDIR)$(CONFDIR)/slewd.conf
	install -d $(DESTDIR)$(CONFDIR)/conf.d $(DESTDIR)$(CONFDIR)/sources.d
	if [ "$(NTPDATE)" = yes ]; then ln -sf slewd $(DESTDIR)$(SBINDIR)/ntpdate; fi
	# The user slewd runs as, on this machine (a package does it in its
	# scripts, so not into a DESTDIR).
	if [ -z "$(DESTDIR)" ] && ! getent passwd slewd >/dev/null; then \
		if [ -d /run/systemd/system ] && command -v systemd-sysusers >/dev/null; then \
			systemd-sysusers $(SYSUSERSDIR)/slewd.conf; \
		else useradd --system --home-dir /var/lib/slewd --no-create-home --shell /usr/sbin/nologin slewd; fi; fi
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

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
