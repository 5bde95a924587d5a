package kernelstatus

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// WriteText writes `slewd status`'s kernel and machine lines.
func WriteText(w io.Writer, s Status) {
	sync := "yes (" + s.State + ")"
	if !s.Synchronized {
		sync = "no (" + s.State + "): " + strings.Join(s.UnsyncReasons, "; ")
	} else if s.UnsyncInS != nil {
		sync += fmt.Sprintf("; maxerror reaches 16 s, and the kernel sets STA_UNSYNC, in %s unless refreshed", durationWords(*s.UnsyncInS))
	}
	ss := "none pending"
	if s.PendingSingleshotUs != 0 {
		ss = fmt.Sprintf("%s pending (%d µs), %s left at 500 µs/s", signedDuration(s.PendingSingleshotS), s.PendingSingleshotUs, durationWords(s.SingleshotLeftS))
	}
	pll := fmt.Sprintf("%s, time constant %d (%s of the rest each second)", signedDuration(s.PLLOffsetS), s.PLLTimeConstant, fraction(s.PLLTimeConstant))
	if s.PLLOffsetNs == 0 {
		pll = fmt.Sprintf("0 s, time constant %d", s.PLLTimeConstant)
	}
	flags := strings.Join(s.StatusFlags, " ")
	if flags == "" {
		flags = "(none)"
	}
	cs := s.Clocksource
	if cs == "" {
		cs = "unknown"
	}
	fmt.Fprintf(w, "synchronized:  %s\n", sync)
	fmt.Fprintf(w, "rate:          %+.3f ppm: tick %d µs (%+.0f ppm), frequency %+.3f ppm (%d in the kernel's units of 2^-16 ppm)\n", s.RatePPM, s.TickUs, s.TickPPM, s.FrequencyPPM, s.FrequencyRaw)
	fmt.Fprintf(w, "singleshot:    %s\n", ss)
	fmt.Fprintf(w, "PLL offset:    %s\n", pll)
	fmt.Fprintf(w, "maxerror:      %.6f s   esterror: %.6f s\n", s.MaxErrorS, s.EstErrorS)
	fmt.Fprintf(w, "TAI offset:    %d s\n", s.TAIOffsetS)
	fmt.Fprintf(w, "status:        %s (%#x)\n", flags, s.StatusRaw)
	fmt.Fprintf(w, "clocksource:   %s\n", cs)
	fmt.Fprintf(w, "verdict:       %s\n", s.Verdict)
	if s.Virtualization != "" {
		m := "virtualization " + s.Virtualization + ", container " + s.Container
		if s.UserNamespace {
			m += ", in a user namespace (clock writes refused)"
		}
		fmt.Fprintf(w, "machine:       %s\n", m)
	}
	phcs := "none"
	if len(s.PHCs) > 0 {
		var l []string
		for _, p := range s.PHCs {
			e := p.Device
			if p.ClockName != "" {
				e += " (" + p.ClockName + ")"
			}
			if p.Reference() {
				e += ": the host's clock, use it with --phc " + p.Device
			}
			l = append(l, e)
		}
		phcs = strings.Join(l, "; ")
	}
	fmt.Fprintf(w, "PHCs:          %s\n", phcs)
}

func fastSlow(ppm float64) string {
	if ppm < 0 {
		return "slow"
	}
	return "fast"
}

// rateWords gives a rate in % when large, else in ppm.
func rateWords(ppm float64) string {
	a := math.Abs(ppm)
	if a >= 1000 {
		return fmt.Sprintf("%.3g %%", a/1e4)
	}
	return fmt.Sprintf("%.3g ppm", a)
}

func fraction(constant int64) string {
	return fmt.Sprintf("1/%d", 1<<(2+max(constant, 0)))
}

// signedDuration renders seconds as a signed offset in a readable unit.
func signedDuration(sec float64) string {
	a := math.Abs(sec)
	sign := "+"
	if sec < 0 {
		sign = "-"
	}
	switch {
	case a >= 1:
		return fmt.Sprintf("%s%.3f s", sign, a)
	case a >= 1e-3:
		return fmt.Sprintf("%s%.3f ms", sign, a*1e3)
	default:
		return fmt.Sprintf("%s%.3f µs", sign, a*1e6)
	}
}

// durationWords renders a remaining time.
func durationWords(sec float64) string {
	switch {
	case sec < 120:
		return fmt.Sprintf("%.0f s", sec)
	case sec < 2*3600:
		return fmt.Sprintf("%.0f min", sec/60)
	case sec < 2*86400:
		return fmt.Sprintf("%.1f h", sec/3600)
	default:
		return fmt.Sprintf("%.0f days", sec/86400)
	}
}
