// Package kernelstatus decodes the kernel clock's state for `slewd
// status`: what adjtimex (read-only) says, as rates, pending slews, error
// bounds and a verdict in plain words, and writes it as text. Decode is a
// plain function of what the kernel holds; Read asks the kernel through a
// clock.Timexer.
package kernelstatus

import (
	"fmt"
	"math"
	"strings"
	"time"

	"slewd/boot"
	"slewd/clock"
	"slewd/hostinfo"
)

// Status is the kernel clock's state, decoded: `slewd status --json`.
// JSON names are stable: scripts (and .ci/run) read them.
type Status struct {
	State         string   `json:"state"` // adjtimex's return value: TIME_OK, TIME_ERROR, ...
	Synchronized  bool     `json:"synchronized"`
	UnsyncReasons []string `json:"unsync_reasons"`

	TickUs       int64   `json:"tick_us"`
	TickPPM      float64 `json:"tick_ppm"`
	FrequencyPPM float64 `json:"frequency_ppm"`
	FrequencyRaw int64   `json:"frequency_raw"` // 2^-16 ppm
	RatePPM      float64 `json:"rate_ppm"`      // tick and frequency together, against CLOCK_MONOTONIC_RAW

	PendingSingleshotS  float64 `json:"pending_singleshot_s"`
	PendingSingleshotUs int64   `json:"pending_singleshot_us"`
	SingleshotLeftS     float64 `json:"singleshot_left_s"` // at 500 µs per second

	PLLOffsetS      float64  `json:"pll_offset_s"`
	PLLOffsetNs     int64    `json:"pll_offset_ns"`
	PLLTimeConstant int64    `json:"pll_time_constant"`
	PLLRatePPM      float64  `json:"pll_rate_ppm"` // the chunk of the coming second
	PLLLeftS        float64  `json:"pll_left_s"`   // until within 1 µs
	StatusFlags     []string `json:"status_flags"`
	StatusRaw       int32    `json:"status_raw"`
	MaxErrorS       float64  `json:"maxerror_s"`
	EstErrorS       float64  `json:"esterror_s"`
	MaxErrorUs      int64    `json:"maxerror_us"`
	UnsyncInS       *float64 `json:"unsync_in_s,omitempty"` // until maxerror reaches 16 s, when synchronized
	TAIOffsetS      int32    `json:"tai_offset_s"`
	TolerancePPM    float64  `json:"tolerance_ppm"`
	Clocksource     string   `json:"clocksource"`
	Verdict         string   `json:"verdict"`

	// The machine (hostinfo, as systemd-detect-virt decides): "none" on
	// bare metal; the PTP hardware clocks it offers (--phc).
	Virtualization string         `json:"virtualization"`
	Container      string         `json:"container"`
	UserNamespace  bool           `json:"user_namespace"`
	PHCs           []hostinfo.PHC `json:"phcs"`
}

// WithMachine adds what the machine is and which PHCs it has.
func (s Status) WithMachine(m hostinfo.Machine) Status {
	v := hostinfo.Detect(m)
	s.Virtualization, s.Container, s.UserNamespace = v.Virtualization, v.Container, v.UserNamespace
	s.PHCs = hostinfo.PHCs(m)
	if s.PHCs == nil {
		s.PHCs = []hostinfo.PHC{}
	}
	return s
}

// Read asks the kernel (read-only) and decodes the answer.
func Read(c clock.Timexer, clocksource string, uptime time.Duration) (Status, error) {
	k, err := boot.ReadKernel(c)
	if err != nil {
		return Status{}, err
	}
	return Decode(k, clocksource, uptime), nil
}

// maxErrorFill is how long maxerror takes to grow from 0 to the kernel's
// 16 s limit at 500 µs per second: 8.9 hours.
const maxErrorFill = time.Duration(clock.MaxErrorLimit/clock.MaxErrorGrowth) * time.Second

