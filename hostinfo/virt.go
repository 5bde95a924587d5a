package hostinfo

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// Virt is what systemd-detect-virt would print for this machine.
type Virt struct {
	// Virtualization is the hypervisor, named as systemd-detect-virt --vm
	// prints it: kvm, qemu, microsoft, vmware, oracle, xen, amazon, google,
	// bochs, parallels, bhyve, ..., vm-other, or none.
	Virtualization string `json:"virtualization"`
	// Container is the container manager, as systemd-detect-virt
	// --container prints it: docker, podman, lxc, lxc-libvirt,
	// systemd-nspawn, openvz, wsl, proot, ..., container-other, or none.
	Container string `json:"container"`
	// UserNamespace: /proc/self/{uid,gid}_map are not the identity, or
	// setgroups is denied. Clock writes then fail with EPERM even when
	// CAP_SYS_TIME looks held (pitfalls.md #10).
	UserNamespace bool `json:"user_namespace"`
	// Why holds what decided each answer, for logs and status.
	Why []string `json:"why,omitempty"`
}

// InVM says whether a hypervisor was found.
func (v Virt) InVM() bool { return v.Virtualization != "" && v.Virtualization != "none" }

// InContainer says whether a container manager was found.
func (v Virt) InContainer() bool { return v.Container != "" && v.Container != "none" }

// Detect decides the virtualization and the container in the order of
// systemd's src/basic/virt.c (detect_vm, detect_container, running_in_userns).
// Unreadable files count as absent, as they do there for ENOENT.
func Detect(m Machine) Virt {
	var v Virt
	v.Virtualization = detectVM(m, &v.Why)
	v.Container = detectContainer(m.FS, &v.Why)
	v.UserNamespace = inUserNS(m.FS)
	return v
}

// Names from systemd's virtualization_table.
const (
	virtNone  = "none"
	virtOther = "vm-other"
)

// cpuidVendors maps the hypervisor CPUID leaf 0x40000000 signature
// (EBX,ECX,EDX) to a name (virt.c detect_vm_cpuid vm_table).
var cpuidVendors = []struct{ sig, name string }{
	{"XenVMMXenVMM", "xen"},
	{"KVMKVMKVM", "kvm"},    // QEMU with KVM
	{"Linux KVM Hv", "kvm"}, // QEMU with KVM and Hyper-V enlightenments
	{"TCGTCGTCGTCG", "qemu"},
	{"VMwareVMware", "vmware"},
	{"Microsoft Hv", "microsoft"},
	{"bhyve bhyve ", "bhyve"},
	{"QNXQVMBSQG", "qnx"},
	{"ACRNACRNACRN", "acrn"},
	{"SRESRESRESRE", "sre"},
	{"Apple VZ", "apple"},
}

// dmiFiles are read in this order: product_name before sys_vendor tells
// KVM from QEMU; product_version catches Hyper-V (virt.c dmi_vendors).
var dmiFiles = []string{
	"sys/class/dmi/id/product_name",
	"sys/class/dmi/id/sys_vendor",
	"sys/class/dmi/id/board_vendor",
	"sys/class/dmi/id/bios_vendor",
	"sys/class/dmi/id/product_version",
}

// dmiVendors are prefixes of the DMI strings (virt.c dmi_vendor_table).
var dmiVendors = []struct{ prefix, name string }{
	{"KVM", "kvm"},
	{"OpenStack", "kvm"},
	{"KubeVirt", "kvm"},
	{"Amazon EC2", "amazon"},
	{"QEMU", "qemu"},
	{"VMware", "vmware"},
	{"VMW", "vmware"},
	{"innotek GmbH", "oracle"},
	{"VirtualBox", "oracle"},
	{"Oracle Corporation", "oracle"},
	{"Xen", "xen"},
	{"Bochs", "bochs"},
	{"Parallels", "parallels"},
	{"BHYVE", "bhyve"},
	{"Hyper-V", "microsoft"},
	{"Apple Virtualization", "apple"},
	{"Google Compute Engine", "google"},
}

