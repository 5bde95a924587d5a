package hostinfo

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCronMatches(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		sched string
		t     string
		want  bool
	}{
		{"17 * * * *", "2026-06-10T14:17:04Z", true},
		{"17 * * * *", "2026-06-10T14:19:30Z", true}, // run-parts still working within the slack
		{"17 * * * *", "2026-06-10T14:21:00Z", false},
		{"17 * * * *", "2026-06-10T14:16:59Z", false},
		{"*/30 * * * *", "2026-06-10T14:30:02Z", true},
		{"*/30 * * * *", "2026-06-10T14:45:00Z", false},
		{"0 4 * * *", "2026-06-10T04:00:01Z", true},
		{"0 4 * * *", "2026-06-10T05:00:01Z", false},
		{"25 6 * * 1-5", "2026-06-10T06:25:00Z", true}, // a Wednesday
		{"25 6 * * sat,sun", "2026-06-10T06:25:00Z", false},
		{"47 6 * * 7", "2026-06-14T06:47:00Z", true}, // 7 is Sunday too
		{"52 6 1 * *", "2026-07-01T06:52:10Z", true},
		{"52 6 1 jul *", "2026-08-01T06:52:10Z", false},
		{"0 0 1 * mon", "2026-06-15T00:00:00Z", true}, // both days restricted: either
		{"10-20/5 * * * *", "2026-06-10T14:15:00Z", true},
		{"10-20/5 * * * *", "2026-06-10T14:21:00Z", true},  // 14:20 within slack
		{"10-20/5 * * * *", "2026-06-10T14:14:00Z", false}, // 14:11..14:14: no run
		{"@hourly", "2026-06-10T14:00:30Z", true},
		{"@reboot", "2026-06-10T14:00:30Z", false},
		{"bad", "2026-06-10T14:00:30Z", false},
	}
	for _, tt := range tests {
		if got := cronMatches(tt.sched, at(tt.t), 3*time.Minute); got != tt.want {
			t.Errorf("cronMatches(%q, %s) = %v, want %v", tt.sched, tt.t, got, tt.want)
		}
	}
	// Local time: cron runs in the machine's zone.
	zone := time.FixedZone("CEST", 2*3600)
	if !cronMatches("17 14 * * *", at("2026-06-10T12:17:05Z").In(zone), time.Minute) {
		t.Error("schedule not matched in the observation's zone")
	}
}

func TestStepTool(t *testing.T) {
	tests := map[string]string{
		"/usr/sbin/ntpdate -s pool.ntp.org":          "ntpdate",
		"ntpdate-debian -b":                          "ntpdate",
		"/usr/sbin/ntpdate -q pool.ntp.org":          "",
		"# ntpdate pool.ntp.org":                     "",
		"rdate -s time.example.com":                  "rdate",
		"sntp -S pool.ntp.org":                       "sntp",
		"sntp pool.ntp.org":                          "",
		"/sbin/hwclock --hctosys":                    "hwclock --hctosys",
		"hwclock -s":                                 "hwclock --hctosys",
		"hwclock -w":                                 "",
		"hwclock --systohc":                          "",
		"chronyd -q 'server ntp.example.com iburst'": "chronyd -q",
		"chronyd -Q 'server ntp.example.com'":        "",
		"ntpd -gq":                                   "ntpd -q",
		"ntpd -g":                                    "",
		"date -s '2026-01-01'":                       "date --set",
		"date +%s > /tmp/x":                          "",
		"htpdate -s www.example.com":                 "htpdate",
		"echo update":                                "",
	}
	for line, want := range tests {
		if got := stepTool(line); got != want {
			t.Errorf("stepTool(%q) = %q, want %q", line, got, want)
		}
	}
}

