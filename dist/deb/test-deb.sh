#!/bin/sh
# test-deb.sh DEBDIR CACHE: test the packages `make deb` built in DEBDIR
# (make test-deb). CACHE holds Debian 12's postfix and dovecot-core,
# unpacked (fetch-debian-units.sh). Any failure exits 1.
#
#  1. dpkg-deb: every package's metadata, file list, modes, conffiles,
#     maintainer scripts and binary architecture, against the lists below.
#  2. lintian (with the packages' overrides): no tag may remain.
#  3. dpkg --root: slewd and slewd-ntpdate installed into a throwaway root
#     with their maintainer scripts (--force-script-chrootless, so dpkg sets
#     DPKG_ROOT): the files, conffiles and package status that landed, the
#     system user (systemd-sysusers --root), what deb-systemd-helper enabled
#     there; then remove and purge.
#     Nothing on this machine may change: dpkg runs in a user and mount
#     namespace where /run (so no /run/systemd/system, no PID 1 to talk
#     to), /etc/systemd/system and /var/lib/systemd are empty tmpfs and
#     /etc/passwd, group, shadow, gshadow are copies; systemctl,
#     deb-systemd-invoke, invoke-rc.d and update-rc.d on PATH are stand-ins
#     that record a call and fail, and a call fails the test.
#     Then the same maintainer scripts as under a running systemd (a private
#     /run with /run/systemd/system, every command a recording stand-in):
#     the exact calls for install, upgrade, remove and purge.
#  4. systemd-analyze verify and security on the installed units.
#  5. The mail daemons: Debian 12's real postfix.service, postfix@.service
#     (with the instance generator's postfix@-.service) and dovecot.service
#     beside the installed units and drop-ins: systemd-analyze verify, and
#     systemd's own unit dump (verify at debug level) shows postfix@-.service
#     and dovecot.service ordered after slewd-boot.service, and, with the
#     gate drop-in in /etc, requiring it. Without the drop-ins they are not
#     (the bug of issue 13: Before=postfix.service orders Debian 12's
#     /bin/true stand-in only).
set -eu
debs=$(cd "${1:?usage: test-deb.sh DEBDIR CACHE}" && pwd)
cache=$(cd "${2:?usage: test-deb.sh DEBDIR CACHE}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0 mark=0
fail() { echo "FAIL: $*" >&2; failed=$((failed + 1)); }
passes=0
ok() { echo "ok: $*"; passes=$((passes + 1)); }
# passed MESSAGE: ok, if nothing failed since the last call.
passed() { [ "$failed" = "$mark" ] && ok "$*"; mark=$failed; }
export LC_ALL=C
need() { command -v "$1" >/dev/null 2>&1 || { echo "test-deb.sh: $1 not found (.ci/run installs it)" >&2; exit 1; }; }
for c in dpkg dpkg-deb dpkg-query lintian systemd-analyze systemd-sysusers deb-systemd-helper unshare gzip; do need "$c"; done

one() { # one GLOB: the single file matching it
	set -- $1
	[ $# -eq 1 ] && [ -e "$1" ] || { echo "test-deb.sh: want exactly one of $*" >&2; exit 1; }
	echo "$1"
}
slewd_amd64=$(one "$debs/slewd_*_amd64.deb")
ntpdate_deb=$(one "$debs/slewd-ntpdate_*_all.deb")
version=$(dpkg-deb -f "$slewd_amd64" Version)

# ------------------------------------------------------------ 1. dpkg-deb
# field VALUE DEB NAME: the control field NAME of DEB is VALUE.
field() {
	got=$(dpkg-deb -f "$3" "$2")
	[ "$got" = "$1" ] || fail "${3##*/}: $2 is '$got', want '$1'"
}
# What the slewd package holds (paths, then modes), and its conffiles.
cat >"$tmp/slewd.files" <<'EOF'
-rw-r--r-- /etc/default/slewd
-rw-r--r-- /etc/dhcp/dhclient-exit-hooks.d/slewd
-rwxr-xr-x /etc/init.d/slewd
-rw-r--r-- /etc/logrotate.d/slewd
-rw-r--r-- /etc/slewd/slewd.conf
-rw-r--r-- /etc/slewd/sources.d/README
-rwxr-xr-x /usr/lib/NetworkManager/dispatcher.d/20-slewd-dhcp
-rw-r--r-- /usr/lib/systemd/ntp-units.d/40-slewd.list
-rw-r--r-- /usr/lib/systemd/system/dovecot.service.d/slewd.conf
-rw-r--r-- /usr/lib/systemd/system/postfix.service.d/slewd.conf
-rw-r--r-- /usr/lib/systemd/system/postfix@.service.d/slewd.conf
-rw-r--r-- /usr/lib/systemd/system/slewd-boot.service
-rw-r--r-- /usr/lib/systemd/system/slewd-wait.service
-rw-r--r-- /usr/lib/systemd/system/slewd.service
-rw-r--r-- /usr/lib/sysusers.d/slewd.conf
-rwxr-xr-x /usr/sbin/slewd
-rw-r--r-- /usr/share/bash-completion/completions/slewd
-rw-r--r-- /usr/share/doc/slewd/README.md.gz
-rw-r--r-- /usr/share/doc/slewd/changelog.Debian.gz
-rw-r--r-- /usr/share/doc/slewd/copyright
-rw-r--r-- /usr/share/doc/slewd/deploy.md.gz
-rw-r--r-- /usr/share/doc/slewd/examples/slewd-gate.conf
-rwxr-xr-x /usr/share/doc/slewd/examples/slewd-sync
-rw-r--r-- /usr/share/lintian/overrides/slewd
-rw-r--r-- /usr/share/man/man8/slewd.8.gz
-rw-r--r-- /usr/share/zsh/vendor-completions/_slewd
EOF
sort -o "$tmp/slewd.files" "$tmp/slewd.files"
cat >"$tmp/slewd.conffiles" <<'EOF'
/etc/default/slewd
/etc/dhcp/dhclient-exit-hooks.d/slewd
/etc/init.d/slewd
/etc/logrotate.d/slewd
/etc/slewd/slewd.conf
/etc/slewd/sources.d/README
EOF
cat >"$tmp/slewd-ntpdate.files" <<'EOF'
-rwxr-xr-x /usr/sbin/ntpdate-debian
-rw-r--r-- /usr/share/doc/slewd-ntpdate/changelog.Debian.gz
-rw-r--r-- /usr/share/doc/slewd-ntpdate/copyright
-rw-r--r-- /usr/share/lintian/overrides/slewd-ntpdate
-rw-r--r-- /usr/share/man/man8/ntpdate-debian.8.gz
l /usr/sbin/ntpdate -> slewd
l /usr/share/man/man8/ntpdate.8.gz -> slewd.8.gz
EOF
sort -o "$tmp/slewd-ntpdate.files" "$tmp/slewd-ntpdate.files"
# files DEB: "MODE PATH" of its regular files, "l PATH -> TARGET" of its
# symlinks, owners checked to be root/root.
files() {
	dpkg-deb -c "$1" | awk '
		$2 != "root/root" { print "owner " $2 " " $6; next }
		substr($1,1,1) == "-" { p=$6; sub(/^\./,"",p); print $1 " " p }
		substr($1,1,1) == "l" { p=$6; sub(/^\./,"",p); print "l " p " -> " $8 }' | sort
}
conffiles() { dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles 2>/dev/null | sort; }
# elf_machine DEB: e_machine of its /usr/sbin/slewd (62 x86-64, 183 aarch64, 40 arm).
elf_machine() {
	dpkg-deb --fsys-tarfile "$1" | tar -xO ./usr/sbin/slewd >"$tmp/elf"
	od -An -tu2 -j18 -N2 "$tmp/elf" | tr -d ' '
}

for arch in amd64 arm64 armhf; do
	deb=$(one "$debs/slewd_*_$arch.deb")
	name=${deb##*/}
	field slewd Package "$deb"
	field "$arch" Architecture "$deb"
	field "$version" Version "$deb"
	field time-daemon Provides "$deb"
	field time-daemon Conflicts "$deb"
	field time-daemon Replaces "$deb"
	field "systemd | systemd-standalone-sysusers | systemd-sysusers" Depends "$deb"
	field "init-system-helpers (>= 1.54~)" Pre-Depends "$deb"
	field net Section "$deb"
	files "$deb" >"$tmp/got.files"
	if ! diff -u "$tmp/slewd.files" "$tmp/got.files" >"$tmp/diff"; then
		fail "$name: contents differ from the list:"; cat "$tmp/diff" >&2
	fi
	conffiles "$deb" >"$tmp/got.conffiles"
	if ! diff -u "$tmp/slewd.conffiles" "$tmp/got.conffiles" >"$tmp/diff"; then
		fail "$name: conffiles differ:"; cat "$tmp/diff" >&2
	fi
	want=$(case $arch in amd64) echo 62 ;; arm64) echo 183 ;; armhf) echo 40 ;; esac)
	got=$(elf_machine "$deb")
	[ "$got" = "$want" ] || fail "$name: /usr/sbin/slewd is not an $arch binary (e_machine $got)"
	mkdir -p "$tmp/ctrl-$arch"
	dpkg-deb -e "$deb" "$tmp/ctrl-$arch"
	for s in postinst prerm postrm; do
		[ -x "$tmp/ctrl-$arch/$s" ] && sh -n "$tmp/ctrl-$arch/$s" || fail "$name: maintainer script $s missing or does not parse"
	done
	cmp -s "$tmp/ctrl-$arch/postinst" "$here/postinst" || fail "$name: postinst is not dist/deb/postinst"
	# The man page is gzip -9n (Debian Policy 12.1).
	dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/man/man8/slewd.8.gz >"$tmp/man.gz"
	gzip -t "$tmp/man.gz" || fail "$name: slewd.8.gz is not gzip"
	passed "$name: metadata, $(wc -l <"$tmp/got.files") files, 5 conffiles, $arch binary, scripts"
