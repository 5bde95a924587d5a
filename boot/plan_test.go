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

func TestStatusChange(t *testing.T) {
	const ms = time.Millisecond
	bootState := clock.NTPStatus{Unsync: true}
	daemonState := clock.PLLMode(false)
	for _, tc := range []struct {
		name            string
		prior           clock.NTPStatus
		remaining, errB time.Duration
		synced          bool
		status          clock.NTPStatus
		maxErr          time.Duration
	}{
		{"after a good step", bootState, 0, 2 * ms, true, clock.NTPStatus{}, 2 * ms},
		{"slewing 50 ms: not yet", bootState, 50 * ms, 2 * ms, false, clock.NTPStatus{Unsync: true}, 52 * ms},
		{"slewing ahead 5 ms", bootState, -5 * ms, 2 * ms, true, clock.NTPStatus{}, 7 * ms},
		{"error bound alone too large", bootState, 0, 20 * ms, false, clock.NTPStatus{Unsync: true}, 20 * ms},
		{"daemon bits kept, PLL not flipped, ns kept", daemonState, 0, ms, true, clock.PLLMode(true), ms},
		{"leap bit kept", clock.NTPStatus{LeapInsert: true, Unsync: true, ClockErr: true}, 0, ms, true, clock.NTPStatus{LeapInsert: true, ClockErr: true}, ms},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, synced := StatusChange(tc.prior, tc.remaining, tc.errB, 0, DefaultSyncThreshold)
			if synced != tc.synced || ch.Status == nil || *ch.Status != tc.status || !ch.SetErrors || ch.MaxError != tc.maxErr {
				t.Errorf("got synced %v change %+v; want %v status %+v maxerror %v", synced, ch, tc.synced, tc.status, tc.maxErr)
			}
			if ch.Tick != 0 || ch.SetFrequency || ch.SetPLLOffset || ch.SetTimeConstant {
				t.Errorf("status update touches more than status: %+v", ch)
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