func TestParseAudit(t *testing.T) {
	log := strings.Join([]string{
		// 5.2+: TIME_INJOFFSET with its SYSCALL, comm hex-encoded (it had a space).
		`type=SYSCALL msg=audit(1781092800.120:10): arch=c000003e syscall=305 success=yes exit=0 a0=0 pid=77 comm=6D7920746F6F6C exe="/opt/my tool"` + "\x1d" + `ARCH=x86_64 SYSCALL=clock_adjtime`,
		`type=TIME_INJOFFSET msg=audit(1781092800.120:10): sec=-16 nsec=124887145`,
		`type=TIME_ADJNTPVAL msg=audit(1781092801.000:11): op=freq old=0 new=655360`,
		// Before 5.2: only the syscall; clock_settime of another clock is not a step.
		`type=SYSCALL msg=audit(1781092802.000:12): arch=c00000b7 syscall=112 success=yes exit=0 a0=0 pid=88 comm="date" exe="/bin/date"`,
		`type=SYSCALL msg=audit(1781092803.000:13): arch=c000003e syscall=227 success=yes exit=0 a0=1 pid=89 comm="x" exe="/x"`,
		`type=SYSCALL msg=audit(1781092804.000:14): arch=c000003e syscall=164 success=no exit=-1 a0=7ff pid=90 comm="y" exe="/y"`,
		`garbage line`,
	}, "\n")
	rs := parseAudit(lines([]byte(log)))
	if len(rs) != 3 {
		t.Fatalf("got %d records, want 3: %+v", len(rs), rs)
	}
	if r := rs[0]; r.Kind != "step" || r.Step != -16*time.Second+124887145 || r.Comm != "my tool" || r.Exe != "/opt/my tool" || r.PID != 77 ||
		!r.At.Equal(time.Unix(1781092800, 120e6)) {
		t.Errorf("step record = %+v", r)
	}
	if r := rs[1]; r.Kind != "freq" || r.New != 655360 || r.Comm != "" {
		t.Errorf("freq record = %+v", r)
	}
	if r := rs[2]; r.Kind != "step" || r.Comm != "date" || r.Step != 0 {
		t.Errorf("syscall-only record = %+v", r)
	}
}

func TestPeriod(t *testing.T) {
	t0 := time.Unix(1781092800, 0)
	ts := func(ds ...time.Duration) []time.Time {
		var out []time.Time
		for _, d := range ds {
			out = append(out, t0.Add(d))
		}
		return out
	}
	if p := period(ts(0, 60*time.Second, 121*time.Second, 180*time.Second)); !near(p, time.Minute, 0.05) {
		t.Errorf("period = %v, want about 1m", p)
	}
	if p := period(ts(0, 60*time.Second, 300*time.Second)); p != 0 {
		t.Errorf("irregular period = %v, want 0", p)
	}
	if p := period(ts(0, 60*time.Second)); p != 0 {
		t.Errorf("one interval gives period %v, want 0", p)
	}
}

func TestKernelVersion(t *testing.T) {
	for rel, want := range map[string][2]int{"4.9.0-8-amd64": {4, 9}, "6.18.44-fc": {6, 18}, "5.15.153.1-microsoft-standard-WSL2": {5, 15}} {
		a, b, ok := kernelVersion(rel)
		if !ok || a != want[0] || b != want[1] {
			t.Errorf("kernelVersion(%q) = %d.%d %v", rel, a, b, ok)
		}
	}
}

// TestDirMachineBounded: a FIFO where a crontab should be is skipped at
// once (System opens with O_NONBLOCK), and a huge file is read only in part.
func TestDirMachineBounded(t *testing.T) {
	dir := t.TempDir()
	mk := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("etc/cron.d/real", "0 * * * * root ntpdate pool.ntp.org\n")
	mk("proc/sys/kernel/osrelease", "6.1.0\n")
	if err := syscall.Mkfifo(filepath.Join(dir, "etc/cron.d/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "etc/crontab"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("# padding line\n", 2*maxSmallFile/15) + "0 * * * * root ntpdate late\n"
	mk("etc/cron.d/huge", big)
	// A masked unit (linked to /dev/null) hides the packaged one.
	mk("lib/systemd/system/ntpdate.service", "[Service]\nExecStart=/usr/sbin/ntpdate-debian\n")
	mk("etc/systemd/system/multi-user.target.wants/.keep", "")
	if err := os.Symlink("/dev/null", filepath.Join(dir, "etc/systemd/system/ntpdate.service")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/lib/systemd/system/ntpdate.service", filepath.Join(dir, "etc/systemd/system/multi-user.target.wants/ntpdate.service")); err != nil {
		t.Fatal(err)
	}

	done := make(chan Evidence, 1)
	go func() { done <- Gather(DirMachine(dir)) }()
	var e Evidence
	select {
	case e = <-done:
	case <-time.After(10 * time.Second): // a hang, not a timing assertion
		t.Fatal("Gather blocked on a FIFO")
	}
	if len(e.Jobs) != 1 || e.Jobs[0].Path != "/etc/cron.d/real" {
		t.Errorf("jobs = %+v, want only /etc/cron.d/real (the FIFO skipped, the huge file's tail unread, the masked unit ignored)", e.Jobs)
	}
	if e.KernelRelease != "6.1.0" {
		t.Errorf("KernelRelease = %q", e.KernelRelease)
	}
}
