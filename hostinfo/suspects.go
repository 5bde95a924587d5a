package hostinfo

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is what kind of foreign change slewd saw.
type Kind int

const (
	// Step: REALTIME jumped (the CANCEL_ON_SET timerfd fired and
	// Δ(REALTIME−MONOTONIC) ≠ 0, not by slewd).
	Step Kind = iota + 1
	// Slew: an adjtime() singleshot offset slewd did not write.
	Slew
	// TickChange: the kernel tick changed under slewd.
	TickChange
	// FreqChange: frequency, PLL offset or status changed under slewd.
	FreqChange
	// Gap: NTP (or a host PHC) shows the clock jumped with no kernel
	// event at all: the host paused or restored the VM.
	Gap
)

func (k Kind) String() string {
	switch k {
	case Step:
		return "step"
	case Slew:
		return "slew"
	case TickChange:
		return "tick change"
	case FreqChange:
		return "frequency change"
	case Gap:
		return "gap"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Observation is one foreign change of the clock, as slewd measured it.
type Observation struct {
	Kind Kind
	// Offset is the change of REALTIME: for a Step Δ(REALTIME−MONOTONIC),
	// positive forward; for a Slew the foreign pending adjtime offset;
	// for a Gap the jump NTP saw (positive: the clock was behind).
	Offset time.Duration
	// At is when it was seen. Cron schedules are matched in At's location.
	At time.Time
	// SinceBoot is CLOCK_BOOTTIME at the event (0 when unknown).
	SinceBoot time.Duration
	// Resumed: the machine came back from a suspend just before
	// (Δ(BOOTTIME−MONOTONIC) > 0), where agents do one-time syncs.
	Resumed bool
	// LeapArmed: STA_INS or STA_DEL was set before the event.
	LeapArmed bool
	// Earlier holds the times of earlier foreign changes of the same kind,
	// oldest first, to see a period.
	Earlier []time.Time
}

// Suspect is one possible mover of the clock.
type Suspect struct {
	ID    string `json:"id"`    // stable key: "hyperv-timesync", "vmware-tools", "cron", ...
	Who   string `json:"who"`   // in words, e.g. "VMware Tools (vmtoolsd, pid 812)"
	Why   string `json:"why"`   // the evidence that names it
	Fix   string `json:"fix"`   // the exact change that stops it: in the guest, then on the host
	Score int    `json:"score"` // higher is likelier for this observation; only for ordering
}

// FindSuspects gathers the evidence on m and ranks it for obs.
func FindSuspects(m Machine, obs Observation) []Suspect {
	return Rank(Gather(m), obs)
}

// Culprit is the likeliest suspect for obs; "unknown" with the audit rules
// that would name it next time when nothing on the machine explains it.
func Culprit(e Evidence, obs Observation) Suspect {
	return Rank(e, obs)[0]
}

// auditRules is the fix when nothing explains a change: make the kernel
// name the program next time (foreign-steps.md §2.1; clock_adjtime added
// because 30-stig.rules leaves it out).
const auditRules = "add audit rules so the kernel names the program next time: " +
	"auditctl -a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_adjtime -F key=time-change; " +
	"auditctl -a always,exit -F arch=b64 -S clock_settime -F a0=0x0 -F key=time-change " +
	"(make them permanent in /etc/audit/rules.d/time-change.rules)"

// Rank returns the suspects that could have made obs, likeliest first,
// always ending with "unknown". It does no I/O. The weights are judgement
// (foreign-steps.md §2.6 and §3); only their order matters.
func Rank(e Evidence, obs Observation) []Suspect {
	var out []Suspect
	add := func(s Suspect) {
		if s.Score > 0 {
			out = append(out, s)
		}
	}
	per := period(append(slices.Clone(obs.Earlier), obs.At))
	dir := "forward"
	if obs.Offset < 0 {
		dir = "backward"
	}
	abs := obs.Offset
	if abs < 0 {
		abs = -abs
	}

	// The kernel's own audit record is the best witness.
	for _, r := range e.Audit {
		if d := obs.At.Sub(r.At); d < -2*time.Second || d > 10*time.Second || !auditKindFits(r.Kind, obs.Kind) {
			continue
		}
		add(auditSuspect(r))
	}

	// A leap second: -1 s (or +1 s) at midnight UTC with STA_INS/DEL armed.
	if obs.Kind == Step && obs.LeapArmed && near(abs, time.Second, 0.05) {
		u := obs.At.UTC()
		if s := u.Hour()*3600 + u.Minute()*60 + u.Second(); s < 5 || s > 86395 {
			add(Suspect{ID: "leap", Who: "the kernel's leap second", Score: 95,
				Why: fmt.Sprintf("a %s step of %v at midnight UTC with a leap second armed", dir, obs.Offset),
				Fix: "nothing to stop: a leap second announced by the servers; apply slewd's leap policy"})
		}
	}

	// The RTC kept in local time: the first settimeofday warps by the zone offset.
	if obs.Kind == Step && obs.SinceBoot > 0 && obs.SinceBoot < 10*time.Minute && abs >= 15*time.Minute &&
		abs%(15*time.Minute) < 2*time.Second {
		s := Suspect{ID: "rtc-local", Who: "the RTC kept in local time", Score: 40,
			Why: fmt.Sprintf("a step of %v (a whole number of quarter hours) %v after boot", obs.Offset, obs.SinceBoot.Round(time.Second)),
			Fix: "keep the RTC in UTC: timedatectl set-local-rtc 0 (or write UTC on line 3 of /etc/adjtime)"}
		if e.RTCLocal {
			s.Score, s.Why = 90, s.Why+"; /etc/adjtime says LOCAL"
		}
		add(s)
	}

	add(hypervSuspect(e, obs, per))
	add(vmwareSuspect(e, obs, per, dir))
	add(vboxSuspect(e, obs, per, abs))
	for _, p := range e.Processes {
		add(processSuspect(p, obs, abs))
	}
	for _, j := range e.Jobs {
		add(jobSuspect(j, obs, per, abs))
	}
	add(xenSuspect(e, obs))
	add(pauseSuspect(e, obs))

	slices.SortStableFunc(out, func(a, b Suspect) int { return cmp.Compare(b.Score, a.Score) })
	// One entry per remedy: OpenNTPD's three ntpd processes, say, are one suspect.
	seen := map[string]bool{}
	out = slices.DeleteFunc(out, func(s Suspect) bool {
		k := s.ID + "\x00" + s.Fix
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
	why := "nothing on this machine explains a " + obs.Kind.String()
	if len(e.Unreadable) > 0 {
		why += "; could not read " + strings.Join(e.Unreadable, ", ") + " (run as root to look there)"
	}
	if e.AuditSeen {
		why += "; the audit log has no record of it, so an in-kernel agent or a program outside the audit rules did it"
	}
	return append(out, Suspect{ID: "unknown", Who: "unknown", Why: why, Fix: auditRules, Score: 1})
}

// String is the suspect for a log line.
func (s Suspect) String() string {
	return s.Who + ": " + s.Why + ". Fix: " + s.Fix
}

func auditKindFits(k string, obs Kind) bool {
	switch obs {
	case Step:
		return k == "step"
	case Slew:
		return k == "adjust" || k == "offset"
	case TickChange:
		return k == "tick"
	case FreqChange:
		return k == "freq" || k == "offset" || k == "status"
	}
	return false
}

func auditSuspect(r AuditRecord) Suspect {
	who := r.Comm
	if who == "" {
		who = "a program (the audit log has no SYSCALL record for it)"
	}
	what := r.Kind
	if r.Kind == "step" && r.Step != 0 {
		what = fmt.Sprintf("step of %v", r.Step)
	} else if r.Kind != "step" {
		what = fmt.Sprintf("%s %d → %d", r.Kind, r.Old, r.New)
	}
	s := Suspect{ID: "audit", Score: 100,
		Who: fmt.Sprintf("%s (pid %d, %s)", who, r.PID, r.Exe),
		Why: fmt.Sprintf("the audit log records a %s by comm=%q exe=%q at %s (event %d)", what, r.Comm, r.Exe, r.At.UTC().Format(time.RFC3339), r.Serial),
	}
	if f, ok := fixByComm(r.Comm); ok {
		s.Fix = f
	} else {
		s.Fix = fmt.Sprintf("find what starts %s (its parent pid, cron, systemd units, scripts) and stop it; "+
			"one program only should discipline the clock", nonEmpty(r.Exe, r.Comm))
	}
	return s
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Fixes, guest first then host (foreign-steps.md §2.2, §3).
const (
	fixVMware = "guest: vmware-toolbox-cmd timesync disable (stops the periodic sync only); " +
		"host, with the VM powered off, in its .vmx (VMware KB 1189): tools.syncTime = \"0\", " +
		"time.synchronize.continue = \"0\", time.synchronize.restore = \"0\", time.synchronize.resume.disk = \"0\", " +
		"time.synchronize.shrink = \"0\", time.synchronize.tools.startup = \"0\", time.synchronize.tools.enable = \"0\", " +
		"time.synchronize.resume.host = \"0\""
	fixVBox = "guest: run VBoxService with --disable-timesync (or raise --timesync-set-threshold and pass " +
		"--timesync-set-on-restore 0); host: VBoxManage setextradata <vm> " +
		"\"VBoxInternal/Devices/VMMDev/0/Config/GetHostTimeDisabled\" 1, or VBoxManage guestproperty set <vm> " +
		"\"/VirtualBox/GuestAdd/VBoxService/--disable-timesync\" 1"
	fixQGA = "guest: start qemu-ga with --block-rpcs=guest-set-time; host: stop calling it — no " +
		"virsh domtime --now/--time/--sync, SYNC_TIME=0 in libvirt-guests' config (OpenStack nova and KubeVirt call it " +
		"after migration and resume)"
	fixGCE = "guest: set clock_skew_daemon = false under [Daemons] in /etc/default/instance_configs.cfg, " +
		"then systemctl restart google-guest-agent"
	fixChrony     = "run one time daemon only: systemctl disable --now chrony (chronyd on Red Hat), or start chronyd with -x so it leaves the clock alone"
	fixNtpd       = "run one time daemon only: systemctl disable --now ntp ntpsec openntpd (whichever is installed)"
	fixNtpdRS     = "run one time daemon only: systemctl disable --now ntpd-rs"
	fixTimesyncd  = "timedatectl set-ntp false (stops and disables systemd-timesyncd)"
	fixPhc2sys    = "systemctl disable --now phc2sys (or drop -s/-a so phc2sys does not steer CLOCK_REALTIME)"
	fixHtpdate    = "systemctl disable --now htpdate"
	fixTimemaster = "systemctl disable --now timemaster (it runs chronyd or ntpd and phc2sys)"
)

func fixByComm(comm string) (string, bool) {
	switch comm {
	case "vmtoolsd":
		return fixVMware, true
	case "VBoxService":
		return fixVBox, true
	case "qemu-ga":
		return fixQGA, true
	case "google_guest_ag", "google_clock_sk":
		return fixGCE, true
	case "chronyd":
		return fixChrony, true
	case "ntpd":
		return fixNtpd, true
	case "ntp-daemon":
		return fixNtpdRS, true
	case "systemd-timesyn":
		return fixTimesyncd, true
	case "phc2sys":
		return fixPhc2sys, true
	case "htpdate":
		return fixHtpdate, true
	case "timemaster":
		return fixTimemaster, true
	}
	return "", false
}

func hasModule(e Evidence, name string) bool { return slices.Contains(e.Modules, name) }

func findProc(e Evidence, comm string) (Process, bool) {
	for _, p := range e.Processes {
		if p.Comm == comm {
			return p, true
		}
	}
	return Process{}, false
}

// kernelVersion parses "6.1.0-13-amd64" into 6, 1.
func kernelVersion(rel string) (major, minor int, ok bool) {
	a, rest, _ := strings.Cut(rel, ".")
	b := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		b = rest[:i]
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	return x, y, err1 == nil && err2 == nil
}

// hypervSuspect: hv_utils steps in the kernel, so it has no process and
// leaves no audit record (foreign-steps.md §3, HVU).
func hypervSuspect(e Evidence, obs Observation, per time.Duration) Suspect {
	if !hasModule(e, "hv_utils") {
		return Suspect{}
	}
	s := Suspect{ID: "hyperv-timesync", Who: "Hyper-V TimeSync (the kernel's hv_utils)"}
	why := []string{"hv_utils is loaded"}
	if e.Virt.Container == "wsl" {
		why = append(why, "this is WSL2, which boots with hv_utils.timesync_implicit=1")
	}
	if _, ok := findProc(e, "waagent"); ok {
		why = append(why, "the Azure agent runs: Azure's VMICTimeSync steps the guest after host maintenance")
	}
	maj, min, ok := kernelVersion(e.KernelRelease)
	old := ok && (maj < 4 || maj == 4 && min <= 10)
	switch obs.Kind {
	case Step:
		s.Score = 50
		if old {
			s.Score += 10
			why = append(why, fmt.Sprintf("kernel %s steps on Hyper-V time samples too (≤4.8: the first 50; 4.9–4.10: every 5 s)", e.KernelRelease))
			if near(per, 5*time.Second, 0.2) {
				s.Score += 30
				why = append(why, "the steps come every 5 s, as TimeSync samples do")
			}
		} else {
			why = append(why, "it steps either way on a host SYNC message: restore, pause/resume, and after host maintenance")
		}
		if (e.HVTimesyncImplicit == "Y" || e.HVTimesyncImplicit == "1") && obs.Offset >= 5*time.Second {
			s.Score += 20
			why = append(why, "timesync_implicit is on and the clock went forward by ≥5 s, as it does after modern standby")
		}
		if e.AuditSeen {
			s.Score += 15
			why = append(why, "the audit log has no record of the step, as for an in-kernel step")
		}
		if obs.Resumed {
			s.Score += 10
		}
	default:
		return Suspect{} // hv_utils only steps
	}
	dev := "<the device whose class_id is " + hvTSClass + ">"
	if e.HVTimesyncDevice != "" {
		dev = e.HVTimesyncDevice
	}
	s.Why = strings.Join(why, "; ")
	s.Fix = "guest: echo " + dev + " > /sys/bus/vmbus/drivers/hv_utils/unbind (this also removes /dev/ptp_hyperv)"
	if e.HVTimesyncImplicit == "Y" || e.HVTimesyncImplicit == "1" {
		s.Fix += "; for the implicit syncs alone: echo N > /sys/module/hv_utils/parameters/timesync_implicit, and boot with hv_utils.timesync_implicit=0"
	}
	s.Fix += "; host: turn off the VM's \"Time Synchronization\" integration service " +
		"(Disable-VMIntegrationService -VMName <vm> -Name \"Time Synchronization\"); on Azure the host side cannot be changed: " +
		"keep it and let the time daemon follow /dev/ptp_hyperv instead"
	return s
}

// vmwareSuspect: vmtoolsd steps forward when behind, slews with ADJ_TICK,
// writes tick back to 10000 when done (foreign-steps.md §3, OVT).
func vmwareSuspect(e Evidence, obs Observation, per time.Duration, dir string) Suspect {
	p, running := findProc(e, "vmtoolsd")
	platform := e.Virt.Virtualization == "vmware" || hasModule(e, "vmw_balloon") || hasModule(e, "vmw_vmci") || hasModule(e, "vmwgfx")
	if !running && !platform {
		return Suspect{}
	}
	s := Suspect{ID: "vmware-tools", Who: "VMware Tools (vmtoolsd)", Fix: fixVMware}
	var why []string
	base := 10 // VMware without vmtoolsd seen: nothing in the guest to step it
	if running {
		s.Who = fmt.Sprintf("VMware Tools (vmtoolsd, pid %d)", p.PID)
		why = append(why, "vmtoolsd runs")
		base = 45
	} else {
		why = append(why, "this is a VMware guest, but vmtoolsd was not seen")
	}
	switch obs.Kind {
	case TickChange:
		s.Score = base + 45
		why = append(why, "VMware Tools slews with ADJ_TICK and writes tick 10000 back when it stops: nothing else usually touches the tick")
	case Step:
		s.Score = base
		if obs.Offset > 0 {
			s.Score += 10
			why = append(why, "its periodic sync steps forward when the guest is behind by more than the host's maxTimeError")
			if near(per, 60*time.Second, 0.1) {
				s.Score += 30
				why = append(why, "the steps come every 60 s, its sync period")
			}
		} else {
			why = append(why, "it steps "+dir+" only in one-time syncs (startup, resume, snapshot revert) when the VMX allows")
		}
		if obs.Resumed {
			s.Score += 15
			why = append(why, "right after a resume, when it does a one-time sync")
		}
	default:
		return Suspect{}
	}
	s.Why = strings.Join(why, "; ")
	return s
}

// vboxSuspect: VBoxService slews with adjtime() every 10 s and steps past
// 20 minutes or on restore (foreign-steps.md §3, VBX).
func vboxSuspect(e Evidence, obs Observation, per time.Duration, abs time.Duration) Suspect {
	p, running := findProc(e, "VBoxService")
	platform := e.Virt.Virtualization == "oracle" || hasModule(e, "vboxguest")
	if !running && !platform {
		return Suspect{}
	}
	s := Suspect{ID: "virtualbox-ga", Who: "VirtualBox Guest Additions (VBoxService)", Fix: fixVBox}
	var why []string
	base := 10
	if running {
		s.Who = fmt.Sprintf("VirtualBox Guest Additions (VBoxService, pid %d)", p.PID)
		why = append(why, "VBoxService runs")
		base = 45
		if strings.Contains(p.Cmdline, "--disable-timesync") {
			return Suspect{}
		}
	} else {
		why = append(why, "this is a VirtualBox guest, but VBoxService was not seen")
	}
	switch obs.Kind {
	case Slew:
		s.Score = base + 20
		why = append(why, "it slews with adjtime() when the guest drifts more than 100 ms from the host")
		if near(per, 10*time.Second, 0.2) {
			s.Score += 30
			why = append(why, "every 10 s, its sync interval")
		}
	case Step:
		s.Score = base
		if abs >= 20*time.Minute {
			s.Score += 30
			why = append(why, "the step is over 20 minutes, its set threshold, either direction")
		}
		if obs.Resumed {
			s.Score += 20
			why = append(why, "after a restore it steps at once (--timesync-set-on-restore is on by default)")
		}
	default:
		return Suspect{}
	}
	s.Why = strings.Join(why, "; ")
	return s
}

// processSuspect covers the other daemons and agents (foreign-steps.md §2.2).
func processSuspect(p Process, obs Observation, abs time.Duration) Suspect {
	s := Suspect{Who: fmt.Sprintf("%s (pid %d)", p.Comm, p.PID)}
	why := []string{fmt.Sprintf("%s runs: %s", p.Comm, p.Cmdline)}
	stepAbove := time.Duration(0) // steps only above this offset
	slews, steps := false, true
	switch p.Comm {
	case "chronyd":
		if hasFlag(p.Cmdline, 'x') {
			return Suspect{} // -x: it does not control the clock
		}
		s.ID, s.Score, s.Fix = "chronyd", 35, fixChrony
		why = append(why, "chronyd steps with makestep (by default in its first updates) and steers frequency and tick")
		slews = obs.Kind == FreqChange || obs.Kind == TickChange
	case "ntpd":
		s.ID, s.Score, s.Fix = "ntpd", 35, fixNtpd
		stepAbove = 128 * time.Millisecond
		why = append(why, "ntpd (ntp.org/NTPsec) steps offsets over 0.128 s that last past its stepout; OpenNTPD and busybox ntpd slew with adjtime()")
		slews = obs.Kind == FreqChange || obs.Kind == Slew
	case "ntp-daemon":
		s.ID, s.Score, s.Fix = "ntpd-rs", 35, fixNtpdRS
		stepAbove = 10 * time.Millisecond
		why = append(why, "ntpd-rs steps offsets over its 10 ms step threshold")
		slews = obs.Kind == FreqChange
	case "systemd-timesyn":
		s.ID, s.Score, s.Fix = "timesyncd", 35, fixTimesyncd
		stepAbove = 400 * time.Millisecond
		why = append(why, "systemd-timesyncd steps offsets of 0.4 s and more and slews smaller ones with the kernel PLL")
		slews = obs.Kind == FreqChange
	case "phc2sys":
		s.ID, s.Score, s.Fix = "phc2sys", 35, fixPhc2sys
		why = append(why, "phc2sys steers CLOCK_REALTIME to a PTP clock")
		slews = obs.Kind == FreqChange
	case "timemaster":
		s.ID, s.Score, s.Fix = "timemaster", 30, fixTimemaster
		slews = obs.Kind == FreqChange
	case "htpdate":
		s.ID, s.Score, s.Fix = "htpdate", 35, fixHtpdate
		slews = obs.Kind == Slew
	case "qemu-ga":
		s.ID, s.Score, s.Fix = "qemu-ga", 40, fixQGA
		why = append(why, "the QEMU guest agent sets the clock (settimeofday, or hwclock -s) when the host calls guest-set-time, typically after a pause, restore or migration")
		steps, slews = true, false
		if obs.Resumed || obs.Offset > 0 {
			s.Score += 10
		}
	case "google_guest_ag", "google_clock_sk":
		s.ID, s.Score, s.Fix = "gce-agent", 40, fixGCE
		why = append(why, "the GCE guest agent runs hwclock --hctosys after a migration or a stop/start")
	case "ntpdate", "sntp", "rdate", "hwclock", "date":
		if stepTool(p.Cmdline) == "" {
			return Suspect{} // ntpdate -q, hwclock -w, a plain date: they set nothing
		}
		s.ID, s.Score, s.Fix = "one-shot", 80, fmt.Sprintf("find what starts %q (pid %d): its parent, cron, hooks, units; remove that call", p.Cmdline, p.PID)
		why = append(why, "a clock-setting tool was running when slewd looked")
		slews = obs.Kind == Slew && p.Comm == "ntpdate"
	default:
		return Suspect{} // waagent, amazon-ssm-agent: platform evidence only
	}
	if p.CapSysTime != nil && !*p.CapSysTime {
		s.Score = 3
		why = append(why, "but it lacks CAP_SYS_TIME, so it cannot change the clock")
	}
	switch {
	case obs.Kind == Step && steps:
		if stepAbove > 0 && abs < stepAbove {
			s.Score /= 4
			why = append(why, fmt.Sprintf("though the step (%v) is below its %v threshold", obs.Offset, stepAbove))
		}
	case obs.Kind != Step && obs.Kind != Gap && slews:
	default:
		return Suspect{}
	}
	s.Why = strings.Join(why, "; ")
	return s
}

// hasFlag says whether a command line has a short option letter (-x, -dx).
func hasFlag(cmd string, letter byte) bool {
	for _, f := range strings.Fields(cmd) {
		if len(f) > 1 && f[0] == '-' && f[1] != '-' && strings.IndexByte(f[1:], letter) >= 0 {
			return true
		}
	}
	return false
}

// jobSuspect: a cron entry, hook or unit that runs a setter.
func jobSuspect(j Job, obs Observation, per time.Duration, abs time.Duration) Suspect {
	s := Suspect{ID: j.Kind, Who: fmt.Sprintf("%s %s", j.Kind, j.Path), Score: 25}
	why := []string{fmt.Sprintf("%s line %d runs %s: %s", j.Path, j.Line, j.Tool, j.Command)}
	switch j.Kind {
	case "cron":
		s.Fix = fmt.Sprintf("delete or comment out line %d of %s", j.Line, j.Path)
		if strings.HasPrefix(j.Path, "/etc/cron.") && !strings.HasPrefix(j.Path, "/etc/cron.d/") {
			s.Fix = fmt.Sprintf("delete %s (or chmod -x it: run-parts skips it then)", j.Path)
		}
		if j.Schedule != "" && cronMatches(j.Schedule, obs.At, 3*time.Minute) {
			s.Score += 60
			why = append(why, fmt.Sprintf("its schedule %q fits the time seen, %s", j.Schedule, obs.At.Format("15:04:05 MST")))
		}
		if per > 0 && cronPeriod(j.Schedule, per) {
			s.Score += 20
			why = append(why, fmt.Sprintf("and the changes repeat every %v", per.Round(time.Second)))
		}
	case "hook":
		s.Score = 20
		s.Fix = fmt.Sprintf("delete %s or move it out of %s (dhclient sources its hooks, so chmod -x is not enough)", j.Path, j.Path[:strings.LastIndexByte(j.Path, '/')])
		why = append(why, "it runs when a network interface comes up or DHCP renews")
	case "timer":
		s.Score = 30
		unit := j.Path[strings.LastIndexByte(j.Path, '/')+1:]
		tmr, _, _ := strings.Cut(j.Schedule, " ")
		s.Fix = fmt.Sprintf("systemctl disable --now %s %s", tmr, unit)
		why = append(why, "started by "+j.Schedule)
	case "unit":
		s.Fix = "systemctl disable --now " + j.Path[strings.LastIndexByte(j.Path, '/')+1:]
		why = append(why, "an enabled service, run at boot")
		if obs.SinceBoot > 0 && obs.SinceBoot < 10*time.Minute {
			s.Score += 20
		}
	}
	switch obs.Kind {
	case Step:
		if j.Tool == "ntpdate" && abs < 500*time.Millisecond {
			s.Score /= 3
			why = append(why, "though ntpdate slews, not steps, offsets under 0.5 s")
		}
	case Slew:
		if j.Tool != "ntpdate" && j.Tool != "sntp" {
			return Suspect{}
		}
		if abs >= 500*time.Millisecond {
			s.Score /= 3
		}
	default:
		return Suspect{}
	}
	s.Why = strings.Join(why, "; ")
	return s
}

// cronPeriod says whether a series' period fits a schedule that runs hourly
// or daily.
func cronPeriod(sched string, per time.Duration) bool {
	f, ok := cronFields(sched)
	if !ok {
		return false
	}
	switch {
	case f[1] == "*" && !strings.ContainsAny(f[0], ",/-*"):
		return near(per, time.Hour, 0.05)
	case !strings.ContainsAny(f[0]+f[1], ",/-*") && f[2] == "*" && f[4] == "*":
		return near(per, 24*time.Hour, 0.02)
	}
	return false
}

func xenSuspect(e Evidence, obs Observation) Suspect {
	if e.Virt.Virtualization != "xen" || obs.Kind != Step {
		return Suspect{}
	}
	s := Suspect{ID: "xen", Who: "Xen save/restore or migration", Score: 15,
		Why: "this is a Xen guest: save/restore and migration resume the guest's timekeeping from the Xen wall clock",
		Fix: "nothing in the guest to disable; on the host avoid save/restore and migration, or accept one step after each"}
	if obs.Resumed {
		s.Score = 40
		s.Why += "; and it just resumed"
	}
	return s
}

// pauseSuspect: a paused or restored VM sees no kernel event at all
// (foreign-steps.md §6).
func pauseSuspect(e Evidence, obs Observation) Suspect {
	if obs.Kind != Gap || !e.Virt.InVM() {
		return Suspect{}
	}
	s := Suspect{ID: "host-pause", Who: "the host paused or restored this " + e.Virt.Virtualization + " guest", Score: 40,
		Why: fmt.Sprintf("the clock is off by %v with no clock-set event in the guest, as after a host pause, restore or migration", obs.Offset),
		Fix: "host: do not pause or save/restore the VM; guest: let the time daemon see pauses at once through a host-backed PHC"}
	switch e.Virt.Virtualization {
	case "kvm", "qemu":
		s.Score = 70
		s.Why += "; QEMU saves kvmclock on stop and restores the same value on resume, so the guest lags by the pause"
		s.Fix = "host: do not pause or save/restore the VM, or follow each resume with virsh domtime <vm> --now; " +
			"guest: modprobe ptp_kvm and let the time daemon watch that PHC to see pauses at once"
	case "vmware":
		s.Fix += " (ptp_vmw)"
	case "microsoft":
		s.Fix += " (/dev/ptp_hyperv)"
	}
	return s
}
