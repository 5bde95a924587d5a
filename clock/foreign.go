package clock

import (
	"math"
	"strings"
	"time"
)

// KernelSnapshot is the kernel's NTP state at one instant: an adjtimex
// read (modes 0, or the answer of a write), the singleshot remainder
// (ADJ_OFFSET_SS_READ) and MONOTONIC_RAW when they were read.
type KernelSnapshot struct {
	Timex      Timex
	Singleshot int64 // µs, what adjtime() has left to slew
	Raw        time.Duration
}

// Foreign is a set of kernel-state changes that the kernel does not make
// by itself, so some other program (or a step) made them.
type Foreign uint32

const (
	ForeignTick       Foreign = 1 << iota // ADJ_TICK: VMware Tools slews with it
	ForeignFreq                           // ADJ_FREQUENCY
	ForeignStatus                         // writable status bits other than the leap bits
	ForeignLeap                           // STA_INS or STA_DEL
	ForeignSingleshot                     // adjtime(): ntpdate under 0.5 s, VBoxService; replaces slewd's
	ForeignPLL                            // ADJ_OFFSET or ADJ_TIMECONST
	ForeignMaxError                       // maxerror or esterror written
	ForeignTAI                            // ADJ_TAI
	// NTPCleared is the fingerprint of the kernel's ntp_clear, which
	// settimeofday, clock_settime, ADJ_SETOFFSET and an RTC resume run:
	// STA_UNSYNC set, maxerror and esterror at 16 s, the singleshot and PLL
	// offsets zeroed. The timerfd sees the step itself.
	NTPCleared
)

var foreignNames = []string{"tick", "freq", "status", "leap", "singleshot", "pll", "maxerror", "tai", "ntp-cleared"}

func (f Foreign) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	for i, n := range foreignNames {
		if f&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, "|")
}

// secondsCrossed bounds how many second_overflows the kernel ran in raw
// of MONOTONIC_RAW: REALTIME runs within ±10.05 % of RAW (tick and
// frequency), plus a PLL chunk that slewd does not use, and a window
// crosses floor or ceil of its length in seconds.
func secondsCrossed(raw time.Duration) (lo, hi int64) {
	s := raw.Seconds()
	if s < 0 {
		return 0, 0
	}
	return int64(math.Floor(s * 0.899)), int64(math.Ceil(s*1.101)) + 1
}

// ForeignChanges compares a polled kernel state with the state right
// after slewd's last write (both read back from the kernel), and reports
// what changed that the kernel does not change by itself in between:
// the singleshot drains 500 µs per second towards zero, maxerror grows
// 500 µs per second up to 16 s, where the kernel sets STA_UNSYNC, and the
// leap-second state machine advances; anything else was written.
func ForeignChanges(last, now KernelSnapshot) Foreign {
	var f Foreign
	a, b := &last.Timex, &now.Timex
	if a.Tick != b.Tick {
		f |= ForeignTick
	}
	if a.Freq != b.Freq {
		f |= ForeignFreq
	}
	if a.TAI != b.TAI {
		f |= ForeignTAI
	}
	lo, hi := secondsCrossed(now.Raw - last.Raw)

	// maxerror: last + 500 µs per second crossed, capped at 16 s.
	capped := false
	minMax := min(a.MaxError+MaxErrorGrowth*lo, MaxErrorLimit)
	maxMax := min(a.MaxError+MaxErrorGrowth*hi, MaxErrorLimit)
	if b.MaxError < minMax || b.MaxError > maxMax {
		f |= ForeignMaxError
	}
	if b.MaxError == MaxErrorLimit && a.MaxError+MaxErrorGrowth*hi >= MaxErrorLimit {
		capped = true // the kernel may have set STA_UNSYNC itself
	}
	if a.EstError != b.EstError {
		f |= ForeignMaxError
	}

	// Status: the kernel sets only STA_UNSYNC, and only at the cap.
	const leapBits = StaIns | StaDel
	sa, sb := a.Status&^StaReadOnly, b.Status&^StaReadOnly
	if (sa^sb)&leapBits != 0 {
		f |= ForeignLeap
	}
	diff := (sa ^ sb) &^ leapBits
	if capped && sa&StaUnsync == 0 && sb&StaUnsync != 0 {
		diff &^= StaUnsync
	}
	if diff != 0 {
		f |= ForeignStatus
	}
	if a.Constant != b.Constant {
		f |= ForeignPLL
	}
	// The PLL offset only drains towards zero, keeping its sign.
	if b.Offset != 0 && (a.Offset == 0 || (a.Offset > 0) != (b.Offset > 0) || abs64(b.Offset) > abs64(a.Offset)) {
		f |= ForeignPLL
	}

	// Singleshot: 500 µs per second crossed towards zero, never past it.
	rem := abs64(last.Singleshot)
	wantHi := max(rem-SingleshotRate*lo, 0)
	wantLo := max(rem-SingleshotRate*hi, 0)
	got := abs64(now.Singleshot)
	sameSign := now.Singleshot == 0 || (now.Singleshot > 0) == (last.Singleshot > 0)
	if got > wantHi || got < wantLo || !sameSign {
		f |= ForeignSingleshot
	}

	// ntp_clear: UNSYNC and both errors at the cap, both offsets zero,
	// where the kernel alone would not have got there.
	if b.Status&StaUnsync != 0 && b.MaxError == MaxErrorLimit && b.EstError == MaxErrorLimit &&
		now.Singleshot == 0 && b.Offset == 0 &&
		(a.EstError != MaxErrorLimit || wantLo > 0 || (a.Status&StaUnsync == 0 && !capped)) {
		f |= NTPCleared
		// These are what ntp_clear does, not separate writes.
		f &^= ForeignSingleshot | ForeignMaxError | ForeignPLL
		if diff == StaUnsync {
			f &^= ForeignStatus
		}
	}
	return f
}

func abs64(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
