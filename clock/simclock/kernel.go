// Package simclock is a simulated Linux kernel clock in virtual time, and a
// scheduler that runs slewd's own code against it.
//
// The kernel model follows kernel/time/ntp.c and timekeeping.c of Linux
// 6.x (see docs/simclock.md): tick, frequency, the PLL offset with its
// time constant, the adjtime singleshot, ADJ_SETOFFSET, status and error
// bookkeeping, leap seconds and the 11-minute RTC writes, with the same
// fixed-point units, so that a conformance table can compare it with a real
// kernel in a qemu guest. True time, CLOCK_MONOTONIC_RAW, CLOCK_MONOTONIC
// and CLOCK_REALTIME are kept apart; the oscillator has an intrinsic
// frequency error and a seeded random-walk wander.
package simclock

import (
	"math"
	"math/rand/v2"
	"syscall"
	"time"

	"slewd/clock"
)

// Kernel constants in the kernel's own fixed-point units (include/linux/timex.h).
const (
	ntpScaleShift = 32
	shiftPLL      = 2
	shiftFLL      = 2
	minSec        = 256
	maxSec        = 2048
	maxPhaseNs    = 500000000
	maxFreqNs     = 500000 // ns/s
	maxFreqScaled = int64(maxFreqNs) << ntpScaleShift
	ppmScale      = int64(1000) << (ntpScaleShift - 16) // NSEC_PER_USEC << (NTP_SCALE_SHIFT - SHIFT_USEC)
	ppmScaleInvSh = 19
	ppmScaleInv   = int64((uint64(1)<<(ppmScaleInvSh+ntpScaleShift))/uint64(ppmScale) + 1)
	maxTickAdjUs  = 500
	maxTAIOffset  = 100000
	secsPerDay    = 86400
	rtcPeriod     = 11 * 60 // seconds between RTC writes in 11-minute mode
	noLeap        = math.MaxInt64
)

// shiftRight is the kernel's shift_right: a shift that rounds towards zero.
func shiftRight(x int64, s uint) int64 {
	if x < 0 {
		return -(-x >> s)
	}
	return x >> s
}

// Oscillator describes the simulated machine's crystal.
type Oscillator struct {
	// DriftPPM is the intrinsic frequency error: positive means
	// CLOCK_MONOTONIC_RAW runs fast against true time.
	DriftPPM float64
	// Wander is the random-walk step of the fractional frequency per √s
	// (1e-9 means the frequency wanders by about 1 ppb over one second).
	Wander float64
}

// KernelConfig is a machine at boot.
type KernelConfig struct {
	HZ     int64 // CONFIG_HZ; Debian's cloud kernel uses 250
	Uptime time.Duration
	// ClockError is the initial CLOCK_REALTIME minus true time.
	ClockError time.Duration
	Oscillator

	// When second_overflow runs (and a new singleshot or PLL chunk takes
	// over). By default exactly at each REALTIME second. A real kernel runs
	// it while accumulating time, in intervals of 1/HZ of RAW:
	// AccumulationGrid runs it at the first such interval past the second,
	// on a grid of RAW with a phase drawn from the seed, as a busy CPU
	// with its tick running does. Tickless runs it at the next wakeup
	// instead (a timer or a packet for any process, or a tick or frequency
	// change), or MaxIdle after the second at the latest (default 1 s), as
	// an idle NO_HZ kernel does.
	AccumulationGrid bool
	Tickless         bool
	MaxIdle          time.Duration
}

// ntpState is struct ntp_data plus the TAI offset.
type ntpState struct {
	tickUsec       int64
	tickLength     int64 // ns << 32 per kernel tick (1/HZ s)
	tickLengthBase int64
	timeState      clock.State
	timeStatus     int32
	timeOffset     int64 // ns << 32 / HZ
	timeConstant   int64
	timeMaxError   int64 // µs
	timeEstError   int64 // µs
	timeFreq       int64 // ns/s << 32
	timeReftime    int64 // REALTIME seconds
	timeAdjust     int64 // µs
	nextLeapSec    int64
	tai            int32
}

