package clock

import (
	"errors"
	"fmt"
	"syscall"
	"time"
)

// Driver is the kernel clock's NTP interface in slewd's terms: the
// operations the rest of slewd needs, with units in their types. It is the
// only user of Clock.Adjtimex outside this package's tests and the
// conformance table, so the ADJ_*/STA_* bits and the STA_NANO unit fix-up
// live here once. Every call returns what the kernel took and now holds:
// the kernel clamps frequency, PLL offset, error bounds and time constant
// without saying so.
//
// Writes need CAP_SYS_TIME; Read and SingleshotRemaining do not.
type Driver struct {
	c Timexer
}

// Timexer is the raw primitive underneath a Driver: Clock.Adjtimex, or a
// simulated world's own (simclock.World, for test set-up).
type Timexer interface {
	Adjtimex(tx *Timex) (State, error)
}

// NewDriver returns the driver for c (System, a simulated process or world).
func NewDriver(c Timexer) Driver { return Driver{c: c} }

// NTPStatus is the kernel's status word, decoded. An NTPStatus read from the
// kernel keeps the bits it does not name (FLL, PPS, read-only hardware
// bits), so that writing it back after changing a field changes only that
// field: ADJ_STATUS replaces every writable bit (pitfall 4).
type NTPStatus struct {
	// PLL is STA_PLL: the kernel PLL runs, and PLL offsets are accepted.
	// Turning it off resets the status to unsynchronized.
	PLL bool
	// FreqHold is STA_FREQHOLD: the PLL never changes the frequency.
	FreqHold bool
	// Nano is STA_NANO: PLL offsets and the time are read and written in
	// ns rather than µs. The driver converts either way; it matters only to
	// programs that read the raw struct timex.
	Nano bool
	// Unsync is STA_UNSYNC. Clearing it claims the clock is synchronized
	// and starts the kernel's 11-minute RTC writes (pitfall 5).
	Unsync bool
	// LeapInsert and LeapDelete are STA_INS and STA_DEL: a leap second
	// armed for the coming midnight UTC.
	LeapInsert, LeapDelete bool
	// ClockErr is STA_CLOCKERR (read-only): the clock hardware failed.
	ClockErr bool

	rest int32 // the bits not named above, as the kernel reported them
}

// PLLMode is the status slewd keeps while it slews with the PLL offset:
// the PLL on so that PLL offsets are taken, frequency held so that the
// kernel never changes the frequency slewd sets, ns units. synced clears
// STA_UNSYNC.
func PLLMode(synced bool) NTPStatus {
	return NTPStatus{PLL: true, FreqHold: true, Nano: true, Unsync: !synced}
}

func decodeStatus(bits int32) NTPStatus {
	return NTPStatus{
		PLL:        bits&StaPLL != 0,
		FreqHold:   bits&StaFreqHold != 0,
		Nano:       bits&StaNano != 0,
		Unsync:     bits&StaUnsync != 0,
		LeapInsert: bits&StaIns != 0,
		LeapDelete: bits&StaDel != 0,
		ClockErr:   bits&StaClockErr != 0,
		rest:       bits &^ namedStatus,
	}
}

const namedStatus = StaPLL | StaFreqHold | StaNano | StaUnsync | StaIns | StaDel | StaClockErr

// Bits is the status word (STA_* bits), as the kernel reports it.
func (s NTPStatus) Bits() int32 {
	b := s.rest
	for _, f := range []struct {
		on  bool
		bit int32
	}{{s.PLL, StaPLL}, {s.FreqHold, StaFreqHold}, {s.Nano, StaNano}, {s.Unsync, StaUnsync},
		{s.LeapInsert, StaIns}, {s.LeapDelete, StaDel}, {s.ClockErr, StaClockErr}} {
		if f.on {
			b |= f.bit
		}
	}
	return b
}

// Names lists the STA_* names of the bits set, lowest bit first.
func (s NTPStatus) Names() []string { return StatusNames(s.Bits()) }

