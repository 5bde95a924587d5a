#!/bin/sh
# fetch-chrony.sh [CACHE]: unpack Debian's chrony into CACHE/chrony for the
# peer tests (default test/peers/.cache). apt-get download + dpkg-deb -x:
# nothing is installed, no service is started, no maintainer script runs.
set -eu
cache=${1:-${SLEWD_PEERS_CACHE:-$(dirname "$0")/.cache}}
bin=$cache/chrony/usr/sbin/chronyd
if [ ! -x "$bin" ]; then
	mkdir -p "$cache/debs"
	(cd "$cache/debs" && apt-get download chrony)
	deb=$(ls -t "$cache"/debs/chrony_*.deb | head -1)
	rm -rf "$cache/chrony.new"
	dpkg-deb -x "$deb" "$cache/chrony.new"
	rm -rf "$cache/chrony"
	mv "$cache/chrony.new" "$cache/chrony"
fi
# Its libraries come from the system (libedit2, libgnutls30, libnettle8,
# libseccomp2, libcap2: install those packages, never chrony itself).
if missing=$(ldd "$bin" | grep 'not found'); then
	echo "fetch-chrony.sh: chronyd needs libraries that are not installed:" >&2
	echo "$missing" >&2
	exit 1
fi
"$bin" --version