done

deb=$ntpdate_deb
name=${deb##*/}
field slewd-ntpdate Package "$deb"
field all Architecture "$deb"
field "slewd (= $version)" Depends "$deb"
field "ntpsec-ntpdate, ntpdate" Conflicts "$deb"
field "ntpsec-ntpdate, ntpdate" Replaces "$deb"
field ntpdate Provides "$deb"
files "$deb" >"$tmp/got.files"
diff -u "$tmp/slewd-ntpdate.files" "$tmp/got.files" >"$tmp/diff" || { fail "$name: contents differ:"; cat "$tmp/diff" >&2; }
[ -z "$(conffiles "$deb")" ] || fail "$name: has conffiles"
passed "$name: metadata, contents"

# ------------------------------------------------------------ 2. lintian
# The packages carry their overrides (dist/deb/*.lintian-overrides, each
# with its reason); anything else lintian says fails.
lintian --pedantic --info --show-overrides "$debs"/slewd_*.deb "$ntpdate_deb" >"$tmp/lintian" 2>&1 || true
echo "lintian (overridden tags, each explained in dist/deb/*.lintian-overrides):"
grep '^O: ' "$tmp/lintian" | sed 's/^/  /' | sort -u
# N: lines are lintian's explanations (--info); E W I P X C are tags.
if grep '^[EWIPXC]: ' "$tmp/lintian" | grep -q .; then
	fail "lintian:"; grep -v '^N:' "$tmp/lintian" >&2
else
	ok "lintian --pedantic: nothing but the explained overrides on $(ls "$debs"/*.deb | wc -l) packages"
fi

# ------------------------------------------------------------ 3. dpkg --root
root=$tmp/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/triggers" "$root/var/log" "$root/etc"
: >"$root/var/lib/dpkg/status"
: >"$root/var/lib/dpkg/available"
# Stand-ins for what must not run with DPKG_ROOT set (or without systemd as
# PID 1): each records its call and fails.
mkdir "$tmp/stub"
for c in systemctl deb-systemd-invoke invoke-rc.d update-rc.d; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/stub.log"\nexit 1\n' "$c" "$tmp" >"$tmp/stub/$c"
	chmod 755 "$tmp/stub/$c"
done
# The sandbox: see the header. $1: the dpkg arguments.
in_sandbox() {
	cp /etc/passwd /etc/group "$tmp/"
	for f in shadow gshadow; do [ -e /etc/$f ] && cp /etc/$f "$tmp/$f" || : >"$tmp/$f"; done
	unshare --user --map-root-user --mount sh -eu -c '
		tmp=$1; shift
		mount -t tmpfs tmpfs /run
		for d in /etc/systemd/system /var/lib/systemd; do
			[ -d $d ] && mount -t tmpfs tmpfs $d
		done
		for f in passwd group shadow gshadow; do
			[ -e /etc/$f ] && mount --bind "$tmp/$f" /etc/$f
		done
		PATH=$tmp/stub:$PATH
		export PATH
		"$@"' sh "$tmp" "$@"
}
host_before=$(ls -l /etc/systemd/system /etc/systemd/system/*.wants 2>/dev/null | md5sum; md5sum /etc/passwd /etc/group)
if ! in_sandbox dpkg --root="$root" --force-script-chrootless --force-depends \
	-i "$slewd_amd64" "$ntpdate_deb" >"$tmp/dpkg.log" 2>&1; then
	fail "dpkg --root -i:"; cat "$tmp/dpkg.log" >&2
fi
# --force-depends: the empty root has no systemd, init-system-helpers.
if grep -i 'depends on' "$tmp/dpkg.log" | grep -v -e 'systemd' -e 'init-system-helpers' | grep -q .; then
	fail "unexpected dependency problems:"; grep -i 'depends on' "$tmp/dpkg.log" >&2
fi
q() { dpkg-query --admindir="$root/var/lib/dpkg" -W -f="$1" "$2"; }
for p in slewd slewd-ntpdate; do
	[ "$(q '${Status}' $p)" = "install ok installed" ] || fail "$p: status '$(q '${Status}' $p)' in the root"
done
# Every file of the package is in the root, as in the .deb.
for p in slewd slewd-ntpdate; do
	while read -r path; do
		[ -e "$root$path" ] || [ -L "$root$path" ] || fail "$p: $path listed but not in the root"
	done <"$root/var/lib/dpkg/info/$p.list"
done
[ -x "$root/usr/sbin/slewd" ] && "$root/usr/sbin/slewd" --version >/dev/null || fail "installed slewd does not run"
[ "$(readlink "$root/usr/sbin/ntpdate")" = slewd ] || fail "/usr/sbin/ntpdate is not a link to slewd"
"$root/usr/sbin/ntpdate" --help 2>&1 | grep -q "slewd's ntpdate" || fail "installed ntpdate is not slewd's ntpdate personality"
# Conffiles registered, with the md5sums of the files that landed.
q '${Conffiles}\n' slewd | awk 'NF' | sort >"$tmp/root.conffiles"
awk '{print $1}' "$tmp/root.conffiles" | diff -u "$tmp/slewd.conffiles" - || fail "conffiles registered in the root differ"
while read -r path sum; do
	[ "$(md5sum <"$root$path" | cut -d' ' -f1)" = "$sum" ] || fail "conffile $path: md5sum differs from the registered one"
done <"$tmp/root.conffiles"
# The system user, made by the postinst's systemd-sysusers --root.
grep -q '^slewd:x:[0-9]*:[0-9]*:slewd NTP client:/var/lib/slewd:/usr/sbin/nologin$' "$root/etc/passwd" ||
	fail "no slewd user in the root's /etc/passwd: $(cat "$root/etc/passwd" 2>&1)"
grep -q '^slewd:' "$root/etc/group" || fail "no slewd group in the root"
# Enabled: slewd.service and slewd-boot.service (multi-user.target), not
# slewd-wait.service, by the real deb-systemd-helper under DPKG_ROOT.
wants=$root/etc/systemd/system/multi-user.target.wants
for u in slewd.service slewd-boot.service; do
	case $(readlink "$wants/$u" 2>/dev/null) in
	*/systemd/system/$u) ;;
	*) fail "$u not enabled in the root (multi-user.target.wants: $(ls "$wants" 2>&1))" ;;
	esac
