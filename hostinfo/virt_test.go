package hostinfo

import (
	"testing"
	"testing/fstest"
)

// files builds a fake root from path → content.
func files(kv ...string) fstest.MapFS {
	m := fstest.MapFS{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return m
}

// fakeCPUID answers leaf 1 with the hypervisor bit and leaf 0x40000000
// with sig; an empty sig means bare metal.
func fakeCPUID(sig string) func(leaf, sub uint32) (a, b, c, d uint32) {
	var regs [3]uint32
	s := []byte(sig + "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00")
	for i := range regs {
		regs[i] = uint32(s[4*i]) | uint32(s[4*i+1])<<8 | uint32(s[4*i+2])<<16 | uint32(s[4*i+3])<<24
	}
	return func(leaf, _ uint32) (a, b, c, d uint32) {
		switch leaf {
		case 0:
			return 0xd, 0, 0, 0
		case 1:
			if sig != "" {
				return 0, 0, 1 << 31, 0
			}
		case 0x40000000:
			return 0x40000001, regs[0], regs[1], regs[2]
		}
		return 0, 0, 0, 0
	}
}

// smbiosRaw is a type 0 table of length 20 whose extension byte 2 has the
// VM bit set or not.
func smbiosRaw(vm bool) string {
	b := make([]byte, 24)
	b[1] = 20
	if vm {
		b[19] = 1 << 4
	}
	return string(b)
}

func TestDetectVM(t *testing.T) {
	tests := []struct {
		name  string
		fs    fstest.MapFS
		cpuid string // "" with noCPU false: bare metal CPUID
		noCPU bool   // no CPUID at all (not amd64)
		want  string
	}{
		{name: "bare metal", fs: files("sys/class/dmi/id/sys_vendor", "Dell Inc.\n"), want: "none"},
		{name: "empty root, no cpuid", fs: files(), noCPU: true, want: "none"},
		{name: "kvm by cpuid", fs: files(), cpuid: "KVMKVMKVM", want: "kvm"},
		{name: "kvm with hyperv enlightenments", fs: files(), cpuid: "Linux KVM Hv", want: "kvm"},
		{name: "kvm cpuid beats qemu dmi", fs: files("sys/class/dmi/id/sys_vendor", "QEMU\n"), cpuid: "KVMKVMKVM", want: "kvm"},
		{name: "qemu tcg by cpuid", fs: files(), cpuid: "TCGTCGTCGTCG", want: "qemu"},
		{name: "qemu by dmi", fs: files("sys/class/dmi/id/sys_vendor", "QEMU\n"), noCPU: true, want: "qemu"},
		{name: "kvm by dmi product name before sys_vendor", fs: files(
			"sys/class/dmi/id/product_name", "KVM\n", "sys/class/dmi/id/sys_vendor", "QEMU\n"), noCPU: true, want: "kvm"},
		{name: "openstack is kvm", fs: files("sys/class/dmi/id/product_name", "OpenStack Nova\n"), noCPU: true, want: "kvm"},
		{name: "kubevirt is kvm", fs: files("sys/class/dmi/id/product_name", "KubeVirt\n"), noCPU: true, want: "kvm"},
		{name: "vmware by cpuid", fs: files(), cpuid: "VMwareVMware", want: "vmware"},
		{name: "vmware by dmi", fs: files("sys/class/dmi/id/sys_vendor", "VMware, Inc.\n"), noCPU: true, want: "vmware"},
		{name: "vmware VMW", fs: files("sys/class/dmi/id/product_name", "VMW-123\n"), noCPU: true, want: "vmware"},
		{name: "virtualbox dmi beats kvm cpuid", fs: files("sys/class/dmi/id/sys_vendor", "innotek GmbH\n"), cpuid: "KVMKVMKVM", want: "oracle"},
		{name: "virtualbox product", fs: files("sys/class/dmi/id/product_name", "VirtualBox\n"), noCPU: true, want: "oracle"},
		{name: "oracle board vendor", fs: files("sys/class/dmi/id/board_vendor", "Oracle Corporation\n"), noCPU: true, want: "oracle"},
		{name: "xen dmi beats hyperv cloak", fs: files("sys/class/dmi/id/sys_vendor", "Xen\n"), cpuid: "Microsoft Hv", want: "xen"},
		{name: "xen pv by /proc/xen", fs: files("proc/xen/capabilities", "\n"), cpuid: "KVMKVMKVM", want: "xen"},
		{name: "xen dom0 by features is not a VM", fs: files("proc/xen/capabilities", "", "sys/hypervisor/properties/features", "00000800\n"), want: "none"},
		{name: "xen dom0 by control_d", fs: files("proc/xen/capabilities", "control_d\n"), want: "none"},
		{name: "xen dom0 nested in kvm", fs: files("proc/xen/capabilities", "control_d\n"), cpuid: "KVMKVMKVM", want: "kvm"},
		{name: "xen by /sys/hypervisor/type", fs: files("sys/hypervisor/type", "xen\n"), noCPU: true, want: "xen"},
		{name: "xen cpuid", fs: files(), cpuid: "XenVMMXenVMM", want: "xen"},
		{name: "other /sys/hypervisor/type", fs: files("sys/hypervisor/type", "s390\n"), noCPU: true, want: "vm-other"},
		{name: "amazon with smbios vm bit", fs: files("sys/class/dmi/id/sys_vendor", "Amazon EC2\n",
			"sys/firmware/dmi/entries/0-0/raw", smbiosRaw(true)), cpuid: "KVMKVMKVM", want: "amazon"},
		{name: "amazon metal by smbios", fs: files("sys/class/dmi/id/sys_vendor", "Amazon EC2\n",
			"sys/firmware/dmi/entries/0-0/raw", smbiosRaw(false)), want: "none"},
		{name: "amazon metal by name", fs: files("sys/class/dmi/id/sys_vendor", "Amazon EC2\n",
			"sys/class/dmi/id/product_name", "m5.metal\n"), want: "none"},
		{name: "amazon vm by name", fs: files("sys/class/dmi/id/sys_vendor", "Amazon EC2\n",
			"sys/class/dmi/id/product_name", "m5.large\n"), cpuid: "KVMKVMKVM", want: "amazon"},
		{name: "smbios vm bit alone", fs: files("sys/firmware/dmi/entries/0-0/raw", smbiosRaw(true)), noCPU: true, want: "vm-other"},
		{name: "google", fs: files("sys/class/dmi/id/product_name", "Google Compute Engine\n"), cpuid: "KVMKVMKVM", want: "google"},
		{name: "parallels", fs: files("sys/class/dmi/id/sys_vendor", "Parallels Software International Inc.\n"), cpuid: "KVMKVMKVM", want: "parallels"},
		{name: "bochs", fs: files("sys/class/dmi/id/bios_vendor", "Bochs\n"), noCPU: true, want: "bochs"},
		{name: "bhyve", fs: files(), cpuid: "bhyve bhyve ", want: "bhyve"},
		{name: "acrn", fs: files(), cpuid: "ACRNACRNACRN", want: "acrn"},
		{name: "apple", fs: files(), cpuid: "Apple VZ", want: "apple"},
		{name: "hyperv by cpuid alone", fs: files(), cpuid: "Microsoft Hv", want: "microsoft"},
		{name: "qemu with hyperv enlightenments", fs: files("sys/class/dmi/id/sys_vendor", "QEMU\n"), cpuid: "Microsoft Hv", want: "qemu"},
		{name: "hyperv by product_version", fs: files("sys/class/dmi/id/sys_vendor", "Microsoft Corporation\n",
			"sys/class/dmi/id/product_version", "Hyper-V UEFI Release v4.1\n"), noCPU: true, want: "microsoft"},
		{name: "unknown cpuid vendor", fs: files(), cpuid: "NewHyperVisr", want: "vm-other"},
		{name: "cpuinfo flag without cpuid", fs: files("proc/cpuinfo", "processor\t: 0\nflags\t\t: fpu vme hypervisor lahf_lm\n"), noCPU: true, want: "vm-other"},
		{name: "uml", fs: files("proc/cpuinfo", "processor\t: 0\nvendor_id\t: User Mode Linux\n"), noCPU: true, want: "uml"},
		{name: "arm kvm device tree", fs: files("proc/device-tree/hypervisor/compatible", "linux,kvm\x00"), noCPU: true, want: "kvm"},
		{name: "arm xen device tree", fs: files("proc/device-tree/hypervisor/compatible", "xen,xen-4.17\x00xen,xen\x00"), noCPU: true, want: "xen"},
		{name: "arm vmware device tree", fs: files("proc/device-tree/hypervisor/compatible", "vmware\x00"), noCPU: true, want: "vmware"},
		{name: "arm qemu fw-cfg", fs: files("proc/device-tree/fw-cfg@9020000/compatible", "qemu,fw-cfg-mmio\x00"), noCPU: true, want: "qemu"},
		{name: "pseries", fs: files("proc/device-tree/compatible", "qemu,pseries\x00"), noCPU: true, want: "qemu"},
		{name: "powervm", fs: files("proc/device-tree/ibm,partition-name", "lpar1\x00", "proc/device-tree/hmc-managed?", ""), noCPU: true, want: "powervm"},
		{name: "zvm", fs: files("proc/sysinfo", "VM00 Name:            LINUX1\nVM00 Control Program: z/VM    7.3.0\n"), noCPU: true, want: "zvm"},
		{name: "kvm on s390", fs: files("proc/sysinfo", "VM00 Control Program: KVM/Linux\n"), noCPU: true, want: "kvm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Machine{FS: tt.fs}
			if !tt.noCPU {
				m.CPUID = fakeCPUID(tt.cpuid)
			}
			v := Detect(m)
			if v.Virtualization != tt.want {
				t.Errorf("Virtualization = %q, want %q (why: %q)", v.Virtualization, tt.want, v.Why)
			}
		})
	}
}

