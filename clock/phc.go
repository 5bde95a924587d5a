package clock

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// PHC is a PTP hardware clock read against the system clock: a NIC's
// clock, or a hypervisor's (ptp_kvm, ptp_hyperv, ptp_vmw), which is the
// host's own CLOCK_REALTIME. Device (a /dev/ptpN) is the real one; the
// simulator has its own.
type PHC interface {
	// Read takes one reading of the PHC against REALTIME and RAW.
	Read() (PHCReading, error)
	// Name is how logs and reports name it: "PHC0 (ptp_kvm)".
	Name() string
}

// PHCReading is the PHC's time and the system clock's at one instant,
// as closely as the driver can tell.
type PHCReading struct {
	PHC  time.Time     // the PHC's time
	Real time.Time     // CLOCK_REALTIME at the same instant
	Raw  time.Duration // CLOCK_MONOTONIC_RAW at the same instant
	// Width is how far apart the system clock's readings around the PHC
	// reading were (0 for a cross-timestamp): the PHC's time lies within
	// Width/2 of Real.
	Width time.Duration
	// Method is the ioctl that gave it: "precise" (PTP_SYS_OFFSET_PRECISE,
	// a hardware cross-timestamp), "extended" (PTP_SYS_OFFSET_EXTENDED,
	// REALTIME read right around the device) or "basic" (PTP_SYS_OFFSET,
	// REALTIME read around the whole driver call).
	Method string
}

// Offset is PHC time minus REALTIME: NTP's sign, positive when the
// system clock is behind the PHC.
func (r PHCReading) Offset() time.Duration { return r.PHC.Sub(r.Real) }

// RealMinusRaw is REALTIME − RAW at the reading.
func (r PHCReading) RealMinusRaw() time.Duration { return time.Duration(r.Real.UnixNano()) - r.Raw }

// phcMethod is a way to read a PHC, best first.
type phcMethod int

const (
	phcPrecise phcMethod = iota
	phcExtended
	phcBasic
	phcNone
)

func (m phcMethod) String() string {
	return [...]string{"precise", "extended", "basic", "none"}[m]
}

// phcTriple is one PHC reading between two REALTIME readings.
type phcTriple struct{ before, phc, after time.Time }

// narrowest turns triples into a reading: the one with the narrowest
// bracket, REALTIME at its midpoint. A triple whose bracket runs
// backwards (REALTIME stepped during it) is not a reading.
func narrowest(ts []phcTriple) (phc, real time.Time, width time.Duration, err error) {
	found := false
	for _, t := range ts {
		w := t.after.Sub(t.before)
		if w < 0 || (found && w >= width) {
			continue
		}
		phc, real, width, found = t.phc, t.before.Add(w/2), w, true
	}
	if !found {
		return time.Time{}, time.Time{}, 0, fmt.Errorf("no usable PHC reading among %d: REALTIME went backwards within each", len(ts))
	}
	return phc, real, width, nil
}

// inRAW places a reading taken at REALTIME real in the RAW frame, with
// REALTIME − RAW interpolated between bracketing Readings a and b.
func inRAW(real time.Time, a, b Reading) time.Duration {
	ra, rb := a.RealMinusRaw(), b.RealMinusRaw()
	span := b.Real.Sub(a.Real)
	rmr := ra + (rb-ra)/2
	if span > 0 {
		f := max(0, min(1, float64(real.Sub(a.Real))/float64(span)))
		rmr = ra + time.Duration(f*float64(rb-ra))
	}
	return time.Duration(real.UnixNano()) - rmr
}

// PHCName is how a PHC is named: "PHC0 (ptp_kvm)" for /dev/ptp0 whose
// clock_name is ptp_kvm; the device's own name if it is not a ptpN.
func PHCName(device, clockName string) string {
	base := filepath.Base(device)
	name := base
	if n, ok := strings.CutPrefix(base, "ptp"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		name = "PHC" + n
	}
	if clockName = strings.TrimSpace(clockName); clockName != "" {
		name += " (" + clockName + ")"
	}
	return name
}