done
[ ! -e "$wants/slewd-wait.service" ] && [ ! -L "$wants/slewd-wait.service" ] || fail "slewd-wait.service was enabled"
[ ! -s "$tmp/stub.log" ] || { fail "maintainer scripts ran what must not run here:"; cat "$tmp/stub.log" >&2; }
passed "dpkg --root: installed; $(wc -l <"$root/var/lib/dpkg/info/slewd.list") paths, conffiles registered, user slewd, enabled: $(ls "$wants" | tr '\n' ' ')"

# The same scripts as on a machine running systemd (no DPKG_ROOT, a
# /run/systemd/system, an /etc/init.d/slewd), with every command they call
# a stand-in that records the call and succeeds: what they enable, start,
# restart and stop. slewd-boot.service is enabled but never started (it may
# step the clock under running mail daemons); slewd-wait.service is neither.
mkdir "$tmp/stub2"
for c in systemctl deb-systemd-invoke deb-systemd-helper invoke-rc.d update-rc.d systemd-sysusers; do
	printf '#!/bin/sh\necho "%s $*" >>"%s/calls.log"\nexit 0\n' "$c" "$tmp" >"$tmp/stub2/$c"
	chmod 755 "$tmp/stub2/$c"
done
# deb-systemd-helper debian-installed: false on a first install, true
# (STUB_INSTALLED=yes) when an earlier version was installed; was-enabled:
# true (a new unit, or one the admin left enabled).
printf '#!/bin/sh\necho "deb-systemd-helper $*" >>"%s/calls.log"\n[ "$1" != debian-installed ] || [ "${STUB_INSTALLED:-}" = yes ]\n' "$tmp" >"$tmp/stub2/deb-systemd-helper"
# scripts ARGS...: run postinst/prerm/postrm ARGS in the sandbox, systemd "running".
scripts() {
	: >"$tmp/calls.log"
	in_sandbox sh -eu -c '
		tmp=$1; shift
		mkdir -p /run/systemd/system
		mount -t tmpfs tmpfs /etc/init.d
		printf "#!/bin/sh\n" >/etc/init.d/slewd && chmod 755 /etc/init.d/slewd
		PATH=$tmp/stub2:$PATH
		unset DPKG_ROOT
		for step in "$@"; do
			set -- $step
			s=$1; shift
			"$tmp/ctrl-amd64/$s" "$@"
		done' sh "$tmp" "$@" >"$tmp/scripts.out" 2>&1 || { fail "maintainer scripts failed: $(cat "$tmp/scripts.out")"; }
}
expect_calls() { # expect_calls WHAT: calls.log is the here-document
	cat >"$tmp/want.log"
	diff -u "$tmp/want.log" "$tmp/calls.log" >"$tmp/diff" || { fail "$1: maintainer script calls differ:"; cat "$tmp/diff" >&2; }
}
scripts "postinst configure"
expect_calls "first install" <<'EOT'
systemd-sysusers slewd.conf
deb-systemd-helper unmask slewd.service
deb-systemd-helper --quiet was-enabled slewd.service
deb-systemd-helper enable slewd.service
deb-systemd-helper unmask slewd-boot.service
deb-systemd-helper --quiet was-enabled slewd-boot.service
deb-systemd-helper enable slewd-boot.service
deb-systemd-helper debian-installed slewd-wait.service
deb-systemd-helper update-state slewd-wait.service
systemctl --system daemon-reload
deb-systemd-invoke start slewd.service
update-rc.d slewd defaults
EOT
# An upgrade where the admin had enabled slewd-wait.service: it stays so.
STUB_INSTALLED=yes scripts "postinst configure 0~git20260101.0000000-1"
expect_calls "upgrade" <<'EOT'
systemd-sysusers slewd.conf
deb-systemd-helper unmask slewd.service
deb-systemd-helper --quiet was-enabled slewd.service
deb-systemd-helper enable slewd.service
deb-systemd-helper unmask slewd-boot.service
deb-systemd-helper --quiet was-enabled slewd-boot.service
deb-systemd-helper enable slewd-boot.service
deb-systemd-helper debian-installed slewd-wait.service
deb-systemd-helper unmask slewd-wait.service
deb-systemd-helper --quiet was-enabled slewd-wait.service
deb-systemd-helper enable slewd-wait.service
deb-systemd-helper update-state slewd-wait.service
systemctl --system daemon-reload
deb-systemd-invoke restart slewd.service
update-rc.d slewd defaults
EOT
scripts "prerm remove" "postrm remove" "postrm purge"
expect_calls "remove, purge" <<'EOT'
deb-systemd-invoke stop slewd.service slewd-wait.service
systemctl --system daemon-reload
deb-systemd-helper mask slewd.service slewd-boot.service slewd-wait.service
deb-systemd-helper purge slewd.service slewd-boot.service slewd-wait.service
deb-systemd-helper unmask slewd.service slewd-boot.service slewd-wait.service
update-rc.d slewd remove
EOT
scripts "prerm upgrade 0~git20260101.0000000-1"
expect_calls "prerm on upgrade (stops nothing: postinst restarts)" </dev/null
passed "maintainer scripts under systemd: enable slewd.service and slewd-boot.service, start (upgrade: restart) slewd.service only, never slewd-boot; slewd-wait.service not enabled (kept enabled on upgrade if it was); remove stops slewd and slewd-wait; purge cleans up"

