package boot

import (
	"math"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/ntpclient"
)

func TestDecide(t *testing.T) {
	const ms = time.Millisecond
	boot := Policy{StepThreshold: DefaultStepThreshold}
	fwd := Policy{StepThreshold: DefaultStepThreshold, ForwardOnly: true}
	sync := Policy{NeverStep: true}
	bstep := Policy{StepThreshold: 0, ForwardOnly: true} // ntpdate -b
	bstepBack := Policy{StepThreshold: 0}                // ntpdate -b --allow-backward-step
	for _, tc := range []struct {
		name     string
		offset   time.Duration
		policy   Policy
		action   Action
		step     time.Duration
		slew     time.Duration
		refused  bool
		backward bool
		reason   string
	}{
		{"behind 54 s: step", 54 * time.Second, boot, ActionStep, 54 * time.Second, 0, false, false, "54s behind"},
		{"ahead 54 s: step back", -54 * time.Second, boot, ActionStep, -54 * time.Second, 0, false, false, "54s ahead"},
		{"at the threshold: step", 128 * ms, boot, ActionStep, 128 * ms, 0, false, false, "step threshold"},
		{"just below the threshold: slew", 127 * ms, boot, ActionSlew, 0, 127 * ms, false, false, "below the step threshold"},
		{"small ahead: slew", -3 * ms, boot, ActionSlew, 0, -3 * ms, false, false, "3ms ahead"},
		{"sub-µs: none", 999 * time.Nanosecond, boot, ActionNone, 0, 0, false, false, "within 1 µs"},
		{"sub-µs ahead: none", -999 * time.Nanosecond, fwd, ActionNone, 0, 0, false, false, "within 1 µs"},
		{"forward-only, behind: step", 54 * time.Second, fwd, ActionStep, 54 * time.Second, 0, false, false, "stepping"},
		{"forward-only, ahead: slew and say so", -54 * time.Second, fwd, ActionSlew, 0, -54 * time.Second, false, true, "forward-only"},
		{"forward-only, ahead beyond the singleshot: refused", -MaxSingleshot - time.Second, fwd, ActionNone, 0, 0, true, true, "step it back once, with the services that dislike steps stopped (`slewd boot` without --forward-only"},
		{"forward-only, ahead at the singleshot limit: slew", -MaxSingleshot, fwd, ActionSlew, 0, -MaxSingleshot, false, true, "forward-only"},
		{"sync: slews 54 s", 54 * time.Second, sync, ActionSlew, 0, 54 * time.Second, false, false, "slewing"},
		{"sync: slews ahead", -0.4219 * 1e9, sync, ActionSlew, 0, -421900 * time.Microsecond, false, false, "ahead"},
		{"sync: refuses an hour", time.Hour, sync, ActionNone, 0, 0, true, false, "slewd boot"},
		{"ntpdate -b behind: step any size", 2 * ms, bstep, ActionStep, 2 * ms, 0, false, false, "stepping"},
		{"ntpdate -b ahead: slew", -2 * ms, bstep, ActionSlew, 0, -2 * ms, false, true, "forward-only"},
		{"ntpdate -b ahead allowed: step back", -2 * ms, bstepBack, ActionStep, -2 * ms, 0, false, false, "stepping"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(tc.offset, tc.policy)
			if p.Action != tc.action || p.Step != tc.step || p.Slew != tc.slew || p.Refused != tc.refused || p.BackwardRefused != tc.backward {
				t.Errorf("Decide(%v, %+v) = %+v", tc.offset, tc.policy, p)
			}
			if p.Offset != tc.offset {
				t.Errorf("offset %v, want %v", p.Offset, tc.offset)
			}
			if p.Remaining() != tc.offset-tc.step {
				t.Errorf("remaining %v", p.Remaining())
			}
			if !strings.Contains(p.Reason, tc.reason) {
				t.Errorf("reason %q lacks %q", p.Reason, tc.reason)
			}
		})
	}
}

// Decide must never step a forward-only clock back, whatever the offset
// and threshold.
func TestDecideForwardOnlyNeverStepsBack(t *testing.T) {
	for _, th := range []time.Duration{0, time.Millisecond, DefaultStepThreshold, time.Hour} {
		for _, off := range []time.Duration{-time.Nanosecond, -time.Microsecond, -time.Second, -time.Hour, -100 * 24 * time.Hour} {
			if p := Decide(off, Policy{StepThreshold: th, ForwardOnly: true}); p.Step != 0 || p.Action == ActionStep {
				t.Errorf("threshold %v offset %v: %+v", th, off, p)
			}
			if p := Decide(off, Policy{NeverStep: true}); p.Step != 0 {
				t.Errorf("never step, offset %v: %+v", off, p)
			}
		}
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
		got := SetOffsetTime(tc.d)
		if got.Sec != tc.sec || got.Usec != tc.nsc {
			t.Errorf("SetOffsetTime(%v) = %+v, want {%d %d}", tc.d, got, tc.sec, tc.nsc)
		}
		if got.Usec < 0 || got.Usec >= 1e9 {
			t.Errorf("SetOffsetTime(%v): nanoseconds %d outside [0, 1e9)", tc.d, got.Usec)
		}
		if back := time.Duration(got.Sec)*time.Second + time.Duration(got.Usec); back != tc.d {
			t.Errorf("SetOffsetTime(%v) encodes %v", tc.d, back)
		}
	}
}