func detectVM(m Machine, why *[]string) string {
	note := func(f string, a ...any) { *why = append(*why, fmt.Sprintf(f, a...)) }
	fsys := m.FS
	var hyperv, other bool

	// DMI first: these vendors win even over a KVM CPUID, and Xen even when
	// it cloaks as Hyper-V.
	dmi, dmiWhy := detectDMI(fsys)
	switch dmi {
	case "oracle", "xen", "amazon", "parallels", "google":
		note("%s", dmiWhy)
		return dmi
	}

	if detectUML(fsys) {
		note("/proc/cpuinfo vendor_id is User Mode Linux")
		return "uml"
	}

	xenDom0 := false
	if exists(fsys, "proc/xen") {
		if !isXenDom0(fsys) {
			note("/proc/xen exists and this is not dom0")
			return "xen"
		}
		xenDom0 = true // dom0 reports no VM unless CPUID shows a hypervisor under Xen
	}

	switch v, sig := detectCPUID(m); v {
	case "microsoft":
		// QEMU shows Hyper-V's signature when it offers enlightenments:
		// only a fallback.
		hyperv = true
	case virtOther:
		note("CPUID hypervisor bit set, vendor %q unknown", sig)
		other = true
	case virtNone, "":
		if v == "" && cpuinfoHypervisorFlag(fsys) {
			// No CPUID here (not amd64): the kernel's cpuinfo flag
			// still says a hypervisor exists, not which.
			note("/proc/cpuinfo has the hypervisor flag (CPUID not readable)")
			other = true
		}
	default:
		note("CPUID hypervisor vendor %q", sig)
		return v
	}
	if xenDom0 {
		note("Xen dom0")
		return finishVM(virtNone, hyperv, other, why)
	}

	switch dmi {
	case virtNone:
	case virtOther:
		note("%s", dmiWhy)
		other = true
	default:
		note("%s", dmiWhy)
		return dmi
	}

	if t, ok := readLine(fsys, "sys/hypervisor/type"); ok {
		if t == "xen" {
			note("/sys/hypervisor/type is xen")
			return "xen"
		}
		note("/sys/hypervisor/type is %q", t)
		other = true
	}

	switch v, w := detectDeviceTree(fsys); v {
	case virtNone:
	case virtOther:
		note("%s", w)
		other = true
	default:
		note("%s", w)
		return v
	}

	if v, w := detectZVM(fsys); v != virtNone {
		note("%s", w)
		return v
	}
	return finishVM(virtNone, hyperv, other, why)
}

// finishVM applies systemd's fallbacks: a Hyper-V signature nobody else
// explained is Microsoft; any unexplained hint is vm-other.
func finishVM(v string, hyperv, other bool, why *[]string) string {
	if v != virtNone {
		return v
	}
	switch {
	case hyperv:
		*why = append(*why, `CPUID hypervisor vendor "Microsoft Hv" and nothing else found`)
		return "microsoft"
	case other:
		return virtOther
	}
	return virtNone
}

// detectDMI is virt.c detect_vm_dmi: the vendor table, then the SMBIOS
// "is a VM" bit to tell EC2 metal from EC2 VMs and to catch unknown VMs.
func detectDMI(fsys fs.FS) (string, string) {
	v, why := virtNone, ""
findVendor:
	for _, f := range dmiFiles {
		s, ok := readLine(fsys, f)
		if !ok {
			continue
		}
		for _, d := range dmiVendors {
			if strings.HasPrefix(s, d.prefix) {
				v, why = d.name, fmt.Sprintf("DMI /%s is %q", f, s)
				break findVendor
			}
		}
	}
	bit := smbiosVMBit(fsys)
	if v == "amazon" {
		switch bit {
		case smbiosSet:
			return v, why + ", SMBIOS says VM"
		case smbiosUnset:
			return virtNone, why + ", SMBIOS says not a VM (EC2 metal)"
		}
		// SMBIOS is root-only: EC2 metal names itself *.metal.
		p, _ := readLine(fsys, "sys/class/dmi/id/product_name")
		if _, after, ok := strings.Cut(p, ".metal"); ok && (after == "" || after[0] == '-') {
			return virtNone, why + ", product name is EC2 metal"
		}
		return v, why
	}
	if v == virtNone && bit == smbiosSet {
		return virtOther, "SMBIOS BIOS characteristics say VM"
	}
	return v, why
}

const (
	smbiosUnknown = iota
	smbiosSet
	smbiosUnset
)

// smbiosVMBit reads bit 4 of BIOS characteristics extension byte 2
// (SMBIOS DSP0134 2.1.2.2) from the type 0 table's raw bytes.
func smbiosVMBit(fsys fs.FS) int {
	b, err := readFile(fsys, "sys/firmware/dmi/entries/0-0/raw", 4096)
	if err != nil || len(b) < 20 || b[1] < 20 {
		return smbiosUnknown
	}
	if b[19]&(1<<4) != 0 {
		return smbiosSet
	}
	return smbiosUnset
}

func detectUML(fsys fs.FS) bool {
	b, err := readFile(fsys, "proc/cpuinfo", maxSmallFile)
	if err != nil {
		return false
	}
	for _, l := range lines(b) {
		if t, ok := strings.CutPrefix(l, "vendor_id\t: "); ok {
			return strings.HasPrefix(t, "User Mode Linux")
		}
	}
	return false
}

