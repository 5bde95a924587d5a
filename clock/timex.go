package clock

import (
	"fmt"
	"strings"
	"time"
)

// Timex mirrors the kernel's struct timex (adjtimex(2), clock_adjtime(2)).
//
// The fields are fixed-width so that the rest of slewd, and the simulated
// kernel clock, behave the same on amd64, arm64 and 32-bit arm, where
// unix.Timex uses int32 for most fields. Units follow the kernel exactly.
type Timex struct {
	Modes    uint32
	Offset   int64 // PLL offset: ns with STA_NANO, else µs. Singleshot: always µs.
	Freq     int64 // frequency offset in 2^-16 ppm (65536 = 1 ppm); positive runs fast
	MaxError int64 // µs
	EstError int64 // µs
	Status   int32
	Constant int64 // PLL time constant
	// Precision and Tolerance are read-only.
	Precision int64 // µs
	Tolerance int64 // 2^-16 ppm
	// Time is the step for ADJ_SETOFFSET (Usec is ns with ADJ_NANO) and,
	// on return, the current CLOCK_REALTIME (Usec is ns with STA_NANO).
	Time Timeval
	Tick int64 // µs per USER_HZ tick; 10000 is nominal at USER_HZ 100

	PPSFreq int64
	Jitter  int64
	Shift   int32
	Stabil  int64
	JitCnt  int64
	CalCnt  int64
	ErrCnt  int64
	StbCnt  int64
	TAI     int32 // TAI-UTC offset in seconds
}

// ReadOnly reports whether a call with tx changes nothing (modes 0 or
// ADJ_OFFSET_SS_READ): all a process without CAP_SYS_TIME may do. Test
// doubles that must never write use it.
func (tx *Timex) ReadOnly() bool { return tx.Modes == 0 || tx.Modes == AdjOffsetSSRead }

// Timeval is struct timeval inside struct timex.
type Timeval struct {
	Sec  int64
	Usec int64 // µs, or ns when ADJ_NANO / STA_NANO says so
}

// Mode bits (include/uapi/linux/timex.h).
const (
	AdjOffset           uint32 = 0x0001 // ADJ_OFFSET: PLL phase offset (needs STA_PLL)
	AdjFrequency        uint32 = 0x0002 // ADJ_FREQUENCY
	AdjMaxError         uint32 = 0x0004 // ADJ_MAXERROR
	AdjEstError         uint32 = 0x0008 // ADJ_ESTERROR
	AdjStatus           uint32 = 0x0010 // ADJ_STATUS: replaces every writable status bit
	AdjTimeConst        uint32 = 0x0020 // ADJ_TIMECONST
	AdjTAI              uint32 = 0x0080 // ADJ_TAI: TAI offset from Constant
	AdjSetOffset        uint32 = 0x0100 // ADJ_SETOFFSET: step by Time
	AdjMicro            uint32 = 0x1000 // ADJ_MICRO: clear STA_NANO
	AdjNano             uint32 = 0x2000 // ADJ_NANO: set STA_NANO
	AdjTick             uint32 = 0x4000 // ADJ_TICK
	AdjOffsetSingleshot uint32 = 0x8001 // ADJ_OFFSET_SINGLESHOT: adjtime(2), 500 µs/s
	AdjOffsetSSRead     uint32 = 0xa001 // ADJ_OFFSET_SS_READ: read the singleshot remainder

	adjAdjtime      uint32 = 0x8000 // kernel-internal ADJ_ADJTIME
	adjOffsetReadOn uint32 = 0x2000 // kernel-internal ADJ_OFFSET_READONLY
)

// Status bits.
const (
	StaPLL       int32 = 0x0001
	StaPPSFreq   int32 = 0x0002
	StaPPSTime   int32 = 0x0004
	StaFLL       int32 = 0x0008
	StaIns       int32 = 0x0010
	StaDel       int32 = 0x0020
	StaUnsync    int32 = 0x0040
	StaFreqHold  int32 = 0x0080
	StaPPSSignal int32 = 0x0100
	StaPPSJitter int32 = 0x0200
	StaPPSWander int32 = 0x0400
	StaPPSError  int32 = 0x0800
	StaClockErr  int32 = 0x1000
	StaNano      int32 = 0x2000
	StaMode      int32 = 0x4000
	StaClk       int32 = 0x8000

	// StaReadOnly are the bits ADJ_STATUS cannot change.
	StaReadOnly = StaPPSSignal | StaPPSJitter | StaPPSWander | StaPPSError |
		StaClockErr | StaNano | StaMode | StaClk
)

var statusNames = []struct {
	bit  int32
	name string
}{
	{StaPLL, "STA_PLL"}, {StaPPSFreq, "STA_PPSFREQ"}, {StaPPSTime, "STA_PPSTIME"},
	{StaFLL, "STA_FLL"}, {StaIns, "STA_INS"}, {StaDel, "STA_DEL"},
	{StaUnsync, "STA_UNSYNC"}, {StaFreqHold, "STA_FREQHOLD"},
	{StaPPSSignal, "STA_PPSSIGNAL"}, {StaPPSJitter, "STA_PPSJITTER"},
	{StaPPSWander, "STA_PPSWANDER"}, {StaPPSError, "STA_PPSERROR"},
	{StaClockErr, "STA_CLOCKERR"}, {StaNano, "STA_NANO"}, {StaMode, "STA_MODE"},
	{StaClk, "STA_CLK"},
}

