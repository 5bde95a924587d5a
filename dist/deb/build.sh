#!/bin/sh
# build.sh: the Debian packages, from the binaries `make deb` built into
# $DEB_BUILD/<arch>/slewd. Generates what the packages ship compressed (man
# pages, docs, changelog.Debian; gzip -9n, as dh_compress does), then runs
# nfpm ($NFPM) for slewd on each of $DEB_ARCHS and once for slewd-ntpdate
# (Architecture: all). Output: $DEB_BUILD/*.deb. Run from the repository root.
set -eu
: "${DEB_BUILD:?}" "${DEB_VERSION:?}" "${DEB_RELEASE:?}" "${DEB_MAINTAINER:?}" "${DEB_ARCHS:?}" "${NFPM:?}"
export DEB_BUILD DEB_VERSION DEB_RELEASE DEB_MAINTAINER
export DEB_HOMEPAGE=${DEB_HOMEPAGE:-}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

gz() { gzip -9n <"$1" >"$2"; touch -d "@$SOURCE_DATE_EPOCH" "$2"; }
gz dist/slewd.8 "$DEB_BUILD/slewd.8.gz"
gz dist/deb/ntpdate-debian.8 "$DEB_BUILD/ntpdate-debian.8.gz"
gz README.md "$DEB_BUILD/README.md.gz"
gz docs/deploy.md "$DEB_BUILD/deploy.md.gz"
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
for pkg in slewd slewd-ntpdate; do
	mkdir -p "$DEB_BUILD/$pkg"
	cat >"$DEB_BUILD/$pkg/changelog.Debian" <<EOT
$pkg ($DEB_VERSION-$DEB_RELEASE) unstable; urgency=medium

  * Built with nfpm (make deb) from git commit $commit.

 -- $DEB_MAINTAINER  $date
EOT
	gz "$DEB_BUILD/$pkg/changelog.Debian" "$DEB_BUILD/$pkg/changelog.Debian.gz"
done

for arch in $DEB_ARCHS; do
	[ -x "$DEB_BUILD/$arch/slewd" ] || { echo "build.sh: $DEB_BUILD/$arch/slewd missing (make deb builds it)" >&2; exit 1; }
	DEB_ARCH=$arch $NFPM package --config dist/deb/slewd.yaml --packager deb --target "$DEB_BUILD/"
done
$NFPM package --config dist/deb/slewd-ntpdate.yaml --packager deb --target "$DEB_BUILD/"
ls -l "$DEB_BUILD"/*.deb
