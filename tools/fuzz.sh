#!/bin/bash
# tools/fuzz.sh SECONDS [ROUND]: run every Fuzz target of the module (found
# with go test -list, so a new one cannot be left out) for at least SECONDS
# each (30s means 30), one after the other, in rounds of ROUND inputs
# (default 20000). FUZZ=REGEXP picks targets by name (make fuzz FUZZ=NTS).
#
# Why rounds of inputs and not -fuzztime SECONDs: with a duration, Go 1.26's
# fuzz coordinator can fail a target with a bare "context deadline exceeded"
# when the time runs out: the deadline reaches the coordinator's context
# before its child's, and a worker's cancelled call escapes the filter meant
# for it (go.dev/issue/75804, fixed in Go 1.27); it failed one CI run of
# FuzzReply that way. A count of inputs sets no deadline, so a slow machine only runs
# slower, and a failure always means a failing input was found (written to
# the package's testdata/fuzz/NAME). Each round starts from the corpus the
# rounds before it grew (in the Go build cache), so rounds add up.
set -euo pipefail
seconds=${1:?usage: tools/fuzz.sh SECONDS [ROUND]}
seconds=${seconds%s} # 30s is 30
round=${2:-20000}
for n in "$seconds" "$round"; do
	[[ $n =~ ^[1-9][0-9]*$ ]] || {
		echo "tools/fuzz.sh: SECONDS and ROUND are whole numbers from 1 (got '$seconds' and '$round')" >&2
		exit 2
	}
done
GO=${GO:-go}
export SLEWD_SKIP_KERNEL=1 SLEWD_SKIP_PEERS=1

# A package that does not build fails here, rather than dropping its targets.
list=$($GO test -list '^Fuzz' ./...) || {
	echo "tools/fuzz.sh: go test -list '^Fuzz' ./... failed (above)" >&2
	exit 1
}
# FUZZ matches anywhere in the name, as go test -run does.
targets=$(awk -v re="${FUZZ:-.}" '/^Fuzz/ { n[++c] = $1 }
	/^ok / { for (i = 1; i <= c; i++) if (n[i] ~ re) print $2, n[i]; c = 0 }' <<<"$list")
if [ -z "$targets" ]; then
	echo "tools/fuzz.sh: no Fuzz target${FUZZ:+ matches FUZZ=$FUZZ} (go test -list '^Fuzz' ./... lists them)" >&2
	exit 2
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fuzz PKG NAME INPUTS WHEN: one go test -fuzz run; on a failure, what go
# test said (where it wrote the failing input) and exit 1.
fuzz() {
	$GO test -run '^$' -fuzz "^$2\$" -fuzztime "${3}x" "$1" >"$log" 2>&1 && return
	cat "$log" >&2
	echo "fuzz: $1 $2 FAILED $4; the failing input is in testdata/fuzz/$2, which plain go test replays" >&2
	exit 1
}

count=0
while read -r pkg name; do
	# Build the instrumented test binary and gather the corpus's coverage
	# first (one input), so that the seconds are spent fuzzing.
	fuzz "$pkg" "$name" 1 "on its corpus"
	rounds=0
	start=$(date +%s%N)
	while :; do
		fuzz "$pkg" "$name" "$round" "in round $((rounds + 1))"
		rounds=$((rounds + 1))
		ms=$((($(date +%s%N) - start) / 1000000))
		[ "$ms" -lt $((seconds * 1000)) ] || break
	done
	echo "fuzz: $pkg $name: $((rounds * round)) inputs in $rounds rounds, $((ms / 1000)).$(printf %03d $((ms % 1000))) s"
	count=$((count + 1))
done <<<"$targets"
echo "fuzz: $count targets, at least $seconds s each"
