package hostinfo

import (
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// proc adds a process to a fake root.
func proc(m fstest.MapFS, pid, comm, cmdline string, capEff string) fstest.MapFS {
	m["proc/"+pid+"/comm"] = &fstest.MapFile{Data: []byte(comm + "\n")}
	m["proc/"+pid+"/cmdline"] = &fstest.MapFile{Data: []byte(strings.ReplaceAll(cmdline, " ", "\x00") + "\x00")}
	if capEff != "" {
		m["proc/"+pid+"/status"] = &fstest.MapFile{Data: []byte("Name:\t" + comm + "\nCapEff:\t" + capEff + "\n")}
	}
	return m
}

func with(m fstest.MapFS, kv ...string) fstest.MapFS {
	for k, v := range files(kv...) {
		m[k] = v
	}
	return m
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

const (
	capAll        = "000001ffffffffff"
	capNone       = "0000000000000000"
	debianCrontab = "SHELL=/bin/sh\n" +
		"17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n" +
		"25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }\n"
)

func TestCulprit(t *testing.T) {
	noon := "2026-06-10T12:00:00Z"
	tests := []struct {
		name    string
		fs      fstest.MapFS
		cpuid   string
		obs     func(t *testing.T) Observation
		wantID  string
		wantWho string // substring of Who
		wantFix string // substring of Fix
	}{
		{
			name: "audit names the program",
			fs: with(proc(files(), "812", "chronyd", "/usr/sbin/chronyd -F 1", capAll),
				"var/log/audit/audit.log",
				"type=SYSCALL msg=audit(1781092799.500:880): arch=c000003e syscall=227 success=yes exit=0 a0=0 a1=7ffd items=0 ppid=1 pid=4242 auid=0 uid=0 comm=\"ntpdate\" exe=\"/usr/sbin/ntpdate\" key=\"time-change\"\n"+
					"type=TIME_INJOFFSET msg=audit(1781092799.500:880): sec=-16 nsec=124887145\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -16 * time.Second, At: mustTime(t, "2026-06-10T12:00:00Z")}
			},
			wantID: "audit", wantWho: "ntpdate (pid 4242", wantFix: "/usr/sbin/ntpdate",
		},
		{
			name: "audit record too old is ignored",
			fs: files("var/log/audit/audit.log",
				"type=SYSCALL msg=audit(1781000000.000:1): arch=c000003e syscall=164 success=yes exit=0 a0=7ffd pid=1 comm=\"date\" exe=\"/bin/date\"\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: time.Hour, At: mustTime(t, noon)}
			},
			wantID: "unknown", wantFix: "auditctl",
		},
		{
			name: "audit tick change by vmtoolsd",
			fs: files("var/log/audit/audit.log",
				"type=SYSCALL msg=audit(1781092800.000:9): arch=c000003e syscall=159 success=yes exit=0 pid=700 comm=\"vmtoolsd\" exe=\"/usr/bin/vmtoolsd\"\n"+
					"type=TIME_ADJNTPVAL msg=audit(1781092800.000:9): op=tick old=10000 new=10020\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: TickChange, At: mustTime(t, noon)}
			},
			wantID: "audit", wantWho: "vmtoolsd", wantFix: "time.synchronize.continue",
		},
		{
			name: "hyper-v step without audit record",
			fs: files("proc/modules", "hv_utils 32768 0 - Live 0x0\nhv_vmbus 135168 7 hv_utils, Live 0x0\n",
				"proc/sys/kernel/osrelease", "6.1.0-13-cloud-amd64\n",
				"sys/bus/vmbus/devices/2dd1ce17-079e-403c-b352-a1921ee207ee/class_id", "{9527e630-d0ae-497b-adce-e80ab0175caf}\n",
				"var/log/audit/audit.log", ""),
			cpuid: "Microsoft Hv",
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -3 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "hyperv-timesync", wantFix: "echo 2dd1ce17-079e-403c-b352-a1921ee207ee > /sys/bus/vmbus/drivers/hv_utils/unbind",
		},
		{
			name: "wsl2 implicit sync after standby",
			fs: files("sys/module/hv_utils/parameters/timesync_implicit", "Y\n",
				"proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 40 * time.Minute, At: mustTime(t, noon)}
			},
			wantID: "hyperv-timesync", wantFix: "timesync_implicit=0",
		},
		{
			name: "vmware tick change",
			fs:   proc(files("proc/modules", "vmw_balloon 28672 0 - Live 0x0\n"), "700", "vmtoolsd", "/usr/bin/vmtoolsd", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: TickChange, At: mustTime(t, noon)}
			},
			wantID: "vmware-tools", wantWho: "pid 700", wantFix: "vmware-toolbox-cmd timesync disable",
		},
		{
			name: "vmware periodic forward steps beat chronyd",
			fs: proc(proc(files(), "700", "vmtoolsd", "/usr/bin/vmtoolsd", capAll),
				"800", "chronyd", "/usr/sbin/chronyd", capAll),
			cpuid: "VMwareVMware",
			obs: func(t *testing.T) Observation {
				at := mustTime(t, noon)
				return Observation{Kind: Step, Offset: 2 * time.Second, At: at,
					Earlier: []time.Time{at.Add(-180 * time.Second), at.Add(-120 * time.Second), at.Add(-60 * time.Second)}}
			},
			wantID: "vmware-tools", wantFix: "tools.syncTime",
		},
		{
			name: "a backward step on resume goes to the hypervisor agent",
			fs: proc(proc(files(), "700", "vmtoolsd", "/usr/bin/vmtoolsd", capAll),
				"800", "chronyd", "/usr/sbin/chronyd", capAll),
			cpuid: "VMwareVMware",
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -5 * time.Second, At: mustTime(t, noon), Resumed: true}
			},
			wantID: "vmware-tools",
		},
		{
			name: "openntpd's processes are one suspect",
			fs: proc(proc(proc(files(), "300", "ntpd", "/usr/sbin/ntpd -f /etc/openntpd/ntpd.conf", capAll),
				"301", "ntpd", "ntpd: ntp engine", capNone), "302", "ntpd", "ntpd: dns engine", capNone),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Slew, Offset: 80 * time.Millisecond, At: mustTime(t, noon)}
			},
			wantID: "ntpd", wantWho: "pid 300",
		},
		{
			name: "virtualbox slews every 10 s",
			fs:   proc(files("sys/class/dmi/id/product_name", "VirtualBox\n"), "600", "VBoxService", "/usr/sbin/VBoxService --pidfile /var/run/vboxadd-service.sh", capAll),
			obs: func(t *testing.T) Observation {
				at := mustTime(t, noon)
				return Observation{Kind: Slew, Offset: 150 * time.Millisecond, At: at,
					Earlier: []time.Time{at.Add(-30 * time.Second), at.Add(-20 * time.Second), at.Add(-10 * time.Second)}}
			},
			wantID: "virtualbox-ga", wantFix: "--disable-timesync",
		},
		{
			name: "virtualbox step over 20 minutes",
			fs:   proc(files(), "600", "VBoxService", "/usr/sbin/VBoxService", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -25 * time.Minute, At: mustTime(t, noon)}
			},
			wantID: "virtualbox-ga", wantFix: "GetHostTimeDisabled",
		},
		{
			name: "virtualbox with timesync disabled is not a suspect",
			fs:   proc(files(), "600", "VBoxService", "/usr/sbin/VBoxService --disable-timesync", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -25 * time.Minute, At: mustTime(t, noon)}
			},
			wantID: "unknown",
		},
		{
			name:  "qemu guest agent",
			fs:    proc(files(), "500", "qemu-ga", "/usr/sbin/qemu-ga", capAll),
			cpuid: "KVMKVMKVM",
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 30 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "qemu-ga", wantFix: "--block-rpcs=guest-set-time",
		},
		{
			name: "gce guest agent",
			fs: proc(files("sys/class/dmi/id/product_name", "Google Compute Engine\n"),
				"400", "google_guest_ag", "/usr/bin/google_guest_agent", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 4 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "gce-agent", wantFix: "clock_skew_daemon = false",
		},
		{
			name: "xen restore",
			fs:   files("proc/xen/capabilities", ""),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 90 * time.Second, At: mustTime(t, noon), Resumed: true}
			},
			wantID: "xen",
		},
		{
			name:  "kvm host pause",
			fs:    files(),
			cpuid: "KVMKVMKVM",
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Gap, Offset: 5 * time.Minute, At: mustTime(t, noon)}
			},
			wantID: "host-pause", wantFix: "ptp_kvm",
		},
		{
			name: "gap on bare metal is unknown",
			fs:   files(),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Gap, Offset: 5 * time.Minute, At: mustTime(t, noon)}
			},
			wantID: "unknown",
		},
		{
			name: "chronyd steps",
			fs:   proc(files(), "800", "chronyd", "/usr/sbin/chronyd -F 1", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -2 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "chronyd", wantFix: "systemctl disable --now chrony",
		},
		{
			name: "chronyd -x is not a suspect",
			fs:   proc(files(), "800", "chronyd", "/usr/sbin/chronyd -x -d", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -2 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "unknown",
		},
		{
			name: "a daemon without CAP_SYS_TIME loses to one with it",
			fs: proc(proc(files(), "800", "chronyd", "/usr/sbin/chronyd", capNone),
				"900", "systemd-timesyn", "/lib/systemd/systemd-timesyncd", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: time.Second, At: mustTime(t, noon)}
			},
			wantID: "timesyncd", wantFix: "timedatectl set-ntp false",
		},
		{
			name: "ntpd changes the frequency",
			fs:   proc(files(), "300", "ntpd", "/usr/sbin/ntpd -p /run/ntpd.pid -g -u 105:111", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: FreqChange, At: mustTime(t, noon)}
			},
			wantID: "ntpd", wantFix: "ntpsec",
		},
		{
			name: "ntpd-rs steps",
			fs:   proc(files(), "300", "ntp-daemon", "/usr/bin/ntp-daemon", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 50 * time.Millisecond, At: mustTime(t, noon)}
			},
			wantID: "ntpd-rs",
		},
		{
			name: "phc2sys",
			fs:   proc(files(), "300", "phc2sys", "/usr/sbin/phc2sys -a -r", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: FreqChange, At: mustTime(t, noon)}
			},
			wantID: "phc2sys",
		},
		{
			name: "ntpdate running now",
			fs:   proc(files(), "4242", "ntpdate", "/usr/sbin/ntpdate -b pool.ntp.org", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 3 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "one-shot", wantWho: "ntpdate (pid 4242)",
		},
		{
			name: "ntpdate -q running now sets nothing",
			fs:   proc(files(), "4242", "ntpdate", "/usr/sbin/ntpdate -q pool.ntp.org", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 3 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "unknown",
		},
		{
			name: "cron.hourly ntpdate at :17 beats a running timesyncd",
			fs: proc(files("etc/crontab", debianCrontab,
				"etc/cron.hourly/ntpsync", "#!/bin/sh\n# keep time\n/usr/sbin/ntpdate -s pool.ntp.org\n"),
				"900", "systemd-timesyn", "/lib/systemd/systemd-timesyncd", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -1500 * time.Millisecond, At: mustTime(t, "2026-06-10T14:17:04Z")}
			},
			wantID: "cron", wantWho: "/etc/cron.hourly/ntpsync", wantFix: "delete /etc/cron.hourly/ntpsync",
		},
		{
			name: "cron.d entry at its minute",
			fs:   files("etc/cron.d/timefix", "MAILTO=root\n*/30 * * * * root /usr/sbin/rdate -s time.example.com\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 2 * time.Second, At: mustTime(t, "2026-06-10T14:30:02Z")}
			},
			wantID: "cron", wantFix: "line 2 of /etc/cron.d/timefix",
		},
		{
			name: "user crontab",
			fs:   files("var/spool/cron/crontabs/root", "# m h dom mon dow command\n0 4 * * * /sbin/hwclock --hctosys\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -40 * time.Second, At: mustTime(t, "2026-06-10T04:00:01Z")}
			},
			wantID: "cron", wantWho: "/var/spool/cron/crontabs/root",
		},
		{
			name: "ntpdate in cron slews small offsets",
			fs:   files("etc/cron.d/ntp", "5 * * * * root ntpdate-debian\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Slew, Offset: 200 * time.Millisecond, At: mustTime(t, "2026-06-10T09:05:03Z")}
			},
			wantID: "cron",
		},
		{
			name: "dhclient hook",
			fs:   files("etc/dhcp/dhclient-exit-hooks.d/ntpdate", "case $reason in BOUND|RENEW) /usr/sbin/ntpdate-debian -b ;; esac\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 2 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "hook", wantFix: "move it out of /etc/dhcp/dhclient-exit-hooks.d",
		},
		{
			name: "network-manager dispatcher",
			fs:   files("etc/NetworkManager/dispatcher.d/10-time", "#!/bin/sh\n[ \"$2\" = up ] && chronyd -q 'pool pool.ntp.org iburst'\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 2 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "hook",
		},
		{
			name: "systemd timer",
			fs: files("etc/systemd/system/timers.target.wants/settime.timer", "",
				"etc/systemd/system/settime.timer", "[Timer]\nOnCalendar=hourly\n",
				"usr/lib/systemd/system/settime.service", "[Service]\nType=oneshot\nExecStart=/usr/sbin/sntp -S pool.ntp.org\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 2 * time.Second, At: mustTime(t, noon)}
			},
			wantID: "timer", wantFix: "systemctl disable --now settime.timer settime.service",
		},
		{
			name: "enabled boot service",
			fs: files("etc/systemd/system/multi-user.target.wants/rdate.service", "",
				"lib/systemd/system/rdate.service", "[Service]\nExecStart=/usr/bin/rdate -s time.example.com\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: 2 * time.Second, At: mustTime(t, noon), SinceBoot: time.Minute}
			},
			wantID: "unit", wantFix: "systemctl disable --now rdate.service",
		},
		{
			name: "leap second",
			fs:   proc(files(), "800", "chronyd", "/usr/sbin/chronyd", capAll),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -time.Second, At: mustTime(t, "2026-12-31T23:59:59Z").Add(time.Second + 2*time.Millisecond), LeapArmed: true}
			},
			wantID: "leap",
		},
		{
			name: "rtc in local time",
			fs:   files("etc/adjtime", "0.0 0 0\n0\nLOCAL\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: -2 * time.Hour, At: mustTime(t, noon), SinceBoot: 8 * time.Second}
			},
			wantID: "rtc-local", wantFix: "timedatectl set-local-rtc 0",
		},
		{
			name: "nothing explains it",
			fs:   files("proc/sys/kernel/osrelease", "6.1.0-13-amd64\n"),
			obs: func(t *testing.T) Observation {
				return Observation{Kind: Step, Offset: time.Second, At: mustTime(t, noon)}
			},
			wantID: "unknown", wantFix: "auditctl -a always,exit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Machine{FS: tt.fs}
			if tt.cpuid != "" {
				m.CPUID = fakeCPUID(tt.cpuid)
			}
			obs := tt.obs(t)
			ranked := FindSuspects(m, obs)
			if last := ranked[len(ranked)-1]; last.ID != "unknown" {
				t.Errorf("the list does not end with unknown: %+v", last)
			}
			got := ranked[0]
			if got != Culprit(Gather(m), obs) {
				t.Errorf("Culprit differs from the head of FindSuspects")
			}
			if got.ID != tt.wantID || !strings.Contains(got.Who, tt.wantWho) || !strings.Contains(got.Fix, tt.wantFix) {
				for _, s := range ranked {
					t.Logf("  %3d %-16s %s | %s | %s", s.Score, s.ID, s.Who, s.Why, s.Fix)
				}
				t.Fatalf("culprit %q (%s), want %q with who~%q fix~%q", got.ID, got.Who, tt.wantID, tt.wantWho, tt.wantFix)
			}
			ids := map[string]int{}
			for _, s := range ranked {
				if ids[s.ID+s.Fix]++; ids[s.ID+s.Fix] > 1 {
					t.Errorf("suspect %s listed twice", s)
				}
			}
			if got.Why == "" || got.Fix == "" {
				t.Errorf("culprit without evidence or fix: %+v", got)
			}
		})
	}
}
