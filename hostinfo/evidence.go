package hostinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
)

// Evidence is what the machine shows about who may move its clock. Gather
// reads it; Rank weighs it against an observed event without any I/O.
type Evidence struct {
	Virt               Virt
	KernelRelease      string        // /proc/sys/kernel/osrelease
	Modules            []string      // clock-relevant kernel modules loaded (hv_utils, vmw_balloon, vboxguest, ptp_kvm, ...)
	HVTimesyncImplicit string        // hv_utils.timesync_implicit ("Y", "N", "1", "0"; "" when absent)
	HVTimesyncDevice   string        // the VMBus device of Hyper-V Time Synch, to unbind ("" when unknown)
	Processes          []Process     // clock-relevant processes running now
	Jobs               []Job         // cron entries, hooks and units that run a clock-setting tool
	Audit              []AuditRecord // time changes from the audit log tail
	AuditSeen          bool          // the audit log was readable (then a missing record means something)
	RTCLocal           bool          // /etc/adjtime keeps the RTC in local time
	Unreadable         []string      // places that exist but could not be read (permission)
}

// Process is a running process that can move the clock.
type Process struct {
	PID        int
	Comm       string // /proc/PID/comm (15 characters at most)
	Cmdline    string // argv joined by spaces
	CapSysTime *bool  // bit 25 of CapEff, nil when unknown
}

// Job is a scheduled or triggered command that sets the clock.
type Job struct {
	Kind     string // "cron", "hook" (network up/DHCP), "unit" (systemd service), "timer" (systemd timer)
	Path     string // the file, with a leading slash
	Line     int    // 1-based line in Path (0 for a whole script)
	Command  string // the line that runs the tool
	Tool     string // ntpdate, rdate, sntp, htpdate, hwclock, chronyd -q, ntpd -q, date
	Schedule string // five cron fields or @word, "" when not known
}

// Gather reads the evidence from m. It never fails: what cannot be read is
// absent (or listed in Unreadable when permission stopped it).
func Gather(m Machine) Evidence {
	e := Evidence{Virt: Detect(m)}
	fsys := m.FS
	e.KernelRelease, _ = readLine(fsys, "proc/sys/kernel/osrelease")
	e.Modules = gatherModules(fsys)
	e.HVTimesyncImplicit, _ = readLine(fsys, "sys/module/hv_utils/parameters/timesync_implicit")
	e.HVTimesyncDevice = hvTimesyncDevice(fsys)
	e.Processes = gatherProcesses(fsys)
	e.Jobs = gatherJobs(fsys, &e.Unreadable)
	e.Audit, e.AuditSeen = gatherAudit(fsys, &e.Unreadable)
	if b, err := readFile(fsys, "etc/adjtime", 4096); err == nil {
		l := lines(b)
		e.RTCLocal = len(l) >= 3 && strings.TrimSpace(l[2]) == "LOCAL"
	}
	return e
}

// relevantModules show a hypervisor's time channel or host-backed PHC.
var relevantModules = map[string]bool{
	"hv_utils": true, "hv_vmbus": true, "ptp_hyperv": true,
	"vmw_balloon": true, "vmwgfx": true, "vmw_vmci": true, "vmxnet3": true, "ptp_vmw": true,
	"vboxguest": true, "vboxsf": true, "vboxvideo": true,
	"ptp_kvm": true, "virtio_balloon": true,
	"xen_blkfront": true, "xen_netfront": true,
}

