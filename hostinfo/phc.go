package hostinfo

import (
	"slices"
	"strconv"
	"strings"
)

// PHC is a PTP hardware clock the kernel offers (/sys/class/ptp/ptpN).
type PHC struct {
	Device string `json:"device"` // /dev/ptpN
	// ClockName is the driver's name for it: ptp_kvm, hyperv, ptp_vmw,
	// or a NIC's (e1000e, igb, ena ...).
	ClockName string `json:"clock_name"`
}

// Reference says whether the PHC is a hypervisor's: the host's own clock,
// the reference a guest should use (docs/guests.md); a NIC's PHC is only
// as good as what disciplines it (ptp4l).
func (p PHC) Reference() bool {
	switch p.ClockName {
	case "ptp_kvm", "hyperv", "ptp_vmw", "KVM virtual PTP", "VMware virtual PTP":
		return true
	}
	return false
}

// PHCs lists the PTP hardware clocks in /sys/class/ptp, by number.
func PHCs(m Machine) []PHC {
	es, _ := listDir(m.FS, "sys/class/ptp", 256)
	var out []PHC
	for _, e := range es {
		n, ok := strings.CutPrefix(e.Name(), "ptp")
		if _, err := strconv.Atoi(n); !ok || err != nil {
			continue
		}
		name, _ := readLine(m.FS, join("sys/class/ptp/"+e.Name(), "clock_name"))
		out = append(out, PHC{Device: "/dev/" + e.Name(), ClockName: name})
	}
	slices.SortFunc(out, func(a, b PHC) int {
		x, _ := strconv.Atoi(strings.TrimPrefix(a.Device, "/dev/ptp"))
		y, _ := strconv.Atoi(strings.TrimPrefix(b.Device, "/dev/ptp"))
		return x - y
	})
	return out
}
