#!/bin/sh
# version.sh: the Debian upstream version of this tree: 0~gitYYYYMMDD.HASH
# (the commit's date and hash; +dirty with uncommitted changes). There is no
# release tag yet; 0~ sorts before any real release.
set -eu
hash=$(git rev-parse --short HEAD 2>/dev/null) || { echo 0~dev; exit 0; }
day=$(date -u -d "@$(git log -1 --format=%ct)" +%Y%m%d)
dirty=
git diff --quiet HEAD 2>/dev/null || dirty=+dirty
echo "0~git$day.$hash$dirty"
