// Package phc asks the rig's guest for a PTP hardware clock: it loads the
// hypervisor PHC drivers the cloud kernel ships (ptp_kvm, ptp_vmw), lists
// /sys/class/ptp, reads every PHC it finds and runs slewd with it. The
// host side is test/kernel/phc_test.go.
package phc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"slewd/clock"
	"slewd/hostinfo"
	"slewd/test/kernel/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

type offer struct {
	Virtualization string            `json:"virtualization"`
	Modules        map[string]string `json:"modules"` // module → "loaded" or the kernel's error
	PHCs           []hostinfo.PHC    `json:"phcs"`
	Readings       []string          `json:"readings"`
	SlewdPHC       string            `json:"slewd_phc"` // what `slewd run --phc` said
}

// loadModule is insmod: finit_module on a .ko the host put in /lib/modules.
func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.FinitModule(int(f.Fd()), "", 0)
}

func TestPHCOffer(t *testing.T) {
	guest.Require(t)
	var o offer
	o.Virtualization = hostinfo.Detect(hostinfo.System()).Virtualization
	o.Modules = map[string]string{}
	mods, _ := filepath.Glob("/lib/modules/ptp/*.ko")
	for _, m := range mods {
		name := strings.TrimSuffix(filepath.Base(m), ".ko")
		if err := loadModule(m); err != nil {
			var errno unix.Errno
			if errors.As(err, &errno) {
				o.Modules[name] = unix.ErrnoName(errno) + ": " + err.Error()
			} else {
				o.Modules[name] = err.Error()
			}
		} else {
			o.Modules[name] = "loaded"
		}
	}
	if len(mods) == 0 {
		t.Error("the host put no PHC modules in /lib/modules/ptp")
	}
	o.PHCs = hostinfo.PHCs(hostinfo.System())
	for _, p := range o.PHCs {
		d, err := clock.OpenPHC(p.Device)
		if err != nil {
			o.Readings = append(o.Readings, err.Error())
			continue
		}
		for range 5 {
			r, err := d.Read()
			if err != nil {
				o.Readings = append(o.Readings, err.Error())
				break
			}
			o.Readings = append(o.Readings, d.Name()+" "+r.Method+" offset "+r.Offset().String()+" width "+r.Width.String())
		}
		d.Close()
	}
	// slewd with the PHC the guest would have: a clear refusal when there
	// is none, a run of a few seconds when there is one.
	dev := "/dev/ptp0"
	if len(o.PHCs) > 0 {
		dev = o.PHCs[0].Device
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/sbin/slewd", "run", "--monitor-only", "--log-level", "info",
		"--state-dir", t.TempDir(), "--run-dir", t.TempDir(), "--phc", dev)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	o.SlewdPHC = strings.TrimSpace(out.String())
	if err != nil {
		o.SlewdPHC += " (" + err.Error() + ")"
	}
	guest.Emit(t, "phc", o)
}
