#!/bin/sh
# install.sh: `make install`, FHS layout for /usr/local (the Makefile passes
# the directories; see its install target). Installs the binary, the systemd
# units and drop-ins, the SysV init script, the man page (gzip -9n), shell
# completion, the logrotate file, the ntp-units.d list and examples, and
# prints every path it installed. Never overwrites /etc/default/slewd or
# /etc/logrotate.d/slewd. Enables and starts nothing. With DESTDIR empty it
# also creates the system user and reloads systemd (docs/deploy.md).
# NTPDATE=yes: also $SBINDIR/ntpdate -> slewd.
set -eu
: "${BIN:?}" "${SBINDIR:?}" "${UNITDIR:?}" "${SYSUSERSDIR:?}" "${INITDIR:?}" "${MANDIR:?}" "${DOCDIR:?}" "${DEFAULTSFILE:?}"
: "${NTPUNITSDIR:?}" "${BASHCOMPDIR:?}" "${ZSHCOMPDIR:?}" "${LOGROTATEDIR:?}"
DESTDIR=${DESTDIR:-}
NTPDATE=${NTPDATE:-no}
here=$(cd "$(dirname "$0")" && pwd) # sources are relative to dist/

installed() { echo "  $1"; }
# put MODE SRC DST: install SRC (in dist/) as DST (under DESTDIR), units and scripts
# with /usr/sbin/slewd rewritten to $SBINDIR/slewd.
put() {
	install -d "$DESTDIR$(dirname "$3")"
	sed "s|/usr/sbin/slewd|$SBINDIR/slewd|g" "$here/$2" >"$DESTDIR$3.tmp"
	chmod "$1" "$DESTDIR$3.tmp"
	mv "$DESTDIR$3.tmp" "$DESTDIR$3"
	installed "$3"
}
# keep MODE SRC DST: as put, but never over an existing file (configuration).
keep() {
	if [ -e "$DESTDIR$3" ]; then
		echo "  $3 (exists, kept)"
	else
		put "$@"
	fi
}

echo "make install: DESTDIR=${DESTDIR:-(none)}"
install -d "$DESTDIR$SBINDIR"
install -m 0755 "$BIN" "$DESTDIR$SBINDIR/slewd"
installed "$SBINDIR/slewd"
if [ "$NTPDATE" = yes ]; then
	ln -sf slewd "$DESTDIR$SBINDIR/ntpdate"
	installed "$SBINDIR/ntpdate -> slewd"
fi
for u in slewd.service slewd-boot.service slewd-wait.service; do
	put 0644 "systemd/$u" "$UNITDIR/$u"
done
# Ordering drop-ins: the mail daemons start after slewd-boot (and
# slewd-wait where enabled); postfix@ is Debian 12's MTA instance.
for d in postfix@.service.d postfix.service.d dovecot.service.d; do
	put 0644 systemd/slewd-order.conf "$UNITDIR/$d/slewd.conf"
done
put 0644 ntp-units.d/40-slewd.list "$NTPUNITSDIR/40-slewd.list"
put 0644 sysusers.d/slewd.conf "$SYSUSERSDIR/slewd.conf"
put 0755 sysvinit/slewd "$INITDIR/slewd"
install -d "$DESTDIR$MANDIR/man8"
gzip -9n <"$here/slewd.8" >"$DESTDIR$MANDIR/man8/slewd.8.gz"
chmod 0644 "$DESTDIR$MANDIR/man8/slewd.8.gz"
installed "$MANDIR/man8/slewd.8.gz"
put 0644 completion/slewd.bash "$BASHCOMPDIR/slewd"
put 0644 completion/_slewd "$ZSHCOMPDIR/_slewd"
put 0644 ../docs/deploy.md "$DOCDIR/deploy.md"
put 0755 cron/slewd-sync "$DOCDIR/examples/slewd-sync"
put 0644 systemd/slewd-gate.conf "$DOCDIR/examples/slewd-gate.conf"
keep 0644 logrotate/slewd "$LOGROTATEDIR/slewd"
keep 0644 default/slewd "$DEFAULTSFILE"
keep 0644 slewd.conf "${CONFDIR:-/etc/slewd}/slewd.conf"
# Empty directories for the admin's drop-ins and sources (slewd.conf
# reads them).
install -d "$DESTDIR${CONFDIR:-/etc/slewd}/conf.d" "$DESTDIR${CONFDIR:-/etc/slewd}/sources.d"

# The user slewd runs as, on this machine (a package does it in its
# scripts, so not into a DESTDIR).
if [ -z "$DESTDIR" ] && ! getent passwd slewd >/dev/null; then
	if [ -d /run/systemd/system ] && command -v systemd-sysusers >/dev/null; then
		systemd-sysusers "$SYSUSERSDIR/slewd.conf"
	else
		useradd --system --home-dir /var/lib/slewd --no-create-home --shell /usr/sbin/nologin slewd
	fi
	echo "  user slewd"
fi
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
echo "Nothing is enabled or started: see $DOCDIR/deploy.md."