// KernelState is the kernel clock's NTP state, decoded, in units.
type KernelState struct {
	// State is adjtimex's return value; TimeError means unsynchronized.
	State State
	// Tick is the µs added per USER_HZ tick; NominalTick runs at nominal rate.
	Tick int64
	// FrequencyPPM is the frequency offset; positive runs fast.
	FrequencyPPM float64
	// PLLOffset is the PLL phase offset still to be slewed out (positive:
	// REALTIME will gain), whatever unit STA_NANO says the kernel used.
	PLLOffset time.Duration
	// TimeConstant is the PLL time constant: every second the kernel
	// moves PLLOffset/2^(2+TimeConstant) into that second.
	TimeConstant int64
	Status       NTPStatus
	// MaxError and EstError are the error bounds (µs resolution).
	MaxError, EstError time.Duration
	// TAI is TAI minus UTC, in seconds.
	TAI int
	// TolerancePPM is the largest frequency offset the kernel accepts.
	TolerancePPM float64
	// Time is CLOCK_REALTIME when the kernel answered (µs resolution
	// without STA_NANO).
	Time time.Time
}

// RatePPM is the rate of REALTIME against RAW from tick and frequency.
func (k KernelState) RatePPM() float64 { return RatePPM(k.Tick, PPMToFreq(k.FrequencyPPM)) }

// TickPPM is the part of RatePPM the tick gives.
func (k KernelState) TickPPM() float64 { return float64(k.Tick-NominalTick) * PPMPerTick }

// FrequencyRaw is the frequency in the kernel's 2^-16 ppm units.
func (k KernelState) FrequencyRaw() int64 { return PPMToFreq(k.FrequencyPPM) }

// Synchronized is what the kernel tells other programs (timedatectl,
// ntp_gettime): not TIME_ERROR.
func (k KernelState) Synchronized() bool { return k.State != TimeError }

func decode(tx *Timex, st State) KernelState {
	status := decodeStatus(tx.Status)
	unit := time.Microsecond
	if status.Nano {
		unit = time.Nanosecond
	}
	return KernelState{
		State:        st,
		Tick:         tx.Tick,
		FrequencyPPM: FreqToPPM(tx.Freq),
		PLLOffset:    time.Duration(tx.Offset) * unit,
		TimeConstant: tx.Constant,
		Status:       status,
		MaxError:     time.Duration(tx.MaxError) * time.Microsecond,
		EstError:     time.Duration(tx.EstError) * time.Microsecond,
		TAI:          int(tx.TAI),
		TolerancePPM: FreqToPPM(tx.Tolerance),
		Time:         time.Unix(tx.Time.Sec, tx.Time.Usec*int64(unit)),
	}
}

// Read reads the kernel's state and changes nothing.
func (d Driver) Read() (KernelState, error) {
	var tx Timex
	st, err := d.c.Adjtimex(&tx)
	if err != nil {
		return KernelState{}, fmt.Errorf("reading the kernel clock: %w", err)
	}
	return decode(&tx, st), nil
}

// Change is one write to the kernel clock: the fields it sets are written
// together, in one adjtimex call, so that no reader sees half of it.
type Change struct {
	// Tick, when not 0, sets the µs per tick (MinTick..MaxTick).
	Tick int64
	// SetFrequency writes FrequencyPPM (the kernel clamps it to ±500 ppm).
	SetFrequency bool
	FrequencyPPM float64
	// SetPLLOffset arms the PLL phase offset PLLOffset, replacing what is
	// pending (needs STA_PLL; the kernel clamps it to ±0.5 s).
	SetPLLOffset bool
	PLLOffset    time.Duration
	// Status, when not nil, replaces the writable status bits, and Nano
	// chooses the unit the kernel reports in.
	Status *NTPStatus
	// SetTimeConstant writes TimeConstant (0..MaxTimeConstant).
	SetTimeConstant bool
	TimeConstant    int64
	// SetErrors writes MaxError and EstError, rounded up to µs (they are
	// bounds) and capped at 16 s.
	SetErrors          bool
	MaxError, EstError time.Duration
}