// Kernel is the simulated timekeeping core. All times are float64
// seconds: true time since the world began, RAW and MONOTONIC since boot.
// REALTIME is wallSec + wallFrac + mono, because REALTIME and MONOTONIC
// advance together and only steps change their difference.
type Kernel struct {
	hz    int64
	osc   Oscillator
	rng   *rand.Rand
	epoch time.Time // true UTC at world time zero

	t     float64 // true time
	raw   float64
	mono  float64
	sleep float64 // BOOTTIME − MONOTONIC: time suspended since boot

	wallSec  int64
	wallFrac float64

	drift      float64 // current fractional frequency error of the oscillator
	nextWander float64 // true time of the next wander step
	rate       float64 // d(mono)/d(raw) for the current second

	nextOverflow int64 // REALTIME second at which second_overflow runs next
	ntp          ntpState

	rtcDue   float64 // true time of the next RTC write (if synchronized); <0 none
	observer Observer
	bootID   int
	// onSet is clock_was_set: the kernel set REALTIME (see changes.go).
	// interrupt makes advance return, so that what onSet scheduled runs
	// at the instant of a leap second.
	onSet     func()
	interrupt bool

	grid      bool
	tickless  bool
	maxIdle   float64
	gridPhase float64 // RAW phase of the accumulation grid, s
	pending   []int64 // REALTIME seconds crossed whose second_overflow has not run
	pendingAt float64 // true time at which they run (if not woken before)
}

// Observer sees every piece of the REALTIME trajectory: each linear
// segment between kernel events, and each discontinuity (step or leap).
// Between them REALTIME is linear in true time, so this sees every
// backward movement exactly, at any granularity.
type Observer interface {
	// Segment reports that between true times t0 and t1 REALTIME ran
	// with error err0 → err1 (REALTIME minus true time, seconds) at
	// rate ppm relative to true time.
	Segment(t0, t1, err0, err1, ratePPM float64)
	// Jump reports a discontinuity of REALTIME by delta seconds at true time t.
	Jump(t, delta float64, why string)
	// RTCWrite reports an 11-minute-mode RTC write with the clock off by err.
	RTCWrite(t, err float64)
}

func newKernel(epoch time.Time, cfg KernelConfig, rng *rand.Rand) *Kernel {
	if cfg.HZ == 0 {
		cfg.HZ = 250
	}
	if cfg.Uptime == 0 {
		cfg.Uptime = 2 * time.Second
	}
	if cfg.MaxIdle == 0 {
		cfg.MaxIdle = time.Second
	}
	k := &Kernel{hz: cfg.HZ, osc: cfg.Oscillator, rng: rng, epoch: epoch,
		grid: cfg.AccumulationGrid, tickless: cfg.Tickless, maxIdle: cfg.MaxIdle.Seconds()}
	k.gridPhase = rng.Float64() / float64(cfg.HZ)
	k.boot(0, cfg.Uptime, cfg.ClockError)
	k.drift = cfg.DriftPPM * 1e-6
	k.nextWander = 1
	return k
}

// boot resets the kernel as at power-on at true time t: RAW and MONOTONIC
// restart at uptime, REALTIME is true time plus clockError (what the RTC
// gave), and the NTP state takes its boot defaults (ntp_init).
func (k *Kernel) boot(t float64, uptime, clockError time.Duration) {
	k.t = t
	k.raw = uptime.Seconds()
	k.mono = k.raw
	k.sleep = 0
	real := float64(k.epoch.UnixNano())/1e9 + t + clockError.Seconds()
	whole := math.Floor(real - k.mono)
	k.wallSec = int64(whole)
	k.wallFrac = real - k.mono - whole
	k.ntp = ntpState{
		tickUsec:     clock.NominalTick,
		timeState:    clock.TimeOK,
		timeStatus:   clock.StaUnsync,
		timeConstant: 2,
		timeMaxError: clock.MaxErrorLimit,
		timeEstError: clock.MaxErrorLimit,
		nextLeapSec:  noLeap,
	}
	k.ntpClear()
	k.nextOverflow = int64(math.Floor(k.realFrac())) + k.wallSec + 1
	k.pending = nil
	k.rtcDue = -1
	k.bootID++
}

// realFrac is REALTIME minus wallSec, in seconds.
func (k *Kernel) realFrac() float64 { return k.wallFrac + k.mono }

// realtime in seconds since the epoch, as a float (for errors and observers).
func (k *Kernel) realSeconds() float64 { return float64(k.wallSec) + k.realFrac() }

// errorNow is REALTIME minus true time, in seconds. Computed from parts to
// keep precision: both terms are about 1.8e9 s.
func (k *Kernel) errorNow() float64 {
	trueSec := k.epoch.Unix()
	trueFrac := float64(k.epoch.Nanosecond())/1e9 + k.t
	return float64(k.wallSec-trueSec) + (k.realFrac() - trueFrac)
}