# Units as installed, for 4 and 5 (before the removal below).
units=$tmp/units
mkdir "$units"
cp -r "$root/usr/lib/systemd/system/." "$units/"
cp "$root/usr/sbin/slewd" "$tmp/slewd"
sed -i "s|/usr/sbin/slewd|$tmp/slewd|g" "$units"/slewd*.service

# Remove, then purge: the files go, conffiles stay until purge, the enable
# links and the state go with the purge.
in_sandbox dpkg --root="$root" --force-script-chrootless -r slewd-ntpdate slewd >"$tmp/dpkg.log" 2>&1 || { fail "dpkg -r:"; cat "$tmp/dpkg.log" >&2; }
[ ! -e "$root/usr/sbin/slewd" ] || fail "removed, but /usr/sbin/slewd is still there"
[ -e "$root/etc/default/slewd" ] || fail "removed (not purged), but the conffile /etc/default/slewd is gone"
[ "$(q '${Status}' slewd)" = "deinstall ok config-files" ] || fail "after remove: status '$(q '${Status}' slewd)'"
mkdir -p "$root/var/lib/slewd" && : >"$root/var/lib/slewd/drift"
in_sandbox dpkg --root="$root" --force-script-chrootless -P slewd >"$tmp/dpkg.log" 2>&1 || { fail "dpkg -P:"; cat "$tmp/dpkg.log" >&2; }
[ ! -e "$root/etc/default/slewd" ] || fail "purged, but /etc/default/slewd is still there"
[ ! -e "$root/var/lib/slewd" ] || fail "purged, but /var/lib/slewd is still there"
[ ! -L "$wants/slewd.service" ] || fail "purged, but slewd.service is still enabled"
[ ! -s "$tmp/stub.log" ] || { fail "maintainer scripts ran what must not run here:"; cat "$tmp/stub.log" >&2; }
host_after=$(ls -l /etc/systemd/system /etc/systemd/system/*.wants 2>/dev/null | md5sum; md5sum /etc/passwd /etc/group)
[ "$host_before" = "$host_after" ] || fail "this machine's /etc/systemd/system or /etc/passwd changed"
passed "dpkg --root: removed (conffiles kept), purged (conffiles, state, enable links gone); this machine untouched"

# ------------------------------------------------------------ 4. the units
if out=$(cd "$units" && SYSTEMD_UNIT_PATH="$units:" systemd-analyze verify --man=no slewd.service slewd-boot.service slewd-wait.service 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify: installed slewd.service slewd-boot.service slewd-wait.service"
else
	fail "systemd-analyze verify on the installed units:"; echo "$out" >&2
fi
# Exposure scores: no worse than before the package (2.2 and 1.7).
for spec in slewd.service:2.2 slewd-boot.service:2.2 slewd-wait.service:1.7; do
	u=${spec%:*} max=${spec#*:}
	score=$(cd "$units" && systemd-analyze security --offline=yes "./$u" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	if [ -n "$score" ] && awk "BEGIN{exit !($score <= $max)}"; then
		ok "systemd-analyze security $u: exposure $score (at most $max)"
	else
		fail "systemd-analyze security $u: exposure '$score', want at most $max"
	fi
done

# ------------------------------------------------------------ 5. mail daemons
# Debian 12's units, their commands pointed at the unpacked packages (the
# paths need not exist here), beside the installed units and drop-ins.
pf=$cache/postfix dc=$cache/dovecot-core
[ -r "$pf/lib/systemd/system/postfix@.service" ] && [ -r "$dc/lib/systemd/system/dovecot.service" ] ||
	{ echo "test-deb.sh: no Debian postfix/dovecot units in $cache (make debian-units)" >&2; exit 1; }
mail=$tmp/mail
mkdir -p "$mail/lib" "$mail/gen" "$mail/etc" "$tmp/stub-postconf"
for f in "$pf"/lib/systemd/system/postfix.service "$pf"/lib/systemd/system/postfix@.service \
	"$dc"/lib/systemd/system/dovecot.service "$dc"/lib/systemd/system/dovecot.socket; do
	sed -e "s|/usr/sbin/postmulti|$pf/usr/sbin/postmulti|g" -e "s|/usr/lib/postfix/|$pf/usr/lib/postfix/|g" \
		-e "s|/usr/sbin/dovecot|$dc/usr/sbin/dovecot|g" -e "s|/usr/bin/doveadm|$dc/usr/bin/doveadm|g" "$f" >"$mail/lib/${f##*/}"
