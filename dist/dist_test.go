// Package dist_test checks the integration files: the SysV init script
// runs its whole life cycle against the real binary in a user namespace
// (where the kernel refuses every clock change), the shell scripts parse,
// and the systemd units pass `systemd-analyze verify` (verify-units.sh,
// also `make test-units`).
package dist_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slewd/ntpclient/ntptest"
)

func buildSlewd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "slewd")
	cmd := exec.Command("go", "build", "-o", bin, "../cmd/slewd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func needUserns(t *testing.T) string {
	t.Helper()
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare (util-linux) not installed")
	}
	if out, err := exec.Command(unshare, "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Skipf("user namespaces unavailable here: %v: %s", err, out)
	}
	return unshare
}

func TestScriptsParse(t *testing.T) {
	for _, f := range []string{"sysvinit/slewd", "cron/slewd-sync", "verify-units.sh"} {
		if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
		if fi, err := os.Stat(f); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("%s is not executable", f)
		}
	}
	// The init script's headers: chkconfig (CentOS), LSB (insserv), ordered
	// after the network and before dovecot.
	b, _ := os.ReadFile("sysvinit/slewd")
	for _, want := range []string{"# chkconfig: 2345 57 75", "### BEGIN INIT INFO", "# Required-Start:    $network", "# X-Start-Before:    dovecot postfix", "### END INIT INFO"} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("init script lacks %q", want)
		}
	}
}

