package kernel_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slewd/hostinfo"
	"slewd/test/kernel/rig"
)

type phcOffer struct {
	Virtualization string            `json:"virtualization"`
	Modules        map[string]string `json:"modules"`
	PHCs           []hostinfo.PHC    `json:"phcs"`
	Readings       []string          `json:"readings"`
	SlewdPHC       string            `json:"slewd_phc"`
}

// TestPHCUnderEmulation boots the guest (TCG, as every rig boot) with
// the hypervisor PHC drivers of its kernel package and reports what PHC
// it can offer: under TCG no hypervisor is there to answer ptp_kvm's
// KVM_HC_CLOCK_PAIRING hypercall or VMware's backdoor, and the cloud
// kernel has no driver for qemu's emulated NICs (e1000e; qemu 7.2 has no
// igb), so none. What slewd says then is checked too.
func TestPHCUnderEmulation(t *testing.T) {
	rig.Skip(t)
	k := rig.Kernel(t)
	ver := strings.TrimPrefix(filepath.Base(k), "vmlinuz-")
	ptpDir := filepath.Join(filepath.Dir(filepath.Dir(k)), "lib", "modules", ver, "kernel", "drivers", "ptp")
	mods, _ := filepath.Glob(filepath.Join(ptpDir, "*.ko"))
	if len(mods) == 0 {
		t.Skipf("no PHC modules in %s", ptpDir)
	}
	files := []rig.File{rig.Dir("/lib/modules/ptp", 0o755)}
	for _, m := range mods {
		files = append(files, rig.HostFile(m, "/lib/modules/ptp/"+filepath.Base(m)))
	}
	res := rig.Boot(t, rig.Config{Package: "./test/kernel/scenarios/phc", Slewd: true, Files: files, Timeout: 4 * time.Minute})
	offers, err := rig.Decode[phcOffer](res, "phc")
	if err != nil || len(offers) != 1 {
		t.Fatalf("%d records: %v", len(offers), err)
	}
	o := offers[0]
	var b strings.Builder
	fmt.Fprintf(&b, "guest virtualization: %s\n", o.Virtualization)
	for m, r := range o.Modules {
		fmt.Fprintf(&b, "insmod %s: %s\n", m, r)
	}
	fmt.Fprintf(&b, "PHCs: %v\nreadings: %q\nslewd run --monitor-only --phc: %s\n", o.PHCs, o.Readings, o.SlewdPHC)
	fmt.Print(b.String())
	if out := os.Getenv("SLEWD_RIG_PHC_OUT"); out != "" {
		os.WriteFile(out, []byte(b.String()), 0o644)
	}
	if len(o.PHCs) == 0 {
		// None under TCG: slewd must say so and how to get one.
		if !strings.Contains(o.SlewdPHC, "ptp_kvm") || !strings.Contains(o.SlewdPHC, "no such file") {
			t.Errorf("slewd without the PHC said %q: want the missing device and the ptp_kvm hint", o.SlewdPHC)
		}
		return
	}
	for _, r := range o.Readings {
		if !strings.Contains(r, "offset") {
			t.Errorf("PHC reading failed: %s", r)
		}
	}
}
