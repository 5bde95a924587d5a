package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLookupRunAs(t *testing.T) {
	for _, tc := range []struct {
		spec     string
		uid, gid int
		ok       bool
	}{
		{"1234", 1234, 1234, true},
		{"1234:99", 1234, 99, true},
		{"root", 0, 0, true},
		{"1234:", 0, 0, false},
		{"-1", 0, 0, false},
		{"no-such-user-here", 0, 0, false},
	} {
		r, err := lookupRunAs(tc.spec)
		if (err == nil) != tc.ok || tc.ok && (r.uid != tc.uid || r.gid != tc.gid) {
			t.Errorf("%q: %+v, %v", tc.spec, r, err)
		}
	}
}

// `slewd run --user` started as root keeps CAP_SYS_TIME and nothing else.
// The real binary runs --dry-run as root of a user namespace (ids
// 100000-165535 of the host, so neither its root nor its CAP_SYS_TIME is
// worth anything outside: the host clock is safe) with tmpfs over /run
// and /var/lib; what the running daemon kept is read from its
// /proc/PID/status.
func TestRunUserKeepsOnlyCapSysTime(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mapping a range of ids into a user namespace needs root (or newuidmap)")
	}
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(bin), 0o755) // the namespace's root is nobody out here
	script := `set -e
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=0755 tmpfs /var/lib
T=/run/t
mkdir -p $T/run $T/state
chown 1234:1234 $T/run $T/state # a dry run creates nothing; its control socket goes in the run dir
"$1" run --dry-run --user 1234:1234 --state-dir $T/state --run-dir $T/run 127.0.0.1:9 >/run/log 2>&1 &
pid=$!
for i in $(seq 100); do
	grep -q "unprivileged user" /run/log 2>/dev/null && break
	sleep 0.05
done
grep -E "^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/$pid/status || true
kill $pid || true; wait $pid || true
sed 's/^/log: /' /run/log
`
	cmd := exec.Command("sh", "-c", script, "sh", bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: 100000, Size: 65536}},
		GidMappingsEnableSetgroups: true,
		// Become the namespace's root (host uid 0 is not mapped in it).
		Credential: &syscall.Credential{Uid: 0, Gid: 0},
	}
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got := string(out)
	const sysTime = "0000000002000000" // 1 << CAP_SYS_TIME (25)
	for _, want := range []string{
		`(?m)^Uid:\s+1234\s+1234\s+1234\s+1234$`,
		`(?m)^Gid:\s+1234\s+1234\s+1234\s+1234$`,
		`(?m)^Groups:\s+1234\s*$`,
		`(?m)^CapInh:\s+` + sysTime + `$`,
		`(?m)^CapPrm:\s+` + sysTime + `$`,
		`(?m)^CapEff:\s+` + sysTime + `$`,
		`(?m)^CapBnd:\s+` + sysTime + `$`,
		`(?m)^CapAmb:\s+` + sysTime + `$`,
		`(?m)^NoNewPrivs:\s+1$`,
		`log: .*dropping privileges`,
		`log: .*running as an unprivileged user with CAP_SYS_TIME only`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("no %s in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "level=ERROR") {
		t.Errorf("the daemon logged an error:\n%s", got)
	}
	t.Logf("\n%s", got)
}

func TestParseCaps(t *testing.T) {
	c, err := parseCaps("Name:\tslewd\nCapInh:\t0000000000000000\nCapPrm:\t0000000002000000\nCapEff:\t0000000002000000\nCapBnd:\t0000000002000000\nCapAmb:\t0000000002000000\n")
	if err != nil || c.eff != 1<<25 || c.bnd != 1<<25 || c.inh != 0 {
		t.Errorf("%+v, %v", c, err)
	}
	if _, err := parseCaps("CapEff:\t1\n"); err == nil {
		t.Error("missing lines accepted")
	}
}

// Before it becomes the user, `slewd run --user` gives it the state and
// run directories (made 0755 if missing) and the files a run as root left
// in them; a link is not followed.
func TestOwnDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	base := t.TempDir()
	existing := filepath.Join(base, "state")
	os.Mkdir(existing, 0o750)
	os.WriteFile(filepath.Join(existing, "slewd.lock"), nil, 0o644)
	outside := filepath.Join(base, "outside")
	os.WriteFile(outside, nil, 0o644)
	os.Symlink(outside, filepath.Join(existing, "link"))
	fresh := filepath.Join(base, "run", "slewd")
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	to := runAs{name: "1234", uid: 1234, gid: 1234}
	for _, d := range []string{existing, fresh} {
		if err := ownDir(d, to); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{
		existing: "1234:1234 750", fresh: "1234:1234 755",
		filepath.Join(existing, "slewd.lock"): "1234:1234 644", outside: "0:0 644",
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if got := fmt.Sprintf("%d:%d %o", st.Uid, st.Gid, fi.Mode().Perm()); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}