done
cp -r "$units/." "$mail/lib/"
# Postfix's real generator makes postfix.service want postfix@-.service; its
# postconf (for multi_instance_directories) is a stand-in that says none.
printf '#!/bin/sh\nexit 0\n' >"$tmp/stub-postconf/postconf"
chmod 755 "$tmp/stub-postconf/postconf"
PATH=$tmp/stub-postconf:$PATH sh "$pf/lib/systemd/system-generators/postfix-instance-generator" "$mail/gen"
[ -L "$mail/gen/postfix.service.wants/postfix@-.service" ] || fail "postfix's generator made no postfix@-.service"
# dump UNIT DIRS...: systemd's dump of UNIT as loaded from DIRS (verify at
# debug level prints it), one "Key: value" per line.
# Units loaded along (slewd-boot.service, so that its Before= shows) do not
# change the dump of UNIT otherwise.
dump() {
	u=$1; shift
	path=$(echo "$@" | tr ' ' ':'):
	(cd "$mail" && SYSTEMD_UNIT_PATH="$path" SYSTEMD_LOG_LEVEL=debug systemd-analyze verify --man=no "$u" slewd-boot.service 2>/dev/null) |
		awk -v u="$u" '/^\t-> Unit /{on = ($3 == u ":")} on' | sed 's/^[[:space:]]*//'
}
has() { # has DUMPFILE "LINE" : the dump has a line starting with LINE
	grep -q "^$2\( (\|\$\)" "$1"
}
if out=$(cd "$mail" && SYSTEMD_UNIT_PATH="$mail/lib:$mail/gen:" systemd-analyze verify --man=no \
	postfix.service postfix@-.service dovecot.service slewd-boot.service slewd.service slewd-wait.service 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify: Debian 12 postfix.service postfix@-.service dovecot.service with slewd's units and drop-ins"
else
	fail "systemd-analyze verify with Debian's mail units:"; echo "$out" >&2
fi
dump postfix.service "$mail/lib" "$mail/gen" >"$tmp/d.postfix"
has "$tmp/d.postfix" "Wants: postfix@-.service" || fail "postfix.service does not want postfix@-.service (generator)"
for u in postfix@-.service dovecot.service postfix.service; do
	dump "$u" "$mail/lib" "$mail/gen" >"$tmp/d"
	d=${u%%-.service}; d=${d%.service}
	case $u in postfix@-.service) dir=postfix@.service.d ;; *) dir=$u.d ;; esac
	has "$tmp/d" "DropIn Path: $mail/lib/$dir/slewd.conf" || fail "$u: slewd's drop-in $dir/slewd.conf not loaded"
	has "$tmp/d" "After: slewd-boot.service" || fail "$u: not ordered after slewd-boot.service"
	has "$tmp/d" "After: slewd-wait.service" || fail "$u: not ordered after slewd-wait.service"
	has "$tmp/d" "Requires: slewd-boot.service" && fail "$u: requires slewd-boot.service without the gate"