// cpuinfoHypervisorFlag reports the x86 "hypervisor" CPU flag the kernel
// copies from CPUID leaf 1 ECX bit 31.
func cpuinfoHypervisorFlag(fsys fs.FS) bool {
	b, err := readFile(fsys, "proc/cpuinfo", maxSmallFile)
	if err != nil {
		return false
	}
	for _, l := range lines(b) {
		if k, flags, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "flags" {
			return containsWord(flags, "hypervisor")
		}
	}
	return false
}

// xenFeatDom0 is XENFEAT_dom0 (xen/include/public/features.h).
const xenFeatDom0 = 11

func isXenDom0(fsys fs.FS) bool {
	if s, ok := readLine(fsys, "sys/hypervisor/properties/features"); ok {
		if f, err := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64); err == nil {
			return f&(1<<xenFeatDom0) != 0
		}
	}
	s, ok := readLine(fsys, "proc/xen/capabilities")
	if !ok {
		return false
	}
	for _, c := range strings.Split(s, ",") {
		if strings.TrimSpace(c) == "control_d" {
			return true
		}
	}
	return false
}

// detectCPUID returns "" when CPUID cannot be read, none without the
// hypervisor bit, else the vendor's name (vm-other when unknown).
func detectCPUID(m Machine) (string, string) {
	if m.CPUID == nil {
		return "", ""
	}
	if max, _, _, _ := m.CPUID(0, 0); max < 1 {
		return virtNone, ""
	}
	if _, _, ecx, _ := m.CPUID(1, 0); ecx&(1<<31) == 0 {
		return virtNone, ""
	}
	_, b, c, d := m.CPUID(0x40000000, 0)
	var sig [12]byte
	for i, r := range [3]uint32{b, c, d} {
		sig[4*i], sig[4*i+1], sig[4*i+2], sig[4*i+3] = byte(r), byte(r>>8), byte(r>>16), byte(r>>24)
	}
	s, _, _ := strings.Cut(string(sig[:]), "\x00")
	for _, v := range cpuidVendors {
		if s == v.sig {
			return v.name, s
		}
	}
	return virtOther, s
}

// detectDeviceTree is virt.c detect_vm_device_tree (arm, powerpc, riscv).
func detectDeviceTree(fsys fs.FS) (string, string) {
	if b, err := readFile(fsys, "proc/device-tree/hypervisor/compatible", 4096); err == nil {
		hv, _, _ := strings.Cut(string(b), "\x00")
		hv = strings.TrimSpace(hv)
		w := fmt.Sprintf("/proc/device-tree/hypervisor/compatible is %q", hv)
		switch {
		case hv == "linux,kvm":
			return "kvm", w
		case strings.Contains(hv, "xen"):
			return "xen", w
		case strings.Contains(hv, "vmware"):
			return "vmware", w
		}
		return virtOther, w
	}
	if exists(fsys, "proc/device-tree/ibm,partition-name") &&
		exists(fsys, "proc/device-tree/hmc-managed?") &&
		!exists(fsys, "proc/device-tree/chosen/qemu,graphic-width") {
		return "powervm", "/proc/device-tree shows a PowerVM partition"
	}
	es, _ := listDir(fsys, "proc/device-tree", maxDirItems)
	for _, e := range es {
		if strings.Contains(e.Name(), "fw-cfg") {
			return "qemu", "/proc/device-tree/" + e.Name() + " (QEMU fw-cfg)"
		}
	}
	if b, err := readFile(fsys, "proc/device-tree/compatible", 4096); err == nil {
		if c, _, _ := strings.Cut(string(b), "\x00"); c == "qemu,pseries" {
			return "qemu", `/proc/device-tree/compatible is "qemu,pseries"`
		}
	}
	return virtNone, ""
}

// detectZVM reads s390's /proc/sysinfo (virt.c detect_vm_zvm).
func detectZVM(fsys fs.FS) (string, string) {
	b, err := readFile(fsys, "proc/sysinfo", maxSmallFile)
	if err != nil {
		return virtNone, ""
	}
	for _, l := range lines(b) {
		if t, ok := strings.CutPrefix(l, "VM00 Control Program:"); ok {
			f := strings.Fields(t)
			if len(f) > 0 && f[0] == "z/VM" {
				return "zvm", "/proc/sysinfo: z/VM"
			}
			return "kvm", "/proc/sysinfo control program " + strings.TrimSpace(t)
		}
	}
	return virtNone, ""
}