// timex encodes c. PLL offsets and time constants are written in ns mode
// unless c.Status asks for µs: the kernel reads both in the unit the status
// has after this call's ADJ_NANO/ADJ_MICRO.
func (c Change) timex() Timex {
	var tx Timex
	nano := c.Status == nil || c.Status.Nano
	if c.Status != nil {
		tx.Modes |= AdjStatus
		tx.Status = c.Status.Bits() &^ StaReadOnly
		if c.Status.Nano {
			tx.Modes |= AdjNano
		} else {
			tx.Modes |= AdjMicro
		}
	}
	if c.Tick != 0 {
		tx.Modes |= AdjTick
		tx.Tick = c.Tick
	}
	if c.SetFrequency {
		tx.Modes |= AdjFrequency
		tx.Freq = PPMToFreq(c.FrequencyPPM)
	}
	if c.SetPLLOffset || c.SetTimeConstant {
		if nano {
			tx.Modes |= AdjNano
		}
	}
	if c.SetPLLOffset {
		tx.Modes |= AdjOffset
		if nano {
			tx.Offset = int64(c.PLLOffset)
		} else {
			tx.Offset = int64(c.PLLOffset.Round(time.Microsecond) / time.Microsecond)
		}
	}
	if c.SetTimeConstant {
		tx.Modes |= AdjTimeConst
		tx.Constant = c.TimeConstant
	}
	if c.SetErrors {
		tx.Modes |= AdjMaxError | AdjEstError
		tx.MaxError = errorMicros(c.MaxError)
		tx.EstError = errorMicros(c.EstError)
	}
	return tx
}

// errorMicros rounds an error bound up to µs and caps it at the kernel's limit.
func errorMicros(d time.Duration) int64 {
	us := int64((max(d, 0) + time.Microsecond - 1) / time.Microsecond)
	return min(us, MaxErrorLimit)
}

// Apply writes c and returns the state the kernel holds after it.
func (d Driver) Apply(c Change) (KernelState, error) {
	tx := c.timex()
	if tx.Modes == 0 {
		return d.Read()
	}
	st, err := d.c.Adjtimex(&tx)
	if err != nil {
		if c.Tick != 0 && (c.Tick < MinTick || c.Tick > MaxTick) && errors.Is(err, syscall.EINVAL) {
			return KernelState{}, fmt.Errorf("tick %d µs is outside %d..%d µs: %w", c.Tick, MinTick, MaxTick, err)
		}
		return KernelState{}, err
	}
	return decode(&tx, st), nil
}

// SetFrequency sets the frequency offset and returns what the kernel took
// (it clamps to ±MaxFreqPPM and keeps 2^-16 ppm).
func (d Driver) SetFrequency(ppm float64) (tookPPM float64, err error) {
	k, err := d.Apply(Change{SetFrequency: true, FrequencyPPM: ppm})
	if err != nil {
		return 0, fmt.Errorf("setting the frequency to %.3f ppm: %w", ppm, err)
	}
	return k.FrequencyPPM, nil
}

// SetTick sets the µs per tick (MinTick..MaxTick: ±10 % of the rate).
func (d Driver) SetTick(tick int64) (KernelState, error) {
	k, err := d.Apply(Change{Tick: tick})
	if err != nil {
		return KernelState{}, fmt.Errorf("setting the tick: %w", err)
	}
	return k, nil
}

// SetTickFrequency sets tick and frequency together, so that the rate
// changes once (RatePPM of the result is the new rate).
func (d Driver) SetTickFrequency(tick int64, ppm float64) (KernelState, error) {
	k, err := d.Apply(Change{Tick: tick, SetFrequency: true, FrequencyPPM: ppm})
	if err != nil {
		return KernelState{}, fmt.Errorf("setting tick %d µs and frequency %.3f ppm: %w", tick, ppm, err)
	}
	return k, nil
}

// ArmPLLOffset replaces the pending PLL offset with offset (ns units; the
// kernel needs STA_PLL, see PLLMode) and returns what the kernel armed and
// the REALTIME second at which it did: from the next second boundary it
// slews out 1/2^(2+TimeConstant) of it every second.
func (d Driver) ArmPLLOffset(offset time.Duration) (armed time.Duration, kernelSecond int64, err error) {
	k, err := d.Apply(Change{SetPLLOffset: true, PLLOffset: offset})
	if err != nil {
		return 0, 0, fmt.Errorf("arming a PLL offset of %v: %w", offset, err)
	}
	return k.PLLOffset, k.Time.Unix(), nil
}

// CancelPLLOffset drops the pending PLL offset; the chunk the kernel took
// for the current second still runs out.
func (d Driver) CancelPLLOffset() (KernelState, error) {
	k, err := d.Apply(Change{SetPLLOffset: true})
	if err != nil {
		return KernelState{}, fmt.Errorf("cancelling the PLL offset: %w", err)
	}
	return k, nil
}

