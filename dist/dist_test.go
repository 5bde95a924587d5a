// Package dist_test checks the integration files: the SysV init script
// runs its whole life cycle against the real binary in a user namespace
// (where the kernel refuses every clock change), the shell scripts parse,
// and the systemd units pass `systemd-analyze verify` (verify-units.sh,
// also `make test-units`).
package dist_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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
	for _, f := range []string{"sysvinit/slewd", "cron/slewd-sync", "verify-units.sh", "dhcp/nm-dispatcher",
		"deb/ntpdate-debian", "deb/postinst", "deb/prerm", "deb/postrm", "deb/build.sh", "deb/version.sh",
		"deb/test-deb.sh", "deb/fetch-debian-units.sh", "install.sh"} {
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
			"Conflicts=systemd-timesyncd.service chrony.service chronyd.service ntp.service", "Before=time-sync.target", "Wants=network-online.target time-sync.target",
			"ExecReload=/bin/kill -HUP $MAINPID"},
		"systemd/slewd-boot.service": {"Type=oneshot", "RemainAfterExit=yes", "Wants=network-online.target", "After=network-online.target",
			"Before=time-set.target time-sync.target slewd.service dovecot.service postfix.service", "Wants=network-online.target time-set.target",
			"SuccessExitStatus=3", "ExecStart=/usr/sbin/slewd boot"},
		"systemd/slewd-wait.service": {"Before=time-sync.target", "Wants=time-sync.target", "ExecStart=/usr/sbin/slewd wait", "After=slewd.service",
			"ConditionCapability=CAP_SYS_TIME", "ConditionVirtualization=!container",
			// chrony-wait.service's sandbox (all but ProtectClock=, see the unit).
			"CapabilityBoundingSet=\n", "DevicePolicy=closed", "IPAddressDeny=any", "PrivateUsers=yes", "ProcSubset=pid", "ProtectHostname=yes",
			"ProtectProc=invisible", "RestrictRealtime=yes", "SystemCallFilter=@system-service\n", "SystemCallFilter=~@privileged @resources",
			"SystemCallFilter=adjtimex clock_adjtime", "UMask=0777", "PrivateNetwork=yes"},
		"systemd/slewd-gate.conf":   {"Requires=slewd-boot.service", "After=slewd-boot.service"},
		"systemd/slewd-order.conf":  {"After=slewd-boot.service slewd-wait.service"},
		"ntp-units.d/40-slewd.list": {"\nslewd.service\n"},
		"logrotate/slewd":           {"/var/log/slewd.log {", "copytruncate"},
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

// The ordering drop-in must not gate: Requires= is the admin's choice (the
// gate drop-in), and the ordering drop-in is installed for every machine.
func TestOrderDropInOnlyOrders(t *testing.T) {
	b, err := os.ReadFile("systemd/slewd-order.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || line == "[Unit]" {
			continue
		}
		if !strings.HasPrefix(line, "After=") {
			t.Errorf("slewd-order.conf has %q: it must only order (After=)", line)
		}
	}
}

// fakeSystemctl puts a systemctl on PATH that logs its arguments to the
// returned file and answers is-active with status (0 active, 3 not).
func fakeSystemctl(t *testing.T, isActive int) (path, logFile string) {
	t.Helper()
	dir := t.TempDir()
	logFile = filepath.Join(dir, "systemctl.log")
	script := "#!/bin/sh\necho \"$*\" >>" + logFile + "\ncase \"$*\" in *is-active*) exit " + strconv.Itoa(isActive) + ";; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + os.Getenv("PATH"), logFile
}