// Decode turns what the kernel holds into a status and a verdict;
// uptime (0: unknown) says whether maxerror at its limit can mean "not
// refreshed for 8.9 hours". It does no I/O.
func Decode(k boot.KernelClock, clocksource string, uptime time.Duration) Status {
	singleshotUs := int64(k.Singleshot / time.Microsecond)
	maxErrUs := int64(k.MaxError / time.Microsecond)
	s := Status{
		State:               k.State.String(),
		Synchronized:        k.Synchronized(),
		UnsyncReasons:       []string{},
		TickUs:              k.Tick,
		TickPPM:             k.TickPPM(),
		FrequencyPPM:        k.FrequencyPPM,
		FrequencyRaw:        k.FrequencyRaw(),
		RatePPM:             k.RatePPM(),
		PendingSingleshotUs: singleshotUs,
		PendingSingleshotS:  float64(singleshotUs) / 1e6,
		SingleshotLeftS:     math.Abs(float64(singleshotUs)) / clock.SingleshotRate,
		PLLOffsetNs:         int64(k.PLLOffset),
		PLLTimeConstant:     k.TimeConstant,
		StatusFlags:         k.Status.Names(),
		StatusRaw:           k.Status.Bits(),
		MaxErrorUs:          maxErrUs,
		MaxErrorS:           float64(maxErrUs) / 1e6,
		EstErrorS:           float64(k.EstError/time.Microsecond) / 1e6,
		TAIOffsetS:          int32(k.TAI),
		TolerancePPM:        k.TolerancePPM,
		Clocksource:         clocksource,
	}
	s.PLLOffsetS = float64(s.PLLOffsetNs) / 1e9
	// Each second the kernel moves offset >> (SHIFT_PLL + time constant)
	// into that second (second_overflow), whether or not STA_PLL is still on.
	frac := math.Ldexp(1, -int(2+max(k.TimeConstant, 0)))
	s.PLLRatePPM = float64(s.PLLOffsetNs) * frac / 1e3
	if a := math.Abs(float64(s.PLLOffsetNs)); a > 1000 {
		s.PLLLeftS = math.Ceil(math.Log(a/1000) / -math.Log1p(-frac))
	}

	if k.Status.Unsync {
		s.UnsyncReasons = append(s.UnsyncReasons, "STA_UNSYNC is set: no time daemon has marked the clock synchronized, or maxerror reached 16 s")
	}
	if k.Status.ClockErr {
		s.UnsyncReasons = append(s.UnsyncReasons, "STA_CLOCKERR is set: the clock hardware reported a fault")
	}
	if maxErrUs >= clock.MaxErrorLimit {
		s.UnsyncReasons = append(s.UnsyncReasons, maxErrorWhy(uptime))
	}
	if s.Synchronized && maxErrUs < clock.MaxErrorLimit {
		in := float64(clock.MaxErrorLimit-maxErrUs) / clock.MaxErrorGrowth
		s.UnsyncInS = &in
	}
	s.Verdict = verdict(s, k.KernelState)
	return s
}

// maxErrorWhy explains maxerror at its limit: on a machine up less than
// the 8.9 hours it takes to grow there, it is the value the kernel booted
// with: no daemon has marked the clock synchronized since boot.
func maxErrorWhy(uptime time.Duration) string {
	if uptime > 0 && uptime < maxErrorFill {
		return fmt.Sprintf("maxerror is at the kernel's 16 s limit, its value at boot: no time daemon has marked the clock synchronized since boot (up %s)",
			durationWords(uptime.Seconds()))
	}
	msg := fmt.Sprintf("maxerror is at the kernel's 16 s limit: its value at boot, or nothing has refreshed it for %.1f hours", maxErrorFill.Hours())
	if uptime > 0 {
		msg += fmt.Sprintf(" (up %s)", durationWords(uptime.Seconds()))
	}
	return msg
}

// verdict says in plain words what the clock is doing.
func verdict(s Status, k clock.KernelState) string {
	var parts []string
	if s.Synchronized {
		parts = append(parts, "the kernel considers the clock synchronized")
	} else {
		parts = append(parts, "the kernel considers the clock unsynchronized")
	}
	switch {
	case k.Tick != clock.NominalTick:
		parts = append(parts, fmt.Sprintf("the clock is running %s %s (tick %d µs) with no end in sight: "+
			"nothing in the kernel will set the tick back, so a slewing daemon (slewd, chrony) "+
			"is either in the middle of a slew or has died and left it", rateWords(s.RatePPM), fastSlow(s.RatePPM), k.Tick))
	case k.FrequencyPPM != 0:
		parts = append(parts, fmt.Sprintf("its frequency is corrected by %+.3f ppm, which stays until a daemon changes it "+
			"(normal: it compensates the oscillator's error)", s.FrequencyPPM))
	default:
		parts = append(parts, "tick and frequency are nominal")
	}
	if s.PendingSingleshotUs != 0 {
		parts = append(parts, fmt.Sprintf("an adjtime() slew of %s is pending: the clock is being slewed 500 ppm %s; %s left to correct",
			signedDuration(s.PendingSingleshotS), fastSlow(float64(s.PendingSingleshotUs)), durationWords(s.SingleshotLeftS)))
	}
	if s.PLLOffsetNs != 0 {
		p := fmt.Sprintf("the kernel PLL is slewing out %s (%s of the rest each second, %s %s now)",
			signedDuration(s.PLLOffsetS), fraction(k.TimeConstant), rateWords(s.PLLRatePPM), fastSlow(s.PLLRatePPM))
		if s.PLLLeftS > 0 {
			p += fmt.Sprintf("; %s until it is within 1 µs", durationWords(s.PLLLeftS))
		}
		parts = append(parts, p)
	}
	switch {
	case s.State == "TIME_INS":
		parts = append(parts, "a leap second will be inserted at midnight UTC (the clock goes back 1 s)")
	case s.State == "TIME_DEL":
		parts = append(parts, "a leap second will be deleted at midnight UTC")
	}
	v := strings.Join(parts, "; ")
	return strings.ToUpper(v[:1]) + v[1:] + "."
}