// StatusNames lists the names of the bits set in status, lowest bit first.
func StatusNames(status int32) []string {
	names := []string{}
	for _, s := range statusNames {
		if status&s.bit != 0 {
			names = append(names, s.name)
		}
	}
	return names
}

var modeNames = []struct {
	bit  uint32
	name string
}{
	{AdjOffset, "ADJ_OFFSET"}, {AdjFrequency, "ADJ_FREQUENCY"},
	{AdjMaxError, "ADJ_MAXERROR"}, {AdjEstError, "ADJ_ESTERROR"},
	{AdjStatus, "ADJ_STATUS"}, {AdjTimeConst, "ADJ_TIMECONST"}, {AdjTAI, "ADJ_TAI"},
	{AdjSetOffset, "ADJ_SETOFFSET"}, {AdjMicro, "ADJ_MICRO"}, {AdjNano, "ADJ_NANO"},
	{AdjTick, "ADJ_TICK"},
}

// ModeString names the mode bits of an adjtimex call, for messages.
func ModeString(modes uint32) string {
	switch {
	case modes == 0:
		return "read"
	case modes == AdjOffsetSSRead:
		return "ADJ_OFFSET_SS_READ"
	case modes == AdjOffsetSingleshot:
		return "ADJ_OFFSET_SINGLESHOT"
	}
	var names []string
	for _, m := range modeNames {
		if modes&m.bit != 0 {
			names = append(names, m.name)
		}
	}
	if rest := modes &^ 0x7fff; rest != 0 {
		names = append(names, fmt.Sprintf("%#x", rest))
	}
	return strings.Join(names, "|")
}

// State is the return value of adjtimex: the kernel's clock state.
type State int

// Clock states (TIME_* in timex.h).
const (
	TimeOK    State = 0 // no leap second pending
	TimeIns   State = 1 // a leap second will be inserted at midnight UTC
	TimeDel   State = 2 // a leap second will be deleted
	TimeOOP   State = 3 // leap second in progress
	TimeWait  State = 4 // leap second has occurred
	TimeError State = 5 // clock not synchronized (STA_UNSYNC or STA_CLOCKERR)
)

func (s State) String() string {
	switch s {
	case TimeOK:
		return "TIME_OK"
	case TimeIns:
		return "TIME_INS"
	case TimeDel:
		return "TIME_DEL"
	case TimeOOP:
		return "TIME_OOP"
	case TimeWait:
		return "TIME_WAIT"
	case TimeError:
		return "TIME_ERROR"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Kernel constants that callers need (include/linux/timex.h, kernel/time/ntp.c).
const (
	UserHZ = 100 // USER_HZ on every Linux architecture slewd targets
	// NominalTick is USER_TICK_USEC: the tick at which the clock runs at nominal rate.
	NominalTick = (1000000 + UserHZ/2) / UserHZ
	// MinTick and MaxTick bound ADJ_TICK (±10 %); outside them the kernel says EINVAL.
	MinTick = 900000 / UserHZ
	MaxTick = 1100000 / UserHZ
	// PPMPerTick is the rate change of one µs of tick.
	PPMPerTick = UserHZ
	// MaxFreqPPM is the ADJ_FREQUENCY clamp.
	MaxFreqPPM = 500
	// FreqScale converts ppm to timex Freq units (2^-16 ppm).
	FreqScale = 1 << 16
	// MaxPhase is the ADJ_OFFSET clamp.
	MaxPhase = 500 * time.Millisecond
	// MaxErrorLimit is NTP_PHASE_LIMIT: the cap of maxerror and esterror, in µs.
	// When maxerror reaches it the kernel sets STA_UNSYNC by itself.
	MaxErrorLimit = 16000000
	// MaxErrorGrowth is how much maxerror grows every second, in µs (500 ppm).
	MaxErrorGrowth = 500
	// SingleshotRate is the rate of ADJ_OFFSET_SINGLESHOT, in µs per second.
	SingleshotRate = 500
	// MaxTimeConstant is MAXTC.
	MaxTimeConstant = 10
)

// FreqToPPM converts a timex frequency to ppm.
func FreqToPPM(freq int64) float64 { return float64(freq) / FreqScale }

// PPMToFreq converts ppm to timex frequency units, rounding to nearest.
func PPMToFreq(ppm float64) int64 {
	if ppm >= 0 {
		return int64(ppm*FreqScale + 0.5)
	}
	return -int64(-ppm*FreqScale + 0.5)
}

// RatePPM is the rate, in ppm relative to CLOCK_MONOTONIC_RAW, at which the
// kernel runs CLOCK_REALTIME for a given tick and frequency (tick and
// frequency add: kernel/time/ntp.c ntp_update_frequency). It leaves out the
// per-second PLL and singleshot chunks.
func RatePPM(tick, freq int64) float64 {
	return float64(tick-NominalTick)*PPMPerTick + FreqToPPM(freq)
}
