package hostinfo

import (
	"strings"
	"testing"
)

func TestAdvice(t *testing.T) {
	for _, tt := range []struct {
		v    Virt
		want string
	}{
		{Virt{Virtualization: "none", Container: "none"}, "bare metal"},
		{Virt{Virtualization: "microsoft", Container: "none"}, "hv_utils"},
		{Virt{Virtualization: "vmware", Container: "none"}, "vmware-toolbox-cmd timesync disable"},
		{Virt{Virtualization: "oracle", Container: "none"}, "--disable-timesync"},
		{Virt{Virtualization: "kvm", Container: "none"}, "paused guest"},
		{Virt{Virtualization: "kvm", Container: "none"}, "--phc /dev/ptp0"},
		{Virt{Virtualization: "kvm", Container: "docker"}, "--monitor-only"},
		{Virt{Virtualization: "microsoft", Container: "wsl"}, "WSL2"},
		{Virt{Virtualization: "bhyve", Container: "none"}, "hypervisor agent"},
	} {
		if got := Advice(tt.v); !strings.Contains(got, tt.want) {
			t.Errorf("Advice(%+v) = %q, want it to mention %q", tt.v, got, tt.want)
		}
	}
}
