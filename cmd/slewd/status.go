package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/boot"
	"slewd/clock"
)

// clocksourcePath names the kernel's current clocksource.
const clocksourcePath = "/sys/devices/system/clocksource/clocksource0/current_clocksource"

func init() {
	register(60, &cli.Command{
		Name:  "status",
		Usage: "show the kernel clock's state: synchronized or not, rate, pending slews (read-only)",
		Description: "Reads the kernel clock with adjtimex in its read-only forms (modes 0 and\n" +
			"ADJ_OFFSET_SS_READ), so it needs no privileges and changes nothing. Shows\n" +
			"whether the kernel considers the clock synchronized and why, the tick and\n" +
			"frequency as rates, a pending adjtime() slew, the PLL offset, the error\n" +
			"bounds, the TAI offset and the clocksource, and says in plain words what\n" +
			"the clock is doing.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (for scripts)"},
			controlSocketFlag(), // the daemon's view: status_daemon.go
		},
		Action: func(c *cli.Context) error {
			cs, _ := os.ReadFile(clocksourcePath)
			st, err := readKernelStatus(clock.System{}, strings.TrimSpace(string(cs)), readUptime())
			if err != nil {
				return cli.Exit("slewd status: "+err.Error(), 1)
			}
			return printStatus(c, st) // status_daemon.go: the kernel's view, then the daemon's
		},
	})
}

// kernelStatus is the kernel clock's state, decoded. JSON names are
// stable: scripts (and .ci/run) read them.
type kernelStatus struct {
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
}

// readKernelStatus asks the kernel (read-only) and decodes the answer.
func readKernelStatus(c clock.Timexer, clocksource string, uptime time.Duration) (kernelStatus, error) {
	k, err := boot.ReadKernel(c)
	if err != nil {
		return kernelStatus{}, err
	}
	return decodeStatus(k, clocksource, uptime), nil
}

// readUptime is how long the machine has been up (/proc/uptime: BOOTTIME
// seconds), 0 if unknown.
func readUptime() time.Duration {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	sec, err := strconv.ParseFloat(f[0], 64)
	if err != nil || sec < 0 || math.IsNaN(sec) || math.IsInf(sec, 0) {
		return 0
	}
	return time.Duration(sec * 1e9)
}

// maxErrorFill is how long maxerror takes to grow from 0 to the kernel's
// 16 s limit at 500 µs per second: 8.9 hours.
const maxErrorFill = time.Duration(clock.MaxErrorLimit/clock.MaxErrorGrowth) * time.Second

// decodeStatus turns what the kernel holds into a status and a verdict;
// uptime (0: unknown) says whether maxerror at its limit can mean "not
// refreshed for 8.9 hours". It does no I/O.
func decodeStatus(k boot.KernelClock, clocksource string, uptime time.Duration) kernelStatus {
	singleshotUs := int64(k.Singleshot / time.Microsecond)
	maxErrUs := int64(k.MaxError / time.Microsecond)
	s := kernelStatus{
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
func verdict(s kernelStatus, k clock.KernelState) string {
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

func writeStatusJSON(w io.Writer, s kernelStatus) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func writeStatusText(w io.Writer, s kernelStatus) {
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
}
