package main

import (
	"bufio"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"slewd/ntpclient/ntptest"
)

// The units' SystemCallFilter= allows every system call slewd makes
// (docs/deploy.md, "System calls"). The calls slewd makes are
//
//   - traced: the real binary under `strace -f -c`, in a user namespace
//     (no clock rights) with tmpfs over /run and /var/lib: `slewd run
//     --dry-run` against loopback servers for some seconds and SIGTERM,
//     `slewd wait` and `slewd boot --dry-run`;
//   - read from the source: every system call slewd's own packages make
//     through golang.org/x/sys/unix or syscall (the clock's writes, which
//     --dry-run does not make, among them), from a table that this test
//     fails to keep up with when a new one appears.
//
// The filter is what systemd makes of the unit's lines: groups expanded
// by `systemd-analyze syscall-filter`, an allow list with @default
// implied, a ~ line taking away, in order.
func TestUnitSyscallFilters(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (.ci/run installs it)")
	}
	groups := syscallGroups(t, analyze)
	traced := tracedSyscalls(t)
	static := staticSyscalls(t)
	for _, tc := range []struct{ unit, command string }{
		{"slewd.service", "run"},
		{"slewd-boot.service", "boot"},
		{"slewd-wait.service", "wait"},
	} {
		allowed := unitFilter(t, filepath.Join("..", "..", "dist", "systemd", tc.unit), groups)
		used := map[string]bool{}
		for _, s := range traced[tc.command] {
			used[s] = true
		}
		if tc.command != "wait" { // wait only reads the clock
			for _, s := range static {
				used[s] = true
			}
		} else {
			used["clock_adjtime"] = true // its read-only adjtimex
		}
		var missing []string
		for s := range used {
			if !allowed[s] {
				missing = append(missing, s)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			t.Errorf("%s's SystemCallFilter= refuses what `slewd %s` calls: %s", tc.unit, tc.command, strings.Join(missing, " "))
		}
		n := 0
		for _, ok := range allowed {
			if ok {
				n++
			}
		}
		names := slices.Sorted(maps.Keys(used))
		t.Logf("%s: slewd %s makes %d distinct system calls (%d traced), the filter allows %d: %s", tc.unit, tc.command, len(used), len(traced[tc.command]), n, strings.Join(names, " "))
	}
	// The check can fail: without @clock, the daemon's unit would refuse
	// its clock calls.
	bare := filepath.Join(t.TempDir(), "bare.service")
	os.WriteFile(bare, []byte("[Service]\nSystemCallFilter=@system-service\n"), 0o644)
	if f := unitFilter(t, bare, groups); f["clock_adjtime"] || !f["read"] {
		t.Errorf("@system-service alone: clock_adjtime allowed %v, read %v", f["clock_adjtime"], f["read"])
	}
}

// syscallGroups is every group systemd knows, expanded.
func syscallGroups(t *testing.T, analyze string) map[string][]string {
	out, err := exec.Command(analyze, "syscall-filter", "--no-pager").Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter: %v", err)
	}
	raw := map[string][]string{}
	var cur string
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "@"):
			cur = strings.TrimSpace(line)
		case strings.HasPrefix(line, "    ") && cur != "":
			if f := strings.TrimSpace(line); f != "" && !strings.HasPrefix(f, "#") {
				raw[cur] = append(raw[cur], f)
			}
		case strings.TrimSpace(line) == "":
			cur = ""
		}
	}
	var expand func(g string, seen map[string]bool) []string
	expand = func(g string, seen map[string]bool) []string {
		if seen[g] {
			return nil
		}
		seen[g] = true
		var all []string
		for _, m := range raw[g] {
			if strings.HasPrefix(m, "@") {
				all = append(all, expand(m, seen)...)
			} else {
				all = append(all, m)
			}
		}
		return all
	}
	groups := map[string][]string{}
	for g := range raw {
		groups[g] = expand(g, map[string]bool{})
	}
	if len(groups["@system-service"]) < 100 || len(groups["@clock"]) == 0 {
		t.Fatalf("systemd-analyze syscall-filter: groups not understood:\n%s", out)
	}
	return groups
}

// unitFilter is the set of system calls a unit's SystemCallFilter= lines
// allow.
func unitFilter(t *testing.T, unit string, groups map[string][]string) map[string]bool {
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	first := true
	for _, line := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "SystemCallFilter=")
		if !ok {
			continue
		}
		deny := strings.HasPrefix(v, "~")
		v = strings.TrimPrefix(v, "~")
		if first {
			if deny {
				t.Fatalf("%s: a deny-list filter first: not what slewd's units use", unit)
			}
			for _, s := range groups["@default"] { // implied in an allow list
				allowed[s] = true
			}
			first = false
		}
		for _, item := range strings.Fields(v) {
			names := []string{item}
			if strings.HasPrefix(item, "@") {
				if names = groups[item]; names == nil {
					t.Fatalf("%s: unknown group %s", unit, item)
				}
			}
			for _, s := range names {
				allowed[s] = !deny
			}
		}
	}
	if first {
		t.Fatalf("%s has no SystemCallFilter=", unit)
	}
	return allowed
}

