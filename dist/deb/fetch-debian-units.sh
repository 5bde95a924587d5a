#!/bin/sh
# fetch-debian-units.sh CACHE: Debian 12's postfix and dovecot-core, unpacked
# into CACHE/postfix and CACHE/dovecot-core for the gating test (their unit
# files, the postfix instance generator, the binaries the units name).
# apt-get download + dpkg-deb -x: nothing is installed, no service is
# started, no maintainer script runs.
set -eu
cache=${1:?usage: fetch-debian-units.sh CACHE}
mkdir -p "$cache/debs"
for pkg in postfix dovecot-core; do
	[ -d "$cache/$pkg/lib/systemd/system" ] && continue
	(cd "$cache/debs" && apt-get download "$pkg")
	deb=$(ls -t "$cache/debs/${pkg}"_*.deb | head -1)
	rm -rf "$cache/$pkg.new"
	dpkg-deb -x "$deb" "$cache/$pkg.new"
	rm -rf "$cache/$pkg"
	mv "$cache/$pkg.new" "$cache/$pkg"
done
ls "$cache"/postfix/lib/systemd/system/postfix@.service "$cache"/dovecot-core/lib/systemd/system/dovecot.service