func (k *Kernel) realtime() time.Time {
	f := k.realFrac()
	whole := math.Floor(f)
	ns := int64(math.Round((f - whole) * 1e9))
	return time.Unix(k.wallSec+int64(whole), ns)
}

// updateFrequency is ntp_update_frequency: tick and frequency take effect
// at once, keeping the chunk already loaded for this second.
func (k *Kernel) updateFrequency() {
	n := &k.ntp
	secondLength := (n.tickUsec * 1000 * clock.UserHZ) << ntpScaleShift
	secondLength += n.timeFreq
	newBase := secondLength / k.hz
	n.tickLength += newBase - n.tickLengthBase
	n.tickLengthBase = newBase
	k.updateRate()
}

func (k *Kernel) updateRate() {
	// REALTIME advances tick_length per 1/HZ s of RAW.
	k.rate = float64(k.ntp.tickLength) * float64(k.hz) / (1 << ntpScaleShift) / 1e9
}

// ntpClear is __ntp_clear, run at boot and on every step.
func (k *Kernel) ntpClear() {
	n := &k.ntp
	n.timeAdjust = 0
	n.timeStatus |= clock.StaUnsync
	n.timeMaxError = clock.MaxErrorLimit
	n.timeEstError = clock.MaxErrorLimit
	k.updateFrequency()
	n.tickLength = n.tickLengthBase
	n.timeOffset = 0
	n.nextLeapSec = noLeap
	k.updateRate()
}