func TestSingleshotMicros(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		base   float64
		want   int64
	}{
		{300 * time.Millisecond, 0, 300150},   // 300 ms × 1.0005
		{-300 * time.Millisecond, 0, -299850}, // slowing: a REALTIME second is longer
		{300 * time.Millisecond, 100, 300180},
		{0, 50, 0},
	} {
		if got := SingleshotMicros(tc.offset, tc.base); got != tc.want {
			t.Errorf("SingleshotMicros(%v, %v) = %d, want %d", tc.offset, tc.base, got, tc.want)
		}
	}
}

// OffsetNow carries the estimate along RAW: while a slew moves REALTIME
// against RAW, the offset shrinks by exactly what the slew did.
func TestOffsetNow(t *testing.T) {
	est := ntpclient.Estimate{Raw: 100 * time.Second, Offset: 54 * time.Second, RealMinusRaw: 1000 * time.Second}
	for _, tc := range []struct {
		name     string
		raw, rmr time.Duration
		base     float64
		want     time.Duration
	}{
		{"same instant", 100 * time.Second, 1000 * time.Second, 0, 54 * time.Second},
		{"1 s later, nominal rate", 101 * time.Second, 1000 * time.Second, 0, 54 * time.Second},
		{"1 s later at +50 ppm, nothing slewed", 101 * time.Second, 1000*time.Second + 50*time.Microsecond, 50, 54 * time.Second},
		{"a singleshot moved 500 µs meanwhile", 101 * time.Second, 1000*time.Second + 500*time.Microsecond, 0, 54*time.Second - 500*time.Microsecond},
		{"stepped forward 54 s", 101 * time.Second, 1054 * time.Second, 0, 0},
	} {
		now := clock.Reading{Raw: tc.raw, Real: time.Unix(0, int64(tc.raw+tc.rmr))}
		if got := OffsetNow(est, now, tc.base); got != tc.want {
			t.Errorf("%s: OffsetNow = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestStatusTimex(t *testing.T) {
	const ms = time.Millisecond
	bootState := clock.Timex{Status: clock.StaUnsync, Tick: 10000}
	daemonState := clock.Timex{Status: clock.StaPLL | clock.StaFreqHold | clock.StaNano | clock.StaUnsync}
	for _, tc := range []struct {
		name            string
		prior           clock.Timex
		remaining, errB time.Duration
		synced          bool
		status          int32
		maxErrUs        int64
		micro           bool
	}{
		{"after a good step", bootState, 0, 2 * ms, true, 0, 2000, true},
		{"slewing 50 ms: not yet", bootState, 50 * ms, 2 * ms, false, clock.StaUnsync, 52000, true},
		{"slewing ahead 5 ms", bootState, -5 * ms, 2 * ms, true, 0, 7000, true},
		{"error bound alone too large", bootState, 0, 20 * ms, false, clock.StaUnsync, 20000, true},
		{"daemon bits kept, PLL not flipped", daemonState, 0, ms, true, clock.StaPLL | clock.StaFreqHold, 1000, false},
		{"capped at 16 s", bootState, time.Hour, ms, false, clock.StaUnsync, clock.MaxErrorLimit, true},
		{"leap bit kept", clock.Timex{Status: clock.StaIns | clock.StaUnsync | clock.StaClockErr}, 0, ms, true, clock.StaIns, 1000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tx, synced := StatusTimex(tc.prior, tc.remaining, tc.errB, 0, DefaultSyncThreshold)
			if synced != tc.synced || tx.Status != tc.status || tx.MaxError != tc.maxErrUs {
				t.Errorf("got synced %v status %#x maxerror %d; want %v %#x %d", synced, tx.Status, tx.MaxError, tc.synced, tc.status, tc.maxErrUs)
			}
			if got := tx.Modes&clock.AdjMicro != 0; got != tc.micro {
				t.Errorf("ADJ_MICRO %v, want %v", got, tc.micro)
			}
			if tx.Modes&(clock.AdjStatus|clock.AdjMaxError|clock.AdjEstError) != clock.AdjStatus|clock.AdjMaxError|clock.AdjEstError {
				t.Errorf("modes %s", clock.ModeString(tx.Modes))
			}
			if tx.Modes&(clock.AdjTick|clock.AdjFrequency|clock.AdjOffset|clock.AdjSetOffset) != 0 {
				t.Errorf("status update touches more than status: %s", clock.ModeString(tx.Modes))
			}
		})
	}
}

func TestSlewDuration(t *testing.T) {
	if d := SlewDuration(-54 * time.Second); d != 108000*time.Second {
		t.Errorf("54 s at 500 ppm: %v", d)
	}
	if math.Abs(SlewDuration(MaxSingleshot).Hours()/24-49.65) > 0.01 {
		t.Errorf("2145 s: %v", SlewDuration(MaxSingleshot))
	}
}