func gatherModules(fsys fs.FS) []string {
	var out []string
	seen := map[string]bool{}
	if b, err := readFile(fsys, "proc/modules", 1<<20); err == nil {
		for _, l := range lines(b) {
			if name, _, _ := strings.Cut(l, " "); relevantModules[name] && !seen[name] {
				seen[name] = true
				out = append(out, name)
			}
		}
	}
	// Built-in drivers show under /sys/module only.
	for _, name := range []string{"hv_utils", "hv_vmbus", "vmw_balloon", "vboxguest", "ptp_kvm"} {
		if !seen[name] && exists(fsys, "sys/module/"+name) {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// hvTSClass is the VMBus class of Hyper-V Time Synch (HV_TS_GUID,
// include/linux/hyperv.h).
const hvTSClass = "{9527e630-d0ae-497b-adce-e80ab0175caf}"

func hvTimesyncDevice(fsys fs.FS) string {
	es, _ := listDir(fsys, "sys/bus/vmbus/devices", maxDirItems)
	for _, e := range es {
		if c, _ := readLine(fsys, "sys/bus/vmbus/devices/"+e.Name()+"/class_id"); strings.EqualFold(c, hvTSClass) {
			return e.Name()
		}
	}
	return ""
}

// watched are comms worth a closer look: time daemons, hypervisor agents,
// one-shot setters, and interpreters that run Python agents.
var watched = map[string]bool{
	"chronyd": true, "ntpd": true, "ntp-daemon": true, "systemd-timesyn": true,
	"phc2sys": true, "htpdate": true, "timemaster": true,
	"vmtoolsd": true, "VBoxService": true, "qemu-ga": true,
	"google_guest_ag": true, "google_clock_sk": true, "waagent": true, "amazon-ssm-agen": true,
	"ntpdate": true, "sntp": true, "rdate": true, "hwclock": true, "date": true,
	"python": true, "python3": true, "python2": true,
}

func gatherProcesses(fsys fs.FS) []Process {
	es, _ := listDir(fsys, "proc", maxProcs)
	var out []Process
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		comm, ok := readLine(fsys, "proc/"+e.Name()+"/comm")
		if !ok || !watched[comm] {
			continue
		}
		b, _ := readFile(fsys, "proc/"+e.Name()+"/cmdline", 4096)
		cmd := strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
		if strings.HasPrefix(comm, "python") {
			// Python agents: keep the ones that touch the clock or name the platform.
			switch {
			case strings.Contains(cmd, "waagent"):
				comm = "waagent"
			case strings.Contains(cmd, "google_clock_skew"):
				comm = "google_clock_sk"
			default:
				continue
			}
		}
		p := Process{PID: pid, Comm: comm, Cmdline: cmd}
		if c := procStatusField(fsys, e.Name(), "CapEff"); c != "" {
			if v, err := strconv.ParseUint(c, 16, 64); err == nil {
				has := v&(1<<25) != 0 // CAP_SYS_TIME
				p.CapSysTime = &has
			}
		}
		out = append(out, p)
	}
	return out
}

// stepTools finds a clock-setting command in a line of a crontab, script or
// unit (foreign-steps.md §2.4). Query-only forms (ntpdate -q, sntp without
// a set option, hwclock -w) do not count.
var stepTools = []struct {
	tool string
	re   *regexp.Regexp
}{
	{"ntpdate", regexp.MustCompile(`\bntpdate(-debian)?\b`)},
	{"rdate", regexp.MustCompile(`\brdate\b`)},
	{"htpdate", regexp.MustCompile(`\bhtpdate\b`)},
	{"sntp", regexp.MustCompile(`\bsntp\b[^|;&#]*\s-[A-Za-z]*[sSj]`)},
	{"hwclock --hctosys", regexp.MustCompile(`\bhwclock\b[^|;&#]*(\s-[A-Za-z]*s\b|--hctosys)`)},
	{"chronyd -q", regexp.MustCompile(`\bchronyd\b[^|;&#]*\s-[A-Za-z]*q`)},
	{"ntpd -q", regexp.MustCompile(`\bntpd\b[^|;&#]*\s-[A-Za-z]*q`)},
	{"date --set", regexp.MustCompile(`\bdate\s+(-s\b|--set)`)},
}

var ntpdateQuery = regexp.MustCompile(`\bntpdate\b[^|;&#]*\s-[A-Za-z]*q`)

// stepTool names the tool a line runs, "" if none.
func stepTool(line string) string {
	l := strings.TrimSpace(line)
	if l == "" || strings.HasPrefix(l, "#") {
		return ""
	}
	for _, t := range stepTools {
		if t.re.MatchString(l) {
			if t.tool == "ntpdate" && ntpdateQuery.MatchString(l) {
				continue
			}
			return t.tool
		}
	}
	return ""
}

// Places scanned for jobs (foreign-steps.md §2.4).
var (
	crontabFiles = []string{"etc/crontab", "etc/anacrontab"}
	crontabDirs  = []string{"etc/cron.d"}
	userCronDirs = []string{"var/spool/cron/crontabs", "var/spool/cron"} // Debian, Red Hat: no user field
	partsDirs    = []string{"etc/cron.hourly", "etc/cron.daily", "etc/cron.weekly", "etc/cron.monthly"}
	hookDirs     = []string{
		"etc/network/if-up.d", "etc/NetworkManager/dispatcher.d", "etc/NetworkManager/dispatcher.d/pre-up.d",
		"etc/dhcp/dhclient-exit-hooks.d", "etc/dhcp/dhclient-enter-hooks.d", "etc/ppp/ip-up.d",
	}
	unitDirs = []string{"etc/systemd/system", "run/systemd/system", "usr/lib/systemd/system", "lib/systemd/system"}
)

func gatherJobs(fsys fs.FS, unreadable *[]string) []Job {
	var jobs []Job
	denied := func(p string, err error) {
		if errors.Is(err, fs.ErrPermission) {
			*unreadable = append(*unreadable, "/"+p)
		}
	}
	partsSched := map[string]string{} // cron.hourly → its crontab schedule
	scanCrontab := func(p string, userField bool) {
		b, err := readFile(fsys, p, maxSmallFile)
		if err != nil {
			denied(p, err)
			return
		}
		for i, l := range lines(b) {
			sched, cmd, ok := splitCronLine(l, userField, p == "etc/anacrontab")
			if !ok {
				continue
			}
			for _, d := range partsDirs {
				if strings.Contains(cmd, "/"+d) {
					partsSched[d] = sched
				}
			}
			if t := stepTool(cmd); t != "" {
				jobs = append(jobs, Job{Kind: "cron", Path: "/" + p, Line: i + 1, Command: strings.TrimSpace(l), Tool: t, Schedule: sched})
			}
		}
	}
	for _, p := range crontabFiles {
		scanCrontab(p, p == "etc/crontab")
	}
	for _, d := range crontabDirs {
		es, err := listDir(fsys, d, maxDirItems)
		denied(d, err)
		for _, e := range es {
			if cronFileName(e.Name()) {
				scanCrontab(join(d, e.Name()), true)
			}
		}
	}
	for _, d := range userCronDirs {
		es, err := listDir(fsys, d, maxDirItems)
		denied(d, err)
		for _, e := range es {
			if !e.IsDir() {
				scanCrontab(join(d, e.Name()), false)
			}
		}
	}
	scanScript := func(kind, p, sched string) {
		b, err := readFile(fsys, p, maxSmallFile)
		if err != nil {
			denied(p, err)
			return
		}
		for i, l := range lines(b) {
			if t := stepTool(l); t != "" {
				jobs = append(jobs, Job{Kind: kind, Path: "/" + p, Line: i + 1, Command: strings.TrimSpace(l), Tool: t, Schedule: sched})
				return // one finding per script is enough to name it
			}
		}
	}
	for _, d := range partsDirs {
		es, err := listDir(fsys, d, maxDirItems)
		denied(d, err)
		for _, e := range es {
			if cronFileName(e.Name()) && !e.IsDir() {
				scanScript("cron", join(d, e.Name()), partsSched[d])
			}
		}
	}
	for _, d := range hookDirs {
		es, err := listDir(fsys, d, maxDirItems)
		denied(d, err)
		for _, e := range es {
			if !e.IsDir() {
				scanScript("hook", join(d, e.Name()), "")
			}
		}
	}
	jobs = append(jobs, gatherUnits(fsys)...)
	return jobs
}

// cronFileName is run-parts' and cron's rule for names: letters, digits,
// '_' and '-' (dpkg leftovers such as foo.dpkg-old are skipped).
func cronFileName(n string) bool {
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return n != ""
}

// splitCronLine returns the schedule and command of a crontab line. System
// crontabs carry a user field; anacrontab lines are "period delay id cmd".
func splitCronLine(l string, userField, anacron bool) (sched, cmd string, ok bool) {
	t := strings.TrimSpace(l)
	if t == "" || t[0] == '#' {
		return "", "", false
	}
	f := strings.Fields(t)
	if len(f) > 0 && strings.Contains(f[0], "=") && !strings.HasPrefix(f[0], "@") {
		return "", "", false // VAR=value
	}
	if anacron {
		if len(f) < 4 {
			return "", "", false
		}
		return "", strings.Join(f[3:], " "), true
	}
	n := 5
	if strings.HasPrefix(f[0], "@") {
		n = 1
	}
	if userField {
		n++
	}
	if len(f) <= n {
		return "", "", false
	}
	if strings.HasPrefix(f[0], "@") {
		sched = f[0]
	} else {
		sched = strings.Join(f[:5], " ")
	}
	return sched, strings.Join(f[n:], " "), true
}

// gatherUnits scans the services the admin wrote (/etc/systemd/system) and
// those enabled (named in *.wants/ directories), plus the services behind
// enabled timers. Enabled units are symlinks; they are looked up by name in
// the unit directories, so a fake root needs no symlinks.
func gatherUnits(fsys fs.FS) []Job {
	var jobs []Job
	seen := map[string]bool{}
	var names []string
	timers := map[string]string{} // service → the timer that starts it
	add := func(n string) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	es, _ := listDir(fsys, "etc/systemd/system", maxDirItems)
	for _, e := range es {
		switch n := e.Name(); {
		case e.IsDir() && strings.HasSuffix(n, ".wants"):
			ws, _ := listDir(fsys, join("etc/systemd/system", n), maxDirItems)
			for _, w := range ws {
				add(w.Name())
			}
		case strings.HasSuffix(n, ".service") || strings.HasSuffix(n, ".timer"):
			add(n)
		}
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".timer") {
			continue
		}
		svc := strings.TrimSuffix(n, ".timer") + ".service"
		sched := ""
		if b, p := readUnit(fsys, n); p != "" {
			for _, l := range lines(b) {
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Unit="); ok {
					svc = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(strings.TrimSpace(l), "OnCalendar="); ok {
					sched = strings.TrimSpace(v)
				}
			}
		}
		timers[svc] = n + " " + sched
		add(svc)
	}
	for _, n := range names {
		if !strings.HasSuffix(n, ".service") {
			continue
		}
		b, p := readUnit(fsys, n)
		for i, l := range lines(b) {
			t := strings.TrimSpace(l)
			if !strings.HasPrefix(t, "Exec") {
				continue
			}
			if tool := stepTool(t); tool != "" {
				j := Job{Kind: "unit", Path: "/" + p, Line: i + 1, Command: t, Tool: tool}
				if tm, ok := timers[n]; ok {
					j.Kind, j.Schedule = "timer", strings.TrimSpace(tm)
				}
				jobs = append(jobs, j)
				break
			}
		}
	}
	return jobs
}

// readUnit finds a unit in the directories in systemd's order. A unit
// masked (linked to /dev/null) in an earlier directory hides the rest.
func readUnit(fsys fs.FS, name string) ([]byte, string) {
	for _, d := range unitDirs {
		p := join(d, name)
		b, err := readFile(fsys, p, maxSmallFile)
		if err == nil {
			return b, p
		}
		if errors.Is(err, errNotRegular) {
			return nil, ""
		}
	}
	return nil, ""
}

func (j Job) String() string {
	s := fmt.Sprintf("%s:%d runs %s", j.Path, j.Line, j.Tool)
	if j.Schedule != "" {
		s += " (" + j.Schedule + ")"
	}
	return s
}