// TestInitScript: start (slewd boot once, then slewd run in the
// background), status, a second start, stop, and a restart that does not
// run slewd boot again; in dry-run mode in a user namespace.
func TestInitScript(t *testing.T) {
	unshare := needUserns(t)
	bin := buildSlewd(t)
	var addrs []string
	for range 2 {
		s := ntptest.NewServer(ntptest.ServerConfig{Offset: 40 * time.Millisecond})
		t.Cleanup(s.Close)
		addrs = append(addrs, s.Addr())
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "default")
	os.WriteFile(conf, []byte(`SLEWD_SERVERS="`+strings.Join(addrs, ",")+`"
SLEWD_BOOT_OPTS="--dry-run --json"
SLEWD_RUN_OPTS="--dry-run --minpoll 16s"
`), 0o644)
	env := append(os.Environ(), "SLEWD="+bin, "SLEWD_CONFIG="+conf,
		"SLEWD_PIDFILE="+filepath.Join(dir, "slewd.pid"), "SLEWD_RUN_DIR="+filepath.Join(dir, "run"),
		"SLEWD_STATE_DIR="+filepath.Join(dir, "state"), "SLEWD_LOGFILE="+filepath.Join(dir, "slewd.log"))
	script, _ := filepath.Abs("sysvinit/slewd")
	run := func(action string) (string, int) {
		// tmpfs over /run and /var/lib: nothing reaches the host's.
		cmd := exec.Command(unshare, "--user", "--map-root-user", "--mount", "sh", "-c",
			`mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/lib && exec sh "$0" "$@"`, script, action)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	t.Cleanup(func() { run("stop") })
	log := func() string { b, _ := os.ReadFile(filepath.Join(dir, "slewd.log")); return string(b) }

	if out, code := run("status"); code != 3 || !strings.Contains(out, "stopped") {
		t.Errorf("status before start: %d %q", code, out)
	}
	out, code := run("start")
	if code != 0 || !strings.Contains(out, "Setting the clock once (slewd boot): done") || !strings.Contains(out, "Starting slewd: OK") {
		t.Fatalf("start: %d %q\nlog:\n%s", code, out, log())
	}
	if !strings.Contains(log(), `"dry_run": true`) {
		t.Errorf("slewd boot's report is not in the log:\n%s", log())
	}
	if out, code := run("status"); code != 0 || !strings.Contains(out, "is running") {
		t.Errorf("status: %d %q", code, out)
	}
	if out, _ := run("start"); !strings.Contains(out, "already running") {
		t.Errorf("second start: %q", out)
	}
	// The daemon runs and measures; a dry run publishes no status file
	// (slewd wait and slewd sync would believe it).
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && !strings.Contains(log(), "dry run: would slew") {
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(log(), "dry run: would slew") {
		t.Errorf("slewd run measured nothing:\n%s", log())
	}
	if _, err := os.Stat(filepath.Join(dir, "run", "status.json")); err == nil {
		t.Errorf("a dry run wrote a status file")
	}
	if out, code := run("restart"); code != 0 || strings.Contains(out, "slewd boot") || !strings.Contains(out, "Stopping slewd: OK") || !strings.Contains(out, "Starting slewd: OK") {
		t.Errorf("restart (must not run slewd boot again): %d %q", code, out)
	}
	if out, code := run("stop"); code != 0 || !strings.Contains(out, "Stopping slewd: OK") {
		t.Errorf("stop: %d %q", code, out)
	}
	if out, code := run("status"); code != 3 {
		t.Errorf("status after stop: %d %q", code, out)
	}
	if _, code := run("frobnicate"); code != 2 {
		t.Errorf("unknown action: status %d", code)
	}
}

// The units pass systemd-analyze verify (make test-units runs the same).
func TestUnitsVerify(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (make test-units fails instead of skipping)")
	}
	bin := buildSlewd(t)
	out, err := exec.Command("./verify-units.sh", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, u := range []string{"slewd.service", "slewd-boot.service", "slewd-wait.service", "dovecot.service"} {
		if !bytes.Contains(out, []byte(u)) {
			t.Errorf("%s not verified: %s", u, out)
		}
	}
}

// The units say what the issue asks of them.
func TestUnitContents(t *testing.T) {
	for unit, wants := range map[string][]string{
		"systemd/slewd.service": {"Type=notify", "WatchdogSec=", "Restart=on-failure", "User=slewd", "AmbientCapabilities=CAP_SYS_TIME",
			"CapabilityBoundingSet=CAP_SYS_TIME", "ProtectSystem=strict", "ReadWritePaths=/var/lib/slewd /run/slewd -/run/systemd/timesync",
			"StateDirectory=slewd", "RuntimeDirectory=slewd", "ProtectHome=yes", "PrivateTmp=yes", "NoNewPrivileges=yes",
			"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "SystemCallFilter=@system-service @clock", "ConditionCapability=CAP_SYS_TIME",
			"Conflicts=systemd-timesyncd.service chrony.service chronyd.service ntp.service", "Before=time-sync.target", "Wants=network-online.target time-sync.target"},
		"systemd/slewd-boot.service": {"Type=oneshot", "RemainAfterExit=yes", "Wants=network-online.target", "After=network-online.target",
			"Before=time-sync.target slewd.service dovecot.service postfix.service", "SuccessExitStatus=3", "ExecStart=/usr/sbin/slewd boot"},
		"systemd/slewd-wait.service": {"Before=time-sync.target", "Wants=time-sync.target", "ExecStart=/usr/sbin/slewd wait", "After=slewd.service"},
		"systemd/slewd-gate.conf":    {"Requires=slewd-boot.service", "After=slewd-boot.service"},
	} {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range wants {
			if !bytes.Contains(b, []byte(w)) {
				t.Errorf("%s lacks %q", unit, w)
			}
		}
	}
}

// The cron job runs slewd sync quietly, and when slewd is not where it
// looks it says so on stderr (cron mails it) and fails, rather than
// exiting 0 while nothing keeps the clock.
func TestCronJob(t *testing.T) {
	script, err := os.ReadFile("cron/slewd-sync")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "slewd")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"$@\"\n"), 0o755)
	run := func(slewdPath string) (string, string, error) {
		s := strings.Replace(string(script), "SLEWD=/usr/sbin/slewd", "SLEWD="+slewdPath, 1)
		// A host that has slewd installed must not hide the failure case.
		s = strings.Replace(s, "for p in /usr/local/sbin/slewd /usr/sbin/slewd /usr/local/bin/slewd /usr/bin/slewd", "for p in "+filepath.Join(dir, "none"), 1)
		job := filepath.Join(dir, "job")
		os.WriteFile(job, []byte(s), 0o755)
		var out, errb bytes.Buffer
		cmd := exec.Command(job)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	out, _, err := run(fake)
	if err != nil || strings.TrimSpace(out) != "sync --quiet ntp.nict.jp" {
		t.Errorf("cron job ran slewd with %q (%v), want sync --quiet ntp.nict.jp", out, err)
	}
	_, stderr, err := run(filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(stderr, "slewd is not installed") {
		t.Errorf("without slewd the job exited %v with %q; want a failure that says why", err, stderr)
	}
}