done
passed "postfix@-.service, dovecot.service (and postfix.service) start after slewd-boot.service and slewd-wait.service"
# The control: without the drop-ins, Debian 12's MTA instance is not ordered
# after slewd-boot.service (only the /bin/true postfix.service is).
mkdir "$tmp/bare"
cp -r "$mail/lib/." "$tmp/bare/"
rm -r "$tmp/bare"/*.service.d
dump postfix@-.service "$tmp/bare" "$mail/gen" >"$tmp/d"
[ -s "$tmp/d" ] || fail "no unit dump for postfix@-.service (control)"
has "$tmp/d" "After: slewd-boot.service" && fail "control: postfix@-.service is ordered after slewd-boot.service even without the drop-in"
dump postfix.service "$tmp/bare" "$mail/gen" >"$tmp/d"
has "$tmp/d" "After: slewd-boot.service" || fail "control: slewd-boot's Before=postfix.service does not reach postfix.service"
passed "control: without the drop-ins postfix@-.service is not ordered after slewd-boot.service (only Debian 12's /bin/true postfix.service is)"
# The gate, as an admin adds it (docs/deploy.md): Requires= as well.
for d in postfix@.service.d postfix.service.d dovecot.service.d; do
	mkdir -p "$mail/etc/$d"
	cp "$here/../systemd/slewd-gate.conf" "$mail/etc/$d/slewd-gate.conf"
done
for u in postfix@-.service dovecot.service; do
	dump "$u" "$mail/etc" "$mail/lib" "$mail/gen" >"$tmp/d"
	has "$tmp/d" "Requires: slewd-boot.service" || fail "$u with the gate: does not require slewd-boot.service"
	has "$tmp/d" "After: slewd-boot.service" || fail "$u with the gate: not ordered after slewd-boot.service"
	(cd "$mail" && SYSTEMD_UNIT_PATH="$mail/etc:$mail/lib:$mail/gen:" SYSTEMD_LOG_LEVEL=debug systemd-analyze verify --man=no "$u" 2>&1) |
		grep -q "slewd-boot.service: Installed new job slewd-boot.service/start" ||
		fail "$u with the gate: starting it does not start slewd-boot.service"
done
if out=$(cd "$mail" && SYSTEMD_UNIT_PATH="$mail/etc:$mail/lib:$mail/gen:" systemd-analyze verify --man=no postfix@-.service dovecot.service 2>&1) && [ -z "$out" ]; then :; else
	fail "systemd-analyze verify with the gate:"; echo "$out" >&2
fi
passed "with the gate drop-in: postfix@-.service and dovecot.service require slewd-boot.service (a start job pulls it in)"

echo "test-deb: $passes passed, $failed failed"
if [ "$failed" != 0 ]; then
	echo "test-deb.sh: FAIL" >&2
	exit 1
fi
echo "test-deb.sh: PASS"