// secondOverflow is second_overflow: leap-second state machine, maxerror
// growth, and the PLL and singleshot chunks for the coming second. It
// returns the leap adjustment (-1: insert, REALTIME goes back 1 s).
func (k *Kernel) secondOverflow(secs int64) int {
	n := &k.ntp
	leap := 0
	switch n.timeState {
	case clock.TimeOK:
		if n.timeStatus&clock.StaIns != 0 {
			n.timeState = clock.TimeIns
			n.nextLeapSec = secs + secsPerDay - mod(secs, secsPerDay)
		} else if n.timeStatus&clock.StaDel != 0 {
			n.timeState = clock.TimeDel
			n.nextLeapSec = secs + secsPerDay - mod(secs+1, secsPerDay)
		}
	case clock.TimeIns:
		if n.timeStatus&clock.StaIns == 0 {
			n.nextLeapSec = noLeap
			n.timeState = clock.TimeOK
		} else if secs == n.nextLeapSec {
			leap = -1
			n.timeState = clock.TimeOOP
		}
	case clock.TimeDel:
		if n.timeStatus&clock.StaDel == 0 {
			n.nextLeapSec = noLeap
			n.timeState = clock.TimeOK
		} else if secs == n.nextLeapSec {
			leap = 1
			n.nextLeapSec = noLeap
			n.timeState = clock.TimeWait
		}
	case clock.TimeOOP:
		n.nextLeapSec = noLeap
		n.timeState = clock.TimeWait
	case clock.TimeWait:
		if n.timeStatus&(clock.StaIns|clock.StaDel) == 0 {
			n.timeState = clock.TimeOK
		}
	}

	n.timeMaxError += maxFreqNs / 1000
	if n.timeMaxError > clock.MaxErrorLimit {
		n.timeMaxError = clock.MaxErrorLimit
		n.timeStatus |= clock.StaUnsync
	}

	n.tickLength = n.tickLengthBase
	delta := shiftRight(n.timeOffset, uint(shiftPLL+n.timeConstant))
	n.timeOffset -= delta
	n.tickLength += delta

	maxTickAdjScaled := ((maxTickAdjUs * 1000) << ntpScaleShift) / k.hz
	switch {
	case n.timeAdjust == 0:
	case n.timeAdjust > maxTickAdjUs:
		n.timeAdjust -= maxTickAdjUs
		n.tickLength += maxTickAdjScaled
	case n.timeAdjust < -maxTickAdjUs:
		n.timeAdjust += maxTickAdjUs
		n.tickLength -= maxTickAdjScaled
	default:
		n.tickLength += (n.timeAdjust * 1000 / k.hz) << ntpScaleShift
		n.timeAdjust = 0
	}
	k.updateRate()
	return leap
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// advance moves true time forward to tEnd, or until CLOCK_MONOTONIC
// reaches monoEnd, whichever comes first, running second_overflow at every
// REALTIME second and the oscillator wander at every true second. It
// reports whether it stopped because MONOTONIC reached monoEnd.
func (k *Kernel) advance(tEnd, monoEnd float64) bool {
	for {
		if k.interrupt {
			k.interrupt = false
			return false
		}
		if k.mono >= monoEnd {
			return true
		}
		if k.t >= tEnd {
			return false
		}
		rawRate := 1 + k.drift
		monoRate := rawRate * k.rate // d(mono)/d(true)
		// Candidates for the end of this linear segment, in true time.
		end := tEnd
		what := 0 // 0: target, 1: overflow, 2: wander, 3: mono target, 4: rtc
		if dt := (float64(k.nextOverflow-k.wallSec) - k.realFrac()) / monoRate; k.t+dt < end {
			end, what = k.t+dt, 1
		}
		if k.osc.Wander > 0 && k.nextWander < end {
			end, what = k.nextWander, 2
		}
		if dt := (monoEnd - k.mono) / monoRate; k.t+dt < end {
			end, what = k.t+dt, 3
		}
		if k.rtcDue >= 0 && k.rtcDue < end {
			end, what = k.rtcDue, 4
		}
		if len(k.pending) > 0 && k.pendingAt < end {
			end, what = k.pendingAt, 5
		}
		if end < k.t {
			end = k.t
		}
		dt := end - k.t
		err0 := k.errorNow()
		t0 := k.t
		k.t = end
		k.raw += dt * rawRate
		k.mono += dt * monoRate
		if what == 3 {
			k.mono = monoEnd // exact, whatever rounding did
		}
		if k.observer != nil && dt > 0 {
			k.observer.Segment(t0, end, err0, k.errorNow(), (monoRate-1)*1e6)
		}
		switch what {
		case 1:
			secs := k.nextOverflow
			k.nextOverflow++
			switch {
			case k.tickless:
				if len(k.pending) == 0 {
					k.pendingAt = k.t + k.maxIdle
				}
				k.pending = append(k.pending, secs)
			case k.grid:
				// The first accumulation interval of RAW past this instant.
				n := math.Floor((k.raw-k.gridPhase)*float64(k.hz)) + 1
				g := k.gridPhase + n/float64(k.hz)
				k.pending = append(k.pending, secs)
				k.pendingAt = k.t + (g-k.raw)/rawRate
			default:
				k.runOverflow(secs)
			}
		case 5:
			k.runPending()
		case 2:
			k.drift += k.osc.Wander * k.rng.NormFloat64()
			k.nextWander++
		case 4:
			if k.ntp.timeStatus&clock.StaUnsync == 0 {
				if k.observer != nil {
					k.observer.RTCWrite(k.t, k.errorNow())
				}
				k.rtcDue = k.t + rtcPeriod
			} else {
				k.rtcDue = -1
			}
		}
	}
}

// runOverflow runs second_overflow for REALTIME second secs, with what a
// leap second does to REALTIME.
func (k *Kernel) runOverflow(secs int64) {
	if leap := k.secondOverflow(secs); leap != 0 {
		k.step(float64(leap), "leap second")
		k.nextOverflow = secs + 1 + int64(leap)
		k.pending = k.pending[:0]
		k.clockWasSet() // clock_was_set_delayed
	}
}

// runPending runs the second_overflows that accumulation has not reached
// yet, oldest first, as timekeeping does when it catches up.
func (k *Kernel) runPending() {
	for len(k.pending) > 0 {
		secs := k.pending[0]
		k.pending = k.pending[1:]
		k.runOverflow(secs)
	}
}

// wake is an interrupt: a tickless kernel catches its timekeeping up.
func (k *Kernel) wake() {
	if k.tickless {
		k.runPending()
	}
}

// step moves REALTIME (not MONOTONIC) by delta seconds.
func (k *Kernel) step(delta float64, why string) {
	whole := math.Floor(delta)
	k.wallSec += int64(whole)
	k.wallFrac += delta - whole
	if k.wallFrac >= 1 {
		k.wallFrac--
		k.wallSec++
	}
	if k.observer != nil {
		k.observer.Jump(k.t, delta, why)
	}
}

// adjtimex is do_adjtimex: validation (timekeeping_validate_timex), the
// step, then ntp_adjtimex.
func (k *Kernel) adjtimex(tx *clock.Timex, capSysTime bool) (clock.State, error) {
	if err := k.validate(tx, capSysTime); err != nil {
		return 0, err
	}
	if tx.Modes&(clock.AdjTick|clock.AdjFrequency) != 0 && tx.Modes&0x8000 == 0 {
		k.wake() // do_adjtimex runs timekeeping_advance for these
	}
	if tx.Modes&clock.AdjSetOffset != 0 {
		nsec := tx.Time.Usec
		if tx.Modes&clock.AdjNano == 0 {
			nsec *= 1000
		}
		delta := float64(tx.Time.Sec) + float64(nsec)/1e9
		// timekeeping_inject_offset refuses to put REALTIME below MONOTONIC.
		if k.realSeconds()+delta < k.mono {
			return 0, syscall.EINVAL
		}
		k.runPending() // timekeeping_inject_offset first brings the clock up to date
		k.step(delta, "ADJ_SETOFFSET")
		k.ntpClear()
		k.nextOverflow = k.wallSec + int64(math.Floor(k.realFrac())) + 1
		k.clockWasSet()
	}
	state := k.ntpAdjtimex(tx)
	k.notifyCMOSTimer()
	return state, nil
}

func (k *Kernel) validate(tx *clock.Timex, capSysTime bool) error {
	const adjAdjtime, adjReadOnly = 0x8000, 0x2000
	if tx.Modes&adjAdjtime != 0 {
		if tx.Modes&clock.AdjOffsetSingleshot == 0 {
			return syscall.EINVAL
		}
		if tx.Modes&adjReadOnly == 0 && !capSysTime {
			return syscall.EPERM
		}
	} else {
		if tx.Modes != 0 && !capSysTime {
			return syscall.EPERM
		}
		if tx.Modes&clock.AdjTick != 0 && (tx.Tick < clock.MinTick || tx.Tick > clock.MaxTick) {
			return syscall.EINVAL
		}
	}
	if tx.Modes&clock.AdjSetOffset != 0 {
		if !capSysTime {
			return syscall.EPERM
		}
		if tx.Time.Usec < 0 {
			return syscall.EINVAL
		}
		if tx.Modes&clock.AdjNano != 0 {
			if tx.Time.Usec >= 1e9 {
				return syscall.EINVAL
			}
		} else if tx.Time.Usec >= 1e6 {
			return syscall.EINVAL
		}
	}
	if tx.Modes&clock.AdjFrequency != 0 {
		if math.MinInt64/ppmScale > tx.Freq || math.MaxInt64/ppmScale < tx.Freq {
			return syscall.EINVAL
		}
	}
	return nil
}

// notifyCMOSTimer is ntp_notify_cmos_timer: once synchronized, the kernel
// starts writing the RTC (sync_hw_clock), first soon, then every 11 min.
func (k *Kernel) notifyCMOSTimer() {
	if k.ntp.timeStatus&clock.StaUnsync == 0 && k.rtcDue < 0 {
		k.rtcDue = k.t + 0.5
	}
}

func (k *Kernel) ntpAdjtimex(tx *clock.Timex) clock.State {
	n := &k.ntp
	const adjAdjtime, adjReadOnly = 0x8000, 0x2000
	if tx.Modes&adjAdjtime != 0 {
		saved := n.timeAdjust
		if tx.Modes&adjReadOnly == 0 {
			n.timeAdjust = tx.Offset
			k.updateFrequency()
		}
		tx.Offset = saved
	} else {
		if tx.Modes != 0 {
			k.processModes(tx)
		}
		off := shiftRight(n.timeOffset*k.hz, ntpScaleShift)
		if n.timeStatus&clock.StaNano == 0 {
			off /= 1000
		}
		tx.Offset = off
	}
	result := n.timeState
	if n.timeStatus&(clock.StaUnsync|clock.StaClockErr) != 0 {
		result = clock.TimeError
	}
	tx.Freq = shiftRight((n.timeFreq>>ppmScaleInvSh)*ppmScaleInv, ntpScaleShift)
	tx.MaxError = n.timeMaxError
	tx.EstError = n.timeEstError
	tx.Status = n.timeStatus
	tx.Constant = n.timeConstant
	tx.Precision = 1
	tx.Tolerance = maxFreqScaled / ppmScale
	tx.Tick = n.tickUsec
	tx.TAI = n.tai
	tx.PPSFreq, tx.Jitter, tx.Shift, tx.Stabil = 0, 0, 0, 0
	tx.JitCnt, tx.CalCnt, tx.ErrCnt, tx.StbCnt = 0, 0, 0, 0
	now := k.realtime()
	tx.Time.Sec = now.Unix()
	tx.Time.Usec = int64(now.Nanosecond())
	if n.timeStatus&clock.StaNano == 0 {
		tx.Time.Usec /= 1000
	}
	if tx.Time.Sec >= n.nextLeapSec {
		if n.timeState == clock.TimeIns && n.timeStatus&clock.StaIns != 0 {
			result = clock.TimeOOP
			tx.TAI++
			tx.Time.Sec--
		}
		if n.timeState == clock.TimeDel && n.timeStatus&clock.StaDel != 0 {
			result = clock.TimeWait
			tx.TAI--
			tx.Time.Sec++
		}
		if n.timeState == clock.TimeOOP && tx.Time.Sec == n.nextLeapSec {
			result = clock.TimeWait
		}
	}
	return result
}

// processModes is process_adjtimex_modes, in the kernel's order.
func (k *Kernel) processModes(tx *clock.Timex) {
	n := &k.ntp
	if tx.Modes&clock.AdjStatus != 0 {
		if n.timeStatus&clock.StaPLL != 0 && tx.Status&clock.StaPLL == 0 {
			n.timeState = clock.TimeOK
			n.timeStatus = clock.StaUnsync
			n.nextLeapSec = noLeap
		}
		if n.timeStatus&clock.StaPLL == 0 && tx.Status&clock.StaPLL != 0 {
			n.timeReftime = k.realtime().Unix()
		}
		n.timeStatus &= clock.StaReadOnly
		n.timeStatus |= tx.Status &^ clock.StaReadOnly
	}
	if tx.Modes&clock.AdjNano != 0 {
		n.timeStatus |= clock.StaNano
	}
	if tx.Modes&clock.AdjMicro != 0 {
		n.timeStatus &^= clock.StaNano
	}
	if tx.Modes&clock.AdjFrequency != 0 {
		n.timeFreq = min(max(tx.Freq*ppmScale, -maxFreqScaled), maxFreqScaled)
	}
	if tx.Modes&clock.AdjMaxError != 0 {
		n.timeMaxError = min(max(tx.MaxError, 0), clock.MaxErrorLimit)
	}
	if tx.Modes&clock.AdjEstError != 0 {
		n.timeEstError = min(max(tx.EstError, 0), clock.MaxErrorLimit)
	}
	if tx.Modes&clock.AdjTimeConst != 0 {
		n.timeConstant = min(max(tx.Constant, 0), clock.MaxTimeConstant)
		if n.timeStatus&clock.StaNano == 0 {
			n.timeConstant += 4
		}
		n.timeConstant = min(max(n.timeConstant, 0), clock.MaxTimeConstant)
	}
	if tx.Modes&clock.AdjTAI != 0 && tx.Constant >= 0 && tx.Constant <= maxTAIOffset {
		n.tai = int32(tx.Constant)
	}
	if tx.Modes&clock.AdjOffset != 0 {
		k.updateOffset(tx.Offset)
	}
	if tx.Modes&clock.AdjTick != 0 {
		n.tickUsec = tx.Tick
	}
	if tx.Modes&(clock.AdjTick|clock.AdjFrequency|clock.AdjOffset) != 0 {
		k.updateFrequency()
	}
}

// updateOffset is ntp_update_offset: the PLL/FLL.
func (k *Kernel) updateOffset(offset int64) {
	n := &k.ntp
	if n.timeStatus&clock.StaPLL == 0 {
		return
	}
	if n.timeStatus&clock.StaNano == 0 {
		offset = min(max(offset, -1000000), 1000000) * 1000
	}
	offset = min(max(offset, -maxPhaseNs), maxPhaseNs)

	realSecs := k.realtime().Unix()
	secs := realSecs - n.timeReftime
	if n.timeStatus&clock.StaFreqHold != 0 {
		secs = 0
	}
	n.timeReftime = realSecs

	var freqAdj int64
	n.timeStatus &^= clock.StaMode
	if secs >= minSec && (n.timeStatus&clock.StaFLL != 0 || secs > maxSec) {
		n.timeStatus |= clock.StaMode
		freqAdj = (offset << (ntpScaleShift - shiftFLL)) / secs
	}
	if lim := int64(1) << (shiftPLL + 1 + n.timeConstant); secs > lim {
		secs = lim
	}
	freqAdj += (offset * secs) << (ntpScaleShift - 2*(shiftPLL+2+n.timeConstant))
	freqAdj = min(freqAdj+n.timeFreq, maxFreqScaled)
	n.timeFreq = max(freqAdj, -maxFreqScaled)
	n.timeOffset = (offset << ntpScaleShift) / k.hz
}
