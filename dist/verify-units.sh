#!/bin/sh
# verify-units.sh BINARY: check every systemd unit in dist/systemd with
# `systemd-analyze verify`, on copies whose /usr/sbin/slewd is BINARY (the
# installed path need not exist here), and the gate drop-in on a stand-in
# dovecot.service (and the ordering drop-in; make test-deb checks both on
# Debian's real postfix and dovecot units). Any message (an unknown key, a bad value, a missing
# command) fails, not only errors. Starts nothing. `make test-units` runs it.
set -eu
bin=${1:?usage: verify-units.sh path/to/slewd}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
[ -x "$bin" ] || { echo "verify-units.sh: $bin is not an executable (make build)" >&2; exit 1; }
command -v systemd-analyze >/dev/null 2>&1 || {
	echo "verify-units.sh: systemd-analyze not found: apt-get install --no-install-recommends systemd (it starts nothing without systemd as PID 1)" >&2
	exit 1
}
dir=$(cd "$(dirname "$0")" && pwd)/systemd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
units=
for u in "$dir"/*.service; do
	sed "s|/usr/sbin/slewd|$bin|g" "$u" >"$tmp/${u##*/}"
	units="$units ${u##*/}"
done
# A stand-in for dovecot.service with the gate drop-in, as installed.
printf '[Unit]\nDescription=stand-in for dovecot\n[Service]\nExecStart=/bin/true\n' >"$tmp/dovecot.service"
mkdir "$tmp/dovecot.service.d"
cp "$dir/slewd-order.conf" "$tmp/dovecot.service.d/slewd.conf"
cp "$dir/slewd-gate.conf" "$tmp/dovecot.service.d/slewd-gate.conf"
units="$units dovecot.service"
cd "$tmp"
# --man=no: the man page is not installed here. SYSTEMD_UNIT_PATH: the
# copies (and their drop-ins) first, then the system's units.
if ! out=$(SYSTEMD_UNIT_PATH="$tmp:" systemd-analyze verify --man=no $units 2>&1) || [ -n "$out" ]; then
	echo "systemd-analyze verify:$units" >&2
	echo "$out" >&2
	exit 1
fi
echo "systemd-analyze verify: OK:$units"
