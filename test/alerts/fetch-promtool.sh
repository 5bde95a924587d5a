#!/bin/sh
# fetch-promtool.sh [CACHE]: unpack Debian's prometheus package into
# CACHE/prometheus for promtool (default test/alerts/.cache), which checks
# and unit-tests dist/prometheus/slewd-alerts.yml and lints slewd's
# /metrics. apt-get download + dpkg-deb -x: nothing is installed, no
# prometheus service is started, no maintainer script runs. promtool is a
# static Go binary: it needs no other package.
set -eu
cache=${1:-${SLEWD_PROMTOOL_CACHE:-$(dirname "$0")/.cache}}
bin=$cache/prometheus/usr/bin/promtool
if [ ! -x "$bin" ]; then
	mkdir -p "$cache/debs"
	(cd "$cache/debs" && apt-get download prometheus)
	deb=$(ls -t "$cache"/debs/prometheus_*.deb | head -1)
	rm -rf "$cache/prometheus.new"
	dpkg-deb -x "$deb" "$cache/prometheus.new"
	rm -rf "$cache/prometheus"
	mv "$cache/prometheus.new" "$cache/prometheus"
fi
"$bin" --version | head -1
