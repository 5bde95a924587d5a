package adjtime

import (
	"fmt"
	"log/slog"
	"math"
	"time"

	"slewd/clock"
)

// Method is how the Slewer makes the kernel slew.
type Method int

const (
	// MethodPLL pumps the kernel PLL offset every second
	// (STA_PLL|STA_FREQHOLD, time constant 0). Crash-safe by construction:
	// what is armed drains by itself and the rate returns to nominal.
	MethodPLL Method = iota
	// MethodTick biases tick and frequency for the bulk of a slew, stops it
	// at a CLOCK_MONOTONIC_RAW deadline and hands the tail to the
	// singleshot, with a write-ahead journal so that a restarted slewd
	// undoes the bias. Kept for comparison; see docs/crash-safety.md.
	MethodTick
)

func (m Method) String() string {
	switch m {
	case MethodPLL:
		return "pll"
	case MethodTick:
		return "tick"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// ParseMethod parses a --slew-method value.
func ParseMethod(s string) (Method, error) {
	switch s {
	case "pll", "":
		return MethodPLL, nil
	case "tick":
		return MethodTick, nil
	}
	return 0, fmt.Errorf("unknown slew method %q: use pll (default) or tick", s)
}

// KernelMaxRatePPM is the fastest the kernel slews with tick and frequency:
// tick ±10 % plus frequency ±500 ppm.
const KernelMaxRatePPM = 100500

// SlewerConfig configures a Slewer.
type SlewerConfig struct {
	Method Method
	// MaxRatePPM caps the slew rate (default KernelMaxRatePPM). Slewing
	// changes CLOCK_MONOTONIC too, so programs with timers see it.
	MaxRatePPM float64
	// SyncThreshold: the kernel is told the clock is synchronized
	// (STA_UNSYNC cleared, which starts its 11-minute RTC writes) only
	// when the remaining correction plus the error bound is below it.
	SyncThreshold time.Duration
	// DryRun measures and plans but never changes the kernel.
	DryRun bool
	// Journal persists tick-method slews; needed for MethodTick.
	Journal *Journal
}

// Slewer makes CLOCK_REALTIME − CLOCK_MONOTONIC_RAW follow a target
// trajectory (true time against RAW, from the Servo), by slewing only. It
// is the one part of slewd that writes the kernel clock, and it never
// steps: no ADJ_SETOFFSET, no clock_settime.
type Slewer struct {
	clk clock.Clock
	drv clock.Driver
	cfg SlewerConfig
	log *slog.Logger

	// Target: REALTIME − RAW should be tPhase + tFreq·(raw − tRaw).
	hasTarget bool
	tRaw      time.Duration
	tPhase    time.Duration
	tFreqPPM  float64

	baseTick, baseFreq int64           // programmed drift compensation
	baseRate           float64         // its rate against RAW, s/s
	baseSet            bool            // written to the kernel
	basePPM            float64         // the drift compensation asked for
	tookTick, tookFreq int64           // what the kernel held after writing it
	status             clock.NTPStatus // status last written

	// PLL pump state.
	armed   float64 // seconds armed at the last write
	armedNs int64   // what the kernel took for it, ns
	armSec  int64   // REALTIME second of the last arm
	chunk   float64 // rate of the current second's PLL chunk, s/s

	// What the last measurement saw.
	lastErr   float64 // REALTIME − target, s: positive is ahead
	lastRaw   time.Duration
	measured  bool
	rootDist  time.Duration // of the estimate behind the target
	sigma     time.Duration
	synced    bool
	maxRateUs float64

	tick *tickBulk // MethodTick state

	pending Interference // found by pump steps, for CheckKernel
}

// NewSlewer returns a Slewer for the kernel clock clk.
func NewSlewer(clk clock.Clock, cfg SlewerConfig, log *slog.Logger) *Slewer {
	if cfg.MaxRatePPM <= 0 || cfg.MaxRatePPM > KernelMaxRatePPM {
		cfg.MaxRatePPM = KernelMaxRatePPM
	}
	if cfg.SyncThreshold <= 0 {
		cfg.SyncThreshold = 10 * time.Millisecond
	}
	s := &Slewer{clk: clk, drv: clock.NewDriver(clk), cfg: cfg, log: log, baseTick: clock.NominalTick}
	if cfg.Method == MethodTick {
		s.tick = &tickBulk{}
	}
	return s
}

func (s *Slewer) maxRate() float64 { return s.cfg.MaxRatePPM * 1e-6 }

// claim words a log line about something done to the kernel: in a dry
// run nothing was, and the line must not say otherwise.
func (s *Slewer) claim(msg string) string {
	if s.cfg.DryRun {
		return "dry run, not done: " + msg
	}
	return msg
}

// apply writes ch to the kernel and returns what it took. In dry-run mode
// it writes nothing and returns what was asked for.
func (s *Slewer) apply(ch clock.Change) (clock.KernelState, error) {
	if s.cfg.DryRun {
		return clock.KernelState{Tick: ch.Tick, FrequencyPPM: ch.FrequencyPPM, PLLOffset: ch.PLLOffset}, nil
	}
	return s.drv.Apply(ch)
}

// armSingleshot hands d to the adjtime singleshot (not in dry-run mode)
// and returns what was pending.
func (s *Slewer) armSingleshot(d time.Duration) (time.Duration, error) {
	if s.cfg.DryRun {
		return 0, nil
	}
	return s.drv.ArmSingleshot(d)
}

// tickFreq is the change that sets tick and frequency (raw units) together.
func tickFreq(tick, freq int64) clock.Change {
	return clock.Change{Tick: tick, SetFrequency: true, FrequencyPPM: clock.FreqToPPM(freq)}
}

// owned says whether the kernel is in the PLL mode the pump needs
// (clock.PLLMode): the PLL on so that PLL offsets are taken, frequency
// held so the kernel PLL never changes the frequency slewd sets, ns units,
// time constant 0 (a quarter per second).
func owned(k clock.KernelState) bool {
	return k.Status.PLL && k.Status.FreqHold && k.Status.Nano && k.TimeConstant == 0
}

// TakeControl is the first thing a daemon does: it cancels whatever
// correction a previous process left in the kernel (a singleshot, a PLL
// offset; they would fight the new plan), puts the kernel PLL in the mode
// the pump needs, and sets the base frequency. The clock is not moved; a
// correction that was under way is simply measured again and redone.
func (s *Slewer) TakeControl(basePPM float64) error {
	cur, err := s.drv.Read()
	if err != nil {
		return err
	}
	if s.tick != nil {
		if err := s.tick.recover(s, cur); err != nil {
			return err
		}
	}
	if !s.cfg.DryRun {
		left, err := s.drv.CancelSingleshot()
		if err != nil {
			return err
		}
		if left != 0 {
			s.log.Info("cancelled a pending adjtime slew left by another program", "remaining", left)
		}
	}
	if t, _ := baseTickFreq(basePPM); cur.Tick != t && s.tick == nil {
		s.log.Warn(s.claim("the kernel tick is not the drift compensation's (a slewing daemon may have died); setting it"),
			"tick", cur.Tick, "rate_ppm", clock.RatePPM(cur.Tick, 0), "base_tick", t)
	}
	// The PLL mode, the PLL offset cancelled and the clock unsynchronized,
	// in one call.
	s.status = clock.PLLMode(false)
	if _, err := s.apply(clock.Change{
		Status:          &s.status,
		SetTimeConstant: true, TimeConstant: 0,
		SetPLLOffset: true, PLLOffset: 0,
		SetErrors: true, MaxError: clock.MaxErrorLimit * time.Microsecond, EstError: clock.MaxErrorLimit * time.Microsecond,
	}); err != nil {
		return fmt.Errorf("setting up the kernel PLL: %w", err)
	}
	if cur.PLLOffset != 0 && cur.Status.PLL {
		s.log.Info(s.claim("cancelled a pending PLL correction"), "remaining", cur.PLLOffset)
	}
	// The chunk already loaded for this second (from what was armed) runs
	// out at the next second boundary; until then assume a quarter of it.
	s.chunk = 0
	if cur.Status.PLL {
		s.chunk = float64(cur.PLLOffset) / 3 / 1e9
	}
	s.armSec = s.clk.Now().Unix()
	return s.SetBaseFrequency(basePPM)
}

// SetBaseFrequency programs the drift compensation: REALTIME runs at
// 1+ppm·1e-6 against RAW without any slew. It goes into the kernel's
// frequency, and into tick only beyond what frequency can hold.
func (s *Slewer) SetBaseFrequency(ppm float64) error {
	tick, freq := baseTickFreq(ppm)
	if tick == s.baseTick && freq == s.baseFreq && s.baseSet {
		return nil
	}
	if s.biasing() {
		// The bulk owns tick/freq; the new base takes effect when it ends.
		s.baseTick, s.baseFreq, s.basePPM = tick, freq, ppm
		s.baseRate = clock.RatePPM(tick, freq) * 1e-6
		return nil
	}
	k, err := s.apply(tickFreq(tick, freq))
	if err != nil {
		return fmt.Errorf("setting the base frequency to %.3f ppm: %w", ppm, err)
	}
	s.baseTick, s.baseFreq, s.baseSet, s.basePPM = tick, freq, true, ppm
	// What the kernel holds now (its readback of a frequency may differ in
	// the last unit): what a later look compares with.
	s.tookTick, s.tookFreq = k.Tick, k.FrequencyRaw()
	s.baseRate = clock.RatePPM(tick, freq) * 1e-6
	return nil
}

func baseTickFreq(ppm float64) (tick, freq int64) {
	tick = clock.NominalTick
	if math.Abs(ppm) > 450 {
		tick += int64(math.Round(ppm / clock.PPMPerTick))
		tick = min(max(tick, clock.MinTick), clock.MaxTick)
		ppm -= float64(tick-clock.NominalTick) * clock.PPMPerTick
	}
	return tick, clock.PPMToFreq(math.Max(-clock.MaxFreqPPM, math.Min(clock.MaxFreqPPM, ppm)))
}

// SetTarget sets the trajectory REALTIME − RAW must follow: phase (true
// time minus RAW) at RAW time raw, advancing at freqPPM. rootDist and
// sigma are the error bound and noise of the estimate it came from; they
// go into the kernel's maxerror and esterror.
func (s *Slewer) SetTarget(raw, phase time.Duration, freqPPM float64, rootDist, sigma time.Duration) {
	s.hasTarget = true
	s.tRaw, s.tPhase, s.tFreqPPM = raw, phase, freqPPM
	s.rootDist, s.sigma = rootDist, sigma
}

func (s *Slewer) target(raw time.Duration) float64 {
	dt := (raw - s.tRaw).Seconds()
	return s.tPhase.Seconds() + s.tFreqPPM*1e-6*dt
}

// Measure reads the clock and returns REALTIME minus the target (positive:
// the clock is ahead), using a bracketed reading against RAW.
func (s *Slewer) Measure() (clock.Reading, time.Duration) {
	rd := clock.Read(s.clk, 4)
	// Subtract in integer nanoseconds first: both terms are ~1.8e18 ns.
	e := (rd.RealMinusRaw() - s.tPhase).Seconds() - s.tFreqPPM*1e-6*(rd.Raw-s.tRaw).Seconds()
	s.lastErr, s.lastRaw, s.measured = e, rd.Raw, true
	return rd, time.Duration(math.Round(e * 1e9))
}

// Remaining is the correction still to be made at the last measurement:
// target minus REALTIME (NTP sign: positive means the clock is behind).
func (s *Slewer) Remaining() time.Duration {
	return time.Duration(math.Round(-s.lastErr * 1e9))
}

// Synced reports whether the kernel was last told the clock is synchronized.
func (s *Slewer) Synced() bool { return s.synced }

// Idle is what Control returns when no step is due until a new target.
const Idle = time.Duration(math.MaxInt64)

// Control runs one control step: measure, decide, arm. It returns the
// CLOCK_MONOTONIC_RAW time of the next step, or Idle. Callers wait for it
// on timers that run on CLOCK_MONOTONIC, which slewing makes up to 10 %
// fast or slow: wake early and check RAW again.
func (s *Slewer) Control() (time.Duration, error) {
	if !s.hasTarget {
		return Idle, nil
	}
	if s.tick != nil {
		return s.tick.control(s)
	}
	return s.pump()
}

// pumpTolerance: below this the correction is done (the kernel's ns units
// and the readings' bracket widths are finer).
const pumpTolerance = 200 * time.Nanosecond

func (s *Slewer) pump() (time.Duration, error) {
	cur, err := s.drv.Read()
	if err != nil {
		return 0, err
	}
	rd, _ := s.Measure()
	sec, frac := splitSecond(rd.Real)
	if err := s.checkInterference(cur); err != nil {
		return 0, err
	}
	idle := s.armedNs == 0 && s.chunk == 0
	if !idle && !s.takenSinceArm(cur) {
		if sec == s.armSec {
			// Woken before the second boundary: come back just after it.
			return rd.Raw + s.rawUntilPhase(frac, stepPhase, s.chunk), nil
		}
		// Past the boundary, but timekeeping has not accumulated the
		// interval that crossed it (at most 1/HZ of RAW): a moment more.
		return rd.Raw + 2*time.Millisecond, nil
	}
	// The kernel has just moved a quarter of the armed offset into this
	// second (tc 0), leaving three quarters: the chunk now running is a
	// third of what is left. It runs until timekeeping next crosses a
	// second: at the boundary on a busy CPU, at the next wakeup (ours,
	// just after the boundary) on an idle tickless one. (With nothing
	// armed and nothing running, the first arm need not wait for a
	// boundary.)
	if !idle {
		s.chunk = float64(cur.PLLOffset) / 3 / 1e9
	}
	running := 1 - frac + stepPhase/2
	need := -s.lastErr - chunkEffect(s.chunk, s.baseRate)*running
	arm := pumpArm(need, s.maxRate(), s.baseRate)
	if math.Abs(need) < pumpTolerance.Seconds() {
		arm = 0
	}
	if err := s.arm(arm, sec); err != nil {
		return 0, err
	}
	if arm == 0 && math.Abs(s.chunk) < 1e-9 {
		return Idle, nil // landed: nothing to do until a new target
	}
	return rd.Raw + s.rawUntilPhase(frac, stepPhase, s.chunk), nil
}

// stepPhase is where in its second REALTIME is when the pump steps: just
// after the boundary, once the kernel has taken the chunk for the second.
const stepPhase = 0.02

// takenSinceArm says whether second_overflow has run since the last arm:
// the kernel then holds three quarters of what was armed, no longer all
// of it (its readback of an arm is exact to the nanosecond).
func (s *Slewer) takenSinceArm(cur clock.KernelState) bool {
	off := int64(cur.PLLOffset)
	if s.armedNs > -8 && s.armedNs < 8 {
		// Too little armed to see a quarter of it go (the readback is
		// exact to a nanosecond): go by the second boundary.
		return s.armSec < s.clk.Now().Unix()
	}
	return off-s.armedNs < -1 || off-s.armedNs > 1
}

// rawUntilPhase is how much CLOCK_MONOTONIC_RAW passes until REALTIME is
// next at phase of its second, running at the base rate plus chunk.
func (s *Slewer) rawUntilPhase(frac, phase, chunk float64) time.Duration {
	return time.Duration(float64(untilPhase(frac, phase)) / (1 + s.baseRate + chunk))
}

// arm writes the PLL offset together with the sync status, in one call.
func (s *Slewer) arm(offset float64, sec int64) error {
	ch := s.statusChange()
	ch.SetPLLOffset, ch.PLLOffset = true, time.Duration(math.Round(offset*1e9))
	k, err := s.apply(ch)
	if err != nil {
		return fmt.Errorf("arming a PLL correction of %v: %w", ch.PLLOffset, err)
	}
	if !s.cfg.DryRun {
		// The kernel's own REALTIME at the call: a boundary may have
		// passed since the reading the decision was made on.
		sec = k.Time.Unix()
	}
	s.armed, s.armSec, s.armedNs = offset, sec, int64(k.PLLOffset)
	return nil
}

// statusChange builds the status, maxerror and esterror the kernel should
// hold now: honest about the correction still to make, and unsynchronized
// until the clock really is within SyncThreshold. Clearing STA_UNSYNC
// starts the kernel's 11-minute RTC writes, so it must not happen early.
func (s *Slewer) statusChange() clock.Change {
	rem := time.Duration(math.Abs(s.lastErr) * 1e9)
	maxErr := rem + s.rootDist
	estErr := rem + s.sigma
	s.synced = s.hasTarget && s.measured && maxErr <= s.cfg.SyncThreshold
	s.status = clock.PLLMode(s.synced)
	st := s.status
	return clock.Change{Status: &st, SetErrors: true, MaxError: maxErr, EstError: estErr}
}

// UpdateStatus refreshes status, maxerror and esterror in the kernel
// (which grows maxerror by 500 µs every second by itself).
func (s *Slewer) UpdateStatus() error {
	if !s.hasTarget {
		return nil
	}
	s.Measure()
	if _, err := s.apply(s.statusChange()); err != nil {
		return fmt.Errorf("updating the kernel's sync status: %w", err)
	}
	return nil
}

// checkInterference notices another program steering the clock during a
// pump step and takes it back at once (the pump needs its PLL mode); the
// discipline hears of it from CheckKernel. An error is the kernel refusing
// to give the clock back.
func (s *Slewer) checkInterference(cur clock.KernelState) error {
	i := s.inspect(cur)
	if i.None() {
		return nil
	}
	s.pending = merge(s.pending, i)
	return s.takeBack(i)
}

// Stop cancels any correction under way (the armed PLL offset, a tick
// bulk) and forgets the target: nothing is slewed until SetTarget again.
// The drift compensation stays.
func (s *Slewer) Stop() error {
	if s.biasing() {
		if err := s.tick.stop(s); err != nil {
			return err
		}
	}
	had := s.hasTarget
	s.hasTarget = false // no longer vouching for the clock either
	if had {
		if err := s.arm(0, s.armSec); err != nil {
			return err
		}
	}
	return nil
}

// Release hands the kernel back when slewd stops (SIGTERM): the drift
// compensation stays, and whatever correction is left goes to mechanisms
// that finish by themselves and stop at zero: the PLL offset (up to 0.5 s)
// and the adjtime singleshot for the rest, at 500 ppm.
func (s *Slewer) Release() error {
	if s.biasing() {
		if err := s.tick.stop(s); err != nil {
			return err
		}
	}
	cur, err := s.drv.Read()
	if err != nil {
		return err
	}
	if !s.hasTarget {
		return nil
	}
	rd, _ := s.Measure()
	_, frac := splitSecond(rd.Real)
	if cur.Status.PLL && s.takenSinceArm(cur) {
		s.chunk = float64(cur.PLLOffset) / 3 / 1e9
	}
	// The chunk running now goes on until the next second at most.
	need := -s.lastErr - chunkEffect(s.chunk, s.baseRate)*(1-frac)
	pll := safeArm(need, s.baseRate)
	rest := need - drainEffect(pll, s.baseRate)
	// Leaving: no longer vouching for the clock (statusChange sets
	// STA_UNSYNC without a target).
	s.hasTarget = false
	if err := s.arm(pll, s.armSec); err != nil {
		return err
	}
	// The singleshot moves 500 µs per REALTIME second, which lasts
	// 1/(1+base±0.0005) of RAW: ask for that much more or less.
	us := int64(math.Round(rest * (1 + s.baseRate + math.Copysign(clock.SingleshotRate*1e-6, rest)) * 1e6))
	if us != 0 {
		if _, err := s.armSingleshot(time.Duration(us) * time.Microsecond); err != nil {
			return err
		}
	}
	s.log.Info(s.claim("handed the remaining correction to the kernel"), "pll", dur(pll), "singleshot", dur(rest))
	return nil
}

func dur(s float64) time.Duration { return time.Duration(math.Round(s * 1e9)) }

// splitSecond splits a REALTIME reading into its second and the fraction.
func splitSecond(t time.Time) (int64, float64) {
	return t.Unix(), float64(t.Nanosecond()) / 1e9
}

// untilPhase is how much REALTIME passes until it next reaches phase
// within its second.
func untilPhase(frac, phase float64) time.Duration {
	d := phase - frac
	if d < 0 {
		d++ // past it in this second: the next one
	}
	if d < 0.001 {
		d++ // at it (just stepped there): the next one
	}
	return time.Duration(d * 1e9)
}

// EarlyWait is how long to wait on CLOCK_MONOTONIC for something due after
// d of CLOCK_MONOTONIC_RAW: a little less, because slewing can make
// MONOTONIC run 10 % slow, and then check RAW again. Idle stays idle.
func EarlyWait(d time.Duration) time.Duration {
	switch {
	case d == Idle:
		return time.Hour
	case d <= 2*time.Millisecond:
		return max(d, time.Microsecond)
	}
	return d / 8 * 7
}