// knownContainers is virt.c container_table.
var knownContainers = map[string]bool{
	"lxc": true, "lxc-libvirt": true, "systemd-nspawn": true, "docker": true,
	"podman": true, "rkt": true, "wsl": true, "proot": true, "pouch": true,
}

func detectContainer(fsys fs.FS, why *[]string) string {
	note := func(f string, a ...any) { *why = append(*why, fmt.Sprintf(f, a...)) }

	// /proc/vz is inside and outside an OpenVZ container, /proc/bc only outside.
	if exists(fsys, "proc/vz") && !exists(fsys, "proc/bc") {
		note("/proc/vz without /proc/bc (OpenVZ container)")
		return "openvz"
	}
	if o, ok := readLine(fsys, "proc/sys/kernel/osrelease"); ok &&
		(strings.Contains(o, "Microsoft") || strings.Contains(o, "WSL")) {
		note("kernel release %q (WSL)", o)
		return "wsl"
	}
	if t := procStatusField(fsys, "self", "TracerPid"); t != "" && t != "0" {
		if c, ok := readLine(fsys, "proc/"+t+"/comm"); ok && strings.HasPrefix(c, "proot") {
			note("traced by proot (pid %s)", t)
			return "proot"
		}
	}
	for _, f := range []string{"run/host/container-manager", "run/systemd/container"} {
		if s, ok := readLine(fsys, f); ok && s != "" {
			note("/%s is %q", f, s)
			return translateContainer(fsys, s)
		}
	}
	// PID 1's environment, when readable (it needs ptrace rights on PID 1,
	// or being PID 1 in a container).
	if b, err := readFile(fsys, "proc/1/environ", maxSmallFile); err == nil {
		for _, kv := range strings.Split(string(b), "\x00") {
			if s, ok := strings.CutPrefix(kv, "container="); ok && s != "" {
				note("PID 1 has container=%s", s)
				return translateContainer(fsys, s)
			}
		}
	}
	if v, w := containerFiles(fsys); v != virtNone {
		note("%s", w)
		return v
	}
	if inCgroupNS(fsys) {
		note("in a cgroup namespace")
		return "container-other"
	}
	return virtNone
}

func translateContainer(fsys fs.FS, s string) string {
	if s == "oci" {
		// Some images hard-code container=oci, which names no manager.
		if v, _ := containerFiles(fsys); v != virtNone {
			return v
		}
		return "container-other"
	}
	if knownContainers[s] {
		return s
	}
	return "container-other"
}

// containerFiles checks podman's file before docker's: /.dockerenv can end
// up in any image.
func containerFiles(fsys fs.FS) (string, string) {
	if exists(fsys, "run/.containerenv") {
		return "podman", "/run/.containerenv exists"
	}
	if exists(fsys, ".dockerenv") {
		return "docker", "/.dockerenv exists"
	}
	return virtNone, ""
}

// inCgroupNS is virt.c running_in_cgroupns.
func inCgroupNS(fsys fs.FS) bool {
	if !exists(fsys, "proc/self/ns/cgroup") {
		return false
	}
	if exists(fsys, "sys/fs/cgroup/cgroup.controllers") { // cgroup v2
		if !exists(fsys, "sys/fs/cgroup/cgroup.events") {
			return false // the root cgroup has no cgroup.events
		}
		if exists(fsys, "sys/fs/cgroup/cgroup.type") {
			return true // nor a cgroup.type
		}
		return !exists(fsys, "sys/kernel/cgroup/features") // old kernels lack cgroup.type
	}
	if !exists(fsys, "sys/fs/cgroup/systemd") {
		return false
	}
	return !exists(fsys, "sys/fs/cgroup/systemd/release_agent") // only in the root
}

// inUserNS is virt.c running_in_userns.
func inUserNS(fsys fs.FS) bool {
	for _, f := range []string{"proc/self/uid_map", "proc/self/gid_map"} {
		b, err := readFile(fsys, f, 4096)
		if err != nil {
			continue
		}
		fl := strings.Fields(string(b))
		if len(fl) < 3 {
			return true // an uninitialised user namespace
		}
		if !(fl[0] == "0" && fl[1] == "0" && fl[2] == "4294967295") {
			return true
		}
	}
	s, _ := readLine(fsys, "proc/self/setgroups")
	return s == "deny"
}

// procStatusField returns a field of /proc/PID/status ("" if absent).
func procStatusField(fsys fs.FS, pid, field string) string {
	b, err := readFile(fsys, "proc/"+pid+"/status", maxSmallFile)
	if err != nil {
		return ""
	}
	for _, l := range lines(b) {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}