func TestDetectContainer(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want string
	}{
		{"none", files("proc/sys/kernel/osrelease", "6.1.0-13-amd64\n"), "none"},
		{"openvz container", files("proc/vz/veinfo", ""), "openvz"},
		{"openvz host", files("proc/vz/veinfo", "", "proc/bc/0/resources", ""), "none"},
		{"wsl1", files("proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n"), "wsl"},
		{"wsl2", files("proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n"), "wsl"},
		{"proot", files("proc/self/status", "Name:\tslewd\nTracerPid:\t42\n", "proc/42/comm", "proot\n"), "proot"},
		{"traced by gdb", files("proc/self/status", "TracerPid:\t42\n", "proc/42/comm", "gdb\n"), "none"},
		{"run/host manager", files("run/host/container-manager", "systemd-nspawn\n"), "systemd-nspawn"},
		{"nspawn by run/systemd/container", files("run/systemd/container", "systemd-nspawn\n"), "systemd-nspawn"},
		{"lxc by pid 1 environ", files("proc/1/environ", "PATH=/bin\x00container=lxc\x00TERM=xterm\x00"), "lxc"},
		{"lxc-libvirt", files("run/systemd/container", "lxc-libvirt\n"), "lxc-libvirt"},
		{"unknown manager", files("run/systemd/container", "garden\n"), "container-other"},
		{"oci with docker file", files("proc/1/environ", "container=oci\x00", ".dockerenv", ""), "docker"},
		{"oci alone", files("proc/1/environ", "container=oci\x00"), "container-other"},
		{"podman", files("run/.containerenv", "engine=\"podman-4.9\"\n"), "podman"},
		{"docker", files(".dockerenv", ""), "docker"},
		{"podman before docker", files("run/.containerenv", "", ".dockerenv", ""), "podman"},
		{"environ beats dockerenv", files("proc/1/environ", "container=podman\x00", ".dockerenv", ""), "podman"},
		{"cgroup v2 namespace", files("proc/self/ns/cgroup", "", "sys/fs/cgroup/cgroup.controllers", "cpu\n",
			"sys/fs/cgroup/cgroup.events", "populated 1\n", "sys/fs/cgroup/cgroup.type", "domain\n"), "container-other"},
		{"cgroup v2 root", files("proc/self/ns/cgroup", "", "sys/fs/cgroup/cgroup.controllers", "cpu\n",
			"sys/kernel/cgroup/features", ""), "none"},
		{"cgroup v1 namespace", files("proc/self/ns/cgroup", "", "sys/fs/cgroup/systemd/cgroup.procs", "1\n"), "container-other"},
		{"cgroup v1 root", files("proc/self/ns/cgroup", "", "sys/fs/cgroup/systemd/release_agent", ""), "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Detect(Machine{FS: tt.fs})
			if v.Container != tt.want {
				t.Errorf("Container = %q, want %q (why: %q)", v.Container, tt.want, v.Why)
			}
		})
	}
}

func TestUserNamespace(t *testing.T) {
	tests := []struct {
		name string
		fs   fstest.MapFS
		want bool
	}{
		{"identity", files("proc/self/uid_map", "         0          0 4294967295\n", "proc/self/gid_map", "0 0 4294967295\n"), false},
		{"unshare --map-root-user", files("proc/self/uid_map", "         0       1000          1\n"), true},
		{"uninitialised", files("proc/self/uid_map", ""), true},
		{"setgroups deny", files("proc/self/uid_map", "0 0 4294967295\n", "proc/self/setgroups", "deny\n"), true},
		{"no files", files(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Detect(Machine{FS: tt.fs}).UserNamespace; got != tt.want {
				t.Errorf("UserNamespace = %v, want %v", got, tt.want)
			}
		})
	}
}
