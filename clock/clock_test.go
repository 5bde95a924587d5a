package clock

import (
	"errors"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestModeString(t *testing.T) {
	for _, tc := range []struct {
		modes uint32
		want  string
	}{
		{0, "read"},
		{AdjOffsetSingleshot, "ADJ_OFFSET_SINGLESHOT"},
		{AdjOffsetSSRead, "ADJ_OFFSET_SS_READ"},
		{AdjTick, "ADJ_TICK"},
		{AdjTick | AdjFrequency, "ADJ_FREQUENCY|ADJ_TICK"},
		{AdjOffset | AdjStatus | AdjTimeConst | AdjNano, "ADJ_OFFSET|ADJ_STATUS|ADJ_TIMECONST|ADJ_NANO"},
		{AdjSetOffset | 0x10000, "ADJ_SETOFFSET|0x10000"},
	} {
		if got := ModeString(tc.modes); got != tc.want {
			t.Errorf("ModeString(%#x) = %q, want %q", tc.modes, got, tc.want)
		}
	}
}

func TestStatusNames(t *testing.T) {
	if got := StatusNames(0); got == nil || len(got) != 0 {
		t.Errorf("StatusNames(0) = %#v, want an empty non-nil list (JSON [])", got)
	}
	got := strings.Join(StatusNames(StaPLL|StaUnsync|StaNano), ",")
	if got != "STA_PLL,STA_UNSYNC,STA_NANO" {
		t.Errorf("StatusNames = %s", got)
	}
	// Every bit of the 16 has a name.
	if n := len(StatusNames(0xffff)); n != 16 {
		t.Errorf("StatusNames(0xffff) names %d bits, want 16", n)
	}
}

func TestAdjtimexErrorSaysWhatToDo(t *testing.T) {
	perm := &AdjtimexError{Modes: AdjTick | AdjFrequency, Err: syscall.EPERM}
	if msg := perm.Error(); !strings.Contains(msg, "ADJ_FREQUENCY|ADJ_TICK") ||
		!strings.Contains(msg, "CAP_SYS_TIME") || !strings.Contains(msg, "run as root") {
		t.Errorf("EPERM message does not name the call and the capability: %q", msg)
	}
	if !ErrPermission(perm) || !errors.Is(perm, syscall.EPERM) {
		t.Error("an EPERM AdjtimexError is not recognised as a permission error")
	}
	inval := &AdjtimexError{Modes: AdjTick, Err: syscall.EINVAL}
	if msg := inval.Error(); !strings.Contains(msg, "9000..11000") {
		t.Errorf("EINVAL message does not say which values are valid: %q", msg)
	}
	if ErrPermission(inval) {
		t.Error("EINVAL taken for a permission error")
	}
}

func TestPPMConversions(t *testing.T) {
	for _, ppm := range []float64{0, 1, -1, 0.5 / FreqScale, -0.5 / FreqScale, 12.345, -499.99, 500} {
		f := PPMToFreq(ppm)
		if want := math.Round(ppm * FreqScale); float64(f) != want {
			t.Errorf("PPMToFreq(%g) = %d, want %g (nearest, halves away from zero)", ppm, f, want)
		}
		if back := FreqToPPM(f); math.Abs(back-ppm) > 0.5/FreqScale {
			t.Errorf("FreqToPPM(PPMToFreq(%g)) = %g", ppm, back)
		}
	}
	for _, tc := range []struct {
		tick, freq int64
		want       float64
	}{
		{NominalTick, 0, 0},
		{MinTick, 0, -100000},
		{MaxTick, PPMToFreq(MaxFreqPPM), 100500},
		{NominalTick - 1, PPMToFreq(-20), -120},
	} {
		if got := RatePPM(tc.tick, tc.freq); got != tc.want {
			t.Errorf("RatePPM(%d, %d) = %g, want %g", tc.tick, tc.freq, got, tc.want)
		}
	}
}

// scriptedClock returns RAW readings from a script, to check that Read
// keeps the narrowest bracket.
type scriptedClock struct {
	raws []time.Duration
	real time.Time
}

func (c *scriptedClock) Now() time.Time {
	c.real = c.real.Add(time.Microsecond)
	return c.real
}

func (c *scriptedClock) Raw() time.Duration {
	r := c.raws[0]
	c.raws = c.raws[1:]
	return r
}

func (c *scriptedClock) Mono() time.Duration               { return 0 }
func (c *scriptedClock) Adjtimex(tx *Timex) (State, error) { return TimeOK, nil }

func TestReadKeepsNarrowestBracket(t *testing.T) {
	c := &scriptedClock{
		raws: []time.Duration{100, 400, 1000, 1040, 2000, 2900},
		real: time.Unix(1000, 0),
	}
	r := Read(c, 3)
	if r.Width != 40 || r.Raw != 1020 || !r.Real.Equal(time.Unix(1000, 2000)) {
		t.Errorf("Read = %+v, want the second bracket (width 40 ns, raw 1020, real +2 µs)", r)
	}
	if got, want := r.RealMinusRaw(), time.Duration(time.Unix(1000, 2000).UnixNano())-1020; got != want {
		t.Errorf("RealMinusRaw = %v, want %v", got, want)
	}
}

func TestSetOffsetTime(t *testing.T) {
	for _, tc := range []struct {
		d        time.Duration
		sec, nsc int64
	}{
		{0, 0, 0},
		{300 * time.Millisecond, 0, 300000000},
		{-300 * time.Millisecond, -1, 700000000},
		{-54 * time.Second, -54, 0},
		{-54*time.Second - time.Nanosecond, -55, 999999999},
		{54*time.Second + 5, 54, 5},
		{-time.Nanosecond, -1, 999999999},
	} {
		got := setOffsetTime(tc.d)
		if got.Sec != tc.sec || got.Usec != tc.nsc {
			t.Errorf("setOffsetTime(%v) = %+v, want {%d %d}", tc.d, got, tc.sec, tc.nsc)
		}
		if got.Usec < 0 || got.Usec >= 1e9 {
			t.Errorf("setOffsetTime(%v): nanoseconds %d outside [0, 1e9)", tc.d, got.Usec)
		}
		if back := time.Duration(got.Sec)*time.Second + time.Duration(got.Usec); back != tc.d {
			t.Errorf("setOffsetTime(%v) encodes %v", tc.d, back)
		}
	}
}