func readOr(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// The DHCP hooks write the servers as "server X iburst" lines, remove them
// when the lease goes, and ask slewd to reload (never restart) only when
// the file changed. The reload goes through systemctl only where systemd
// runs (/run/systemd/system): both cases run in a user and mount namespace
// with a private /run, with and without that directory, and a stand-in
// systemctl.
func TestDHCPHooks(t *testing.T) {
	unshare := needUserns(t)
	for _, systemd := range []bool{true, false} {
		t.Run(fmt.Sprintf("systemd=%v", systemd), func(t *testing.T) { testDHCPHooks(t, unshare, systemd) })
	}
}

func testDHCPHooks(t *testing.T, unshare string, systemd bool) {
	// inNS runs argv with a private /run, which has /run/systemd/system if
	// systemd.
	mkdir := ""
	if systemd {
		mkdir = " && mkdir -p /run/systemd/system"
	}
	inNS := func(argv ...string) *exec.Cmd {
		return exec.Command(unshare, append([]string{"--user", "--map-root-user", "--mount", "sh", "-c",
			"mount -t tmpfs tmpfs /run" + mkdir + ` && exec "$@"`, "sh"}, argv...)...)
	}
	type step struct {
		env       []string
		wantFile  string // "" = no file
		wantCalls string // systemctl calls when systemd runs
	}
	dhclient := func(t *testing.T, dir string, env []string) {
		// dhclient-script sources the hook, with $interface and $reason set.
		cmd := inNS("sh", "-c", ". ./dhcp/dhclient-exit-hook")
		cmd.Env = append(env, "SLEWD_DHCP_DIR="+dir, "interface=eth0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
	}
	nm := func(t *testing.T, dir string, env []string) {
		var action string
		var rest []string
		for _, e := range env {
			if a, ok := strings.CutPrefix(e, "ACTION="); ok {
				action = a
			} else {
				rest = append(rest, e)
			}
		}
		cmd := inNS("./dhcp/nm-dispatcher", "eth0", action)
		cmd.Env = append(rest, "SLEWD_DHCP_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", env, err, out)
		}
	}
	reload := "--quiet is-active slewd.service\nreload slewd.service\n"
	for name, tc := range map[string]struct {
		run   func(*testing.T, string, []string)
		steps []step
	}{
		"dhclient": {dhclient, []step{
			{[]string{"reason=BOUND", "new_ntp_servers=192.0.2.1 192.0.2.2"}, "server 192.0.2.1 iburst\nserver 192.0.2.2 iburst\n", reload},
			{[]string{"reason=RENEW", "new_ntp_servers=192.0.2.1 192.0.2.2"}, "server 192.0.2.1 iburst\nserver 192.0.2.2 iburst\n", ""},
			{[]string{"reason=RENEW", "new_ntp_servers=192.0.2.3"}, "server 192.0.2.3 iburst\n", reload},
			{[]string{"reason=PREINIT"}, "server 192.0.2.3 iburst\n", ""},
			{[]string{"reason=EXPIRE"}, "", reload},
			{[]string{"reason=STOP"}, "", ""},
		}},
		"networkmanager": {nm, []step{
			{[]string{"ACTION=up", "DHCP4_NTP_SERVERS=192.0.2.1", "DHCP6_DHCP6_NTP_SERVERS=2001:db8::1 bad;name"}, "server 192.0.2.1 iburst\nserver 2001:db8::1 iburst\n", reload},
			{[]string{"ACTION=dhcp4-change", "DHCP4_NTP_SERVERS=192.0.2.1", "DHCP6_DHCP6_NTP_SERVERS=2001:db8::1"}, "server 192.0.2.1 iburst\nserver 2001:db8::1 iburst\n", ""},
			{[]string{"ACTION=vpn-up"}, "server 192.0.2.1 iburst\nserver 2001:db8::1 iburst\n", ""},
			{[]string{"ACTION=down"}, "", reload},
		}},
	} {
		t.Run(name, func(t *testing.T) {
			path, logFile := fakeSystemctl(t, 0)
			dir := filepath.Join(t.TempDir(), "slewd-dhcp")
			for i, st := range tc.steps {
				os.Remove(logFile)
				tc.run(t, dir, append(st.env, "PATH="+path))
				if got := readOr(t, filepath.Join(dir, "eth0.sources")); got != st.wantFile {
					t.Errorf("step %d %v: eth0.sources = %q, want %q", i, st.env, got, st.wantFile)
				}
				want := ""
				if systemd {
					want = st.wantCalls
				}
				if got := readOr(t, logFile); got != want {
					t.Errorf("step %d %v: systemctl calls %q, want %q (systemd running: %v)", i, st.env, got, want, systemd)
				}
				if strings.Contains(readOr(t, logFile), "restart") {
					t.Errorf("step %d: a DHCP hook restarted slewd", i)
				}
			}
		})
	}
}

// ntpdate-debian finds the servers as Debian's does (the replaced
// package's defaults, its ntp.conf, else /etc/default/slewd, plus DHCP)
// and hands everything to ntpdate, here a stand-in that prints its
// arguments.
func TestNtpdateDebian(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "ntpdate")
	os.WriteFile(fake, []byte("#!/bin/sh\necho \"$*\"\n"), 0o755)
	write := func(root, path, text string) {
		p := filepath.Join(root, path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(root string, args ...string) (string, error) {
		cmd := exec.Command("./deb/ntpdate-debian", args...)
		cmd.Env = append(os.Environ(), "SLEWD_NTPDATE_ROOT="+root, "SLEWD_NTPDATE="+fake)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// The if-up hook of ntpsec-ntpdate, left behind as a conffile, on a
	// static interface: ntpdate-debian -s -b.
	root := t.TempDir()
	write(root, "etc/default/ntpsec-ntpdate", "NTPDATE_USE_NTP_CONF=yes\nNTPSERVERS=\"0.debian.pool.ntp.org 1.debian.pool.ntp.org\"\nNTPOPTIONS=\"-u\"\nIGNORE_DHCP=\"\"\n")
	write(root, "run/slewd-dhcp/eth0.sources", "server 192.0.2.1 iburst\n")
	dhcp := filepath.Join(root, "run/slewd-dhcp/eth0.sources")
	if out, err := run(root, "-s", "-b"); err != nil || out != "-u -s -b --servers-from "+dhcp+" 0.debian.pool.ntp.org 1.debian.pool.ntp.org" {
		t.Errorf("ntpsec-ntpdate defaults, no ntp.conf: %q %v", out, err)
	}
	write(root, "etc/ntpsec/ntp.conf", "pool 2.debian.pool.ntp.org iburst\nserver -4 ntp.example.net\nserver 127.127.1.0\n")
	if out, err := run(root, "-s"); err != nil || out != "-u -s --servers-from "+dhcp+" 2.debian.pool.ntp.org ntp.example.net" {
		t.Errorf("with ntp.conf: %q %v", out, err)
	}
	write(root, "etc/default/ntpsec-ntpdate", "IGNORE_DHCP=yes\nNTPSERVERS=a.example\n")
	if out, err := run(root); err != nil || out != "a.example" {
		t.Errorf("IGNORE_DHCP=yes: %q %v", out, err)
	}
	// Nothing replaced: slewd's own servers.
	root = t.TempDir()
	write(root, "etc/default/slewd", "SLEWD_SERVERS=\"ntp.nict.jp,192.0.2.9:123\"\nSLEWD_POOLS=\"pool.ntp.org\"\n")
	if out, err := run(root, "-q"); err != nil || out != "-q ntp.nict.jp 192.0.2.9:123 pool.ntp.org" {
		t.Errorf("/etc/default/slewd: %q %v", out, err)
	}
	if out, err := run(t.TempDir()); err == nil || !strings.Contains(out, "no NTP servers") {
		t.Errorf("no servers anywhere: %q %v, want a failure that says so", out, err)
	}
}

func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := buildSlewd(t)
	complete := func(words ...string) string {
		script := `source ./completion/slewd.bash; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _slewd; echo "${COMPREPLY[*]}"`
		out, err := exec.Command("bash", append([]string{"-c", script, "bash", bin}, words...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := complete("st"); got != "status" {
		t.Errorf("slewd st<TAB> = %q, want status", got)
	}
	if got := complete("run", "--max-s"); got != "--max-slew-rate" {
		t.Errorf("slewd run --max-s<TAB> = %q, want --max-slew-rate", got)
	}
	if got := complete(""); !strings.Contains(got, "boot") || !strings.Contains(got, "wait") {
		t.Errorf("slewd <TAB> = %q, want the commands", got)
	}
}

// install.sh (make install) puts every file in its FHS place under
// DESTDIR, prints each path it installed and nothing else, rewrites the
// binary's path in units and scripts, and keeps existing configuration.
func TestInstall(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "slewd")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	dest := t.TempDir()
	run := func() string {
		cmd := exec.Command("./install.sh")
		cmd.Env = append(os.Environ(), "BIN="+bin, "DESTDIR="+dest, "SBINDIR=/usr/local/sbin",
			"UNITDIR=/usr/local/lib/systemd/system", "SYSUSERSDIR=/usr/local/lib/sysusers.d",
			"NTPUNITSDIR=/usr/local/lib/systemd/ntp-units.d", "INITDIR=/etc/init.d", "MANDIR=/usr/local/share/man",
			"DOCDIR=/usr/local/share/doc/slewd", "BASHCOMPDIR=/usr/local/share/bash-completion/completions",
			"ZSHCOMPDIR=/usr/local/share/zsh/site-functions", "LOGROTATEDIR=/etc/logrotate.d",
			"DEFAULTSFILE=/etc/default/slewd", "NTPDATE=yes")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("install.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run()
	var printed []string
	for _, line := range strings.Split(out, "\n") {
		if p, ok := strings.CutPrefix(line, "  "); ok {
			printed = append(printed, strings.TrimSuffix(p, " -> slewd"))
		}
	}
	var found []string
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			found = append(found, strings.TrimPrefix(p, dest))
		}
		return nil
	})
	sort.Strings(printed)
	sort.Strings(found)
	if strings.Join(printed, "\n") != strings.Join(found, "\n") {
		t.Errorf("printed:\n%s\n\ninstalled:\n%s", strings.Join(printed, "\n"), strings.Join(found, "\n"))
	}
	for _, want := range []string{"/usr/local/sbin/slewd", "/usr/local/lib/systemd/system/slewd.service",
		"/usr/local/lib/systemd/system/postfix@.service.d/slewd.conf", "/usr/local/lib/systemd/ntp-units.d/40-slewd.list",
		"/usr/local/share/man/man8/slewd.8.gz", "/etc/logrotate.d/slewd", "/usr/local/share/bash-completion/completions/slewd"} {
		if !slices.Contains(found, want) {
			t.Errorf("%s not installed", want)
		}
	}
	if slices.ContainsFunc(found, func(p string) bool { return strings.HasPrefix(p, "/etc/systemd/") }) {
		t.Errorf("installed into /etc/systemd, the admin's directory")
	}
	if target, err := os.Readlink(filepath.Join(dest, "usr/local/sbin/ntpdate")); err != nil || target != "slewd" {
		t.Errorf("NTPDATE=yes: ntpdate -> %q (%v)", target, err)
	}
	if unit, _ := os.ReadFile(filepath.Join(dest, "usr/local/lib/systemd/system/slewd.service")); !bytes.Contains(unit, []byte("ExecStart=/usr/local/sbin/slewd run")) {
		t.Errorf("slewd.service does not run /usr/local/sbin/slewd")
	}
	if out, err := exec.Command("gzip", "-t", filepath.Join(dest, "usr/local/share/man/man8/slewd.8.gz")).CombinedOutput(); err != nil {
		t.Errorf("man page not gzip: %v %s", err, out)
	}
	// A second run keeps the admin's configuration.
	conf := filepath.Join(dest, "etc/default/slewd")
	os.WriteFile(conf, []byte("SLEWD_SERVERS=mine\n"), 0o644)
	if out := run(); !strings.Contains(out, "/etc/default/slewd (exists, kept)") {
		t.Errorf("second install: %s", out)
	}
	if b, _ := os.ReadFile(conf); string(b) != "SLEWD_SERVERS=mine\n" {
		t.Errorf("install overwrote /etc/default/slewd: %q", b)
	}
}
