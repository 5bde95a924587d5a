package matrix

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A slice of the matrix on the LAN, every fault, three errors (slewed,
// stepped forward, refused): each passes its checks. `make scenarios`
// runs the whole matrix.
func TestMatrixSlice(t *testing.T) {
	for _, f := range Faults {
		if f.Pending != "" {
			continue
		}
		for _, e := range []time.Duration{13 * time.Second, -54 * time.Second, 3600 * time.Second} {
			s := Scenario{Error: e, Network: Networks[0], Fault: f, Seed: 1}
			o := s.Run(context.Background())
			if len(o.Failures) > 0 {
				t.Errorf("%v, %s: %s\n  reproduce: %s", e, f.Name, strings.Join(o.Failures, "; "), s.Command())
			}
		}
	}
}

// The checks catch what they are for: a clock beyond --max-offset that
// is corrected, and one that is not refused, fail.
func TestMatrixChecksFail(t *testing.T) {
	s := Scenario{Error: 3600 * time.Second, Network: Networks[0], Fault: Faults[0], Seed: 1}
	o := s.Run(context.Background())
	if len(o.Failures) != 0 || !o.Refused {
		t.Fatalf("the refusal did not pass: %v", o.Failures)
	}
	r := *o.Result
	r.FinalErrorS, r.MaxRatePPM = 0, 100500
	o.Result, o.Refused = &r, false
	if fails := o.check(s.Config(), ""); len(fails) != 3 {
		t.Errorf("a corrected, unrefused clock beyond --max-offset: %d failures, want 3: %v", len(fails), fails)
	}
	r.BackwardSteps, r.MaxBackwardS = 1, 0.5
	if fails := o.check(s.Config(), ""); !strings.Contains(strings.Join(fails, ";"), "moved REALTIME back") {
		t.Errorf("a backward step by slewd passes: %v", fails)
	}
}

// The bound for an error follows the kernel's limit: 54 s slewed in
// 54/0.1005 s plus 5 %, plus the network's allowance.
func TestMatrixBounds(t *testing.T) {
	for _, tc := range []struct {
		e      time.Duration
		expect Expect
		bound  time.Duration
	}{
		{54 * time.Second, Slew, 564*time.Second + 60*time.Second},
		{-54 * time.Second, StepForward, 60 * time.Second},
		{-300 * time.Millisecond, Slew, 3*time.Second + 60*time.Second},
		{-3600 * time.Second, Refuse, 60 * time.Second},
	} {
		exp, bound := Scenario{Error: tc.e, Network: Networks[0], Fault: Faults[0]}.Expected()
		if exp != tc.expect || (bound-tc.bound).Abs() > time.Second {
			t.Errorf("%v: %v within %v, want %v within %v", tc.e, exp, bound, tc.expect, tc.bound)
		}
	}
}