// tracedSyscalls runs the real binary under strace in a sandbox and
// returns the system calls of each command.
func tracedSyscalls(t *testing.T) map[string][]string {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace not installed (.ci/run installs it)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Skipf("user namespaces unavailable here: %v: %s", err, out)
	}
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	servers := strings.Join(loopbackServers(t, 3, ntptest.ServerConfig{Offset: 20 * time.Millisecond}), " ")
	// --dry-run only: slewd never adjusts a clock here (and the namespace
	// has no right to).
	script := `set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /var/lib
T=/run/t
mkdir -p $T
"$STRACE" -f -qq -c -o /run/run.trace "$BIN" run --dry-run --minpoll 16s --state-dir $T/state --run-dir $T/run $SERVERS >/run/run.log 2>&1 &
tracer=$!
sleep 5
"$STRACE" -f -qq -c -o /run/wait.trace "$BIN" wait --timeout 2s >/dev/null 2>&1 || true
"$STRACE" -f -qq -c -o /run/boot.trace "$BIN" boot --dry-run --state-dir $T/boot $SERVERS >/dev/null 2>&1 || true
kill -TERM $(cat /proc/$tracer/task/$tracer/children)
wait $tracer || true
for c in run wait boot; do echo "== $c"; cat /run/$c.trace; done
echo "== log"; cat /run/run.log
`
	cmd := exec.Command(unshare, "--user", "--map-root-user", "--mount", "sh", "-c", script)
	cmd.Env = append(os.Environ(), "STRACE="+strace, "BIN="+bin, "SERVERS="+servers)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("tracing slewd: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "dry run") && !strings.Contains(string(out), "slewd started") {
		t.Fatalf("slewd run did not start under strace:\n%s", out)
	}
	return parseStraceSummaries(string(out))
}

var straceRow = regexp.MustCompile(`^\s*[0-9.]+\s+[0-9.]+\s+[0-9]+\s+[0-9]+\s+(?:[0-9]+\s+)?([a-z0-9_]+)$`)

// parseStraceSummaries reads `strace -c` tables, each after "== NAME".
func parseStraceSummaries(out string) map[string][]string {
	res := map[string][]string{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if c, ok := strings.CutPrefix(line, "== "); ok {
			cur = c
			continue
		}
		if m := straceRow.FindStringSubmatch(line); m != nil && cur != "log" && m[1] != "total" {
			res[cur] = append(res[cur], m[1])
		}
	}
	return res
}

func TestParseStraceSummaries(t *testing.T) {
	got := parseStraceSummaries(`== run
% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 31.93    0.000752           3       218           futex
  0.00    0.000000           0         3         1 clock_adjtime
------ ----------- ----------- --------- --------- ----------------
100.00    0.002355           6       375        16 total
== wait
  0.00    0.000000           0         1           exit_group
`)
	if !slices.Equal(got["run"], []string{"futex", "clock_adjtime"}) || !slices.Equal(got["wait"], []string{"exit_group"}) {
		t.Errorf("%v", got)
	}
}

// sourceSyscalls maps the golang.org/x/sys/unix and syscall functions
// slewd's packages call to the system calls they make (amd64 names; the
// filter is by name on every architecture).
var sourceSyscalls = map[string][]string{
	"unix.ClockAdjtime":              {"clock_adjtime"},
	"unix.Syscall":                   {"ioctl"}, // clock/phc_linux.go: the PTP_SYS_OFFSET ioctls, and nothing else
	"unix.SYS_IOCTL":                 {"ioctl"},
	"unix.ClockGettime":              {"clock_gettime"},
	"unix.ClockSettime":              {"clock_settime"},
	"unix.Settimeofday":              {"settimeofday"},
	"unix.TimerfdCreate":             {"timerfd_create"},
	"unix.TimerfdSettime":            {"timerfd_settime"},
	"unix.Close":                     {"close"},
	"unix.FcntlInt":                  {"fcntl"},
	"unix.Recvmsg":                   {"recvmsg"},
	"unix.SetsockoptInt":             {"setsockopt"},
	"syscall.GetsockoptUcred":        {"getsockopt"},
	"syscall.Exec":                   {"execve"},
	"syscall.Flock":                  {"flock"},
	"unix.SYS_PRCTL":                 {"prctl"},
	"unix.SYS_CAPSET":                {"capset"},
	"unix.SYS_SETGROUPS":             {"setgroups"},
	"unix.SYS_SETRESGID":             {"setresgid"},
	"unix.SYS_SETRESUID":             {"setresuid"},
	"unix.SYS_SETGROUPS32":           {"setgroups32"},
	"unix.SYS_SETRESGID32":           {"setresgid32"},
	"unix.SYS_SETRESUID32":           {"setresuid32"},
	"unix.RawSyscall":                nil, // the SYS_ constant says which
	"unix.RawSyscall6":               nil,
	"unix.NsecToTimespec":            nil, // no system call
	"unix.NsecToTimeval":             nil,
	"unix.ParseSocketControlMessage": nil,
	"unix.ByteSliceToString":         nil,
}

var sourceCall = regexp.MustCompile(`\b(?:unix|syscall)\.(?:SYS_[A-Z0-9_]+|[A-Z][A-Za-z0-9]*\()`)

// staticSyscalls is what slewd's own packages (for this architecture's
// build) call, per sourceSyscalls.
func staticSyscalls(t *testing.T) []string {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Dir}} {{join .GoFiles \" \"}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var calls []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "slewd" && !strings.HasPrefix(f[0], "slewd/") {
			continue // the standard library, x/sys itself, urfave/cli
		}
		for _, name := range f[2:] {
			b, err := os.ReadFile(filepath.Join(f[1], name))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range sourceCall.FindAllString(string(b), -1) {
				m = strings.TrimSuffix(m, "(")
				names, known := sourceSyscalls[m]
				if !known {
					t.Errorf("%s calls %s: add it to sourceSyscalls with the system calls it makes", filepath.Join(f[1], name), m)
				}
				calls = append(calls, names...)
			}
		}
	}
	slices.Sort(calls)
	return slices.Compact(calls)
}