// ArmSingleshot hands offset (rounded to µs) to the adjtime(2) singleshot,
// which slews it out at SingleshotRate, goes on after slewd exits and
// stops at zero by itself. It replaces what was pending and returns that.
func (d Driver) ArmSingleshot(offset time.Duration) (previous time.Duration, err error) {
	tx := Timex{Modes: AdjOffsetSingleshot, Offset: int64(offset.Round(time.Microsecond) / time.Microsecond)}
	if _, err := d.c.Adjtimex(&tx); err != nil {
		return 0, fmt.Errorf("handing %v to the adjtime singleshot: %w", offset, err)
	}
	return time.Duration(tx.Offset) * time.Microsecond, nil
}

// CancelSingleshot stops the singleshot and returns what it had left.
func (d Driver) CancelSingleshot() (remaining time.Duration, err error) {
	tx := Timex{Modes: AdjOffsetSingleshot}
	if _, err := d.c.Adjtimex(&tx); err != nil {
		return 0, fmt.Errorf("cancelling the adjtime singleshot: %w", err)
	}
	return time.Duration(tx.Offset) * time.Microsecond, nil
}

// SingleshotRemaining reads what the singleshot has still to slew
// (ADJ_OFFSET_SS_READ: no privilege needed).
func (d Driver) SingleshotRemaining() (time.Duration, error) {
	tx := Timex{Modes: AdjOffsetSSRead}
	if _, err := d.c.Adjtimex(&tx); err != nil {
		return 0, fmt.Errorf("reading the pending adjtime slew: %w", err)
	}
	return time.Duration(tx.Offset) * time.Microsecond, nil
}

// Step steps CLOCK_REALTIME by offset (positive: forward) with one
// ADJ_SETOFFSET; CLOCK_MONOTONIC does not move. The kernel keeps tick and
// frequency but cancels the PLL offset and the singleshot, sets
// STA_UNSYNC and maxerror 16 s (pitfall 8), and leaves STA_NANO set:
// restore the status afterwards.
func (d Driver) Step(offset time.Duration) (KernelState, error) {
	tx := Timex{Modes: AdjSetOffset | AdjNano, Time: setOffsetTime(offset)}
	st, err := d.c.Adjtimex(&tx)
	if err != nil {
		return KernelState{}, fmt.Errorf("stepping the clock by %v: %w", offset, err)
	}
	return decode(&tx, st), nil
}

// setOffsetTime encodes a step for ADJ_SETOFFSET|ADJ_NANO: the kernel wants
// the nanoseconds in [0, 1e9), so a negative step is a negative second
// count plus a positive fraction: −0.3 s is {−1, 700000000}
// (kernel timekeeping_validate_timex).
func setOffsetTime(d time.Duration) Timeval {
	sec := int64(d / time.Second)
	ns := int64(d % time.Second)
	if ns < 0 {
		sec--
		ns += int64(time.Second)
	}
	return Timeval{Sec: sec, Usec: ns}
}

// SetSync tells the kernel, and through it timedatectl and
// systemd-time-wait-sync, whether the clock is synchronized and how well,
// keeping the other status bits as they are (the PLL is not flipped, a
// leap second stays armed, the unit stays). It reads the status first.
func (d Driver) SetSync(synced bool, maxErr, estErr time.Duration) (KernelState, error) {
	k, err := d.Read()
	if err != nil {
		return KernelState{}, err
	}
	st := k.Status
	st.Unsync = !synced
	k, err = d.Apply(Change{Status: &st, SetErrors: true, MaxError: maxErr, EstError: estErr})
	if err != nil {
		return KernelState{}, fmt.Errorf("setting the kernel's sync status: %w", err)
	}
	return k, nil
}

// ClearLeap disarms a leap second (STA_INS, STA_DEL) whoever armed it,
// keeping the other status bits.
func (d Driver) ClearLeap() (KernelState, error) {
	k, err := d.Read()
	if err != nil {
		return KernelState{}, err
	}
	st := k.Status
	st.LeapInsert, st.LeapDelete = false, false
	k, err = d.Apply(Change{Status: &st})
	if err != nil {
		return KernelState{}, fmt.Errorf("clearing the leap second: %w", err)
	}
	return k, nil
}
