package simulation

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
)

// A leap second the servers announce is slewed: within 1 ms of UTC 15 s
// after it, no step back, one line when announced and one when taken.
// A server that neither announces nor takes it is outvoted.
func TestSimulateLeapSecond(t *testing.T) {
	for _, tc := range []struct {
		name      string
		delete    bool
		servers   int
		ignorers  int
		announced string
		method    adjtime.Method
	}{
		{"insert", false, 4, 0, "a leap second is announced for 2026-12-31 23:59:60 UTC: slewd will slew it, the kernel will not step", adjtime.MethodPLL},
		{"insert, one server ignores it", false, 5, 1, "a leap second is announced for 2026-12-31 23:59:60 UTC", adjtime.MethodPLL},
		{"delete", true, 4, 0, "a leap second is announced for 2026-12-31 23:59:59 UTC (deleted)", adjtime.MethodPLL},
		{"insert, tick method", false, 4, 0, "a leap second is announced for 2026-12-31 23:59:60 UTC", adjtime.MethodTick},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			const leapAt = 2 * time.Hour
			cfg := Config{ClockError: 30 * time.Millisecond, DriftPPM: 25, Wander: 1e-9, Servers: tc.servers, LeapIgnorers: tc.ignorers,
				Delay: 5 * time.Millisecond, Jitter: 50 * time.Microsecond, Duration: leapAt + 30*time.Minute, Seed: 3,
				LeapAt: leapAt, LeapDelete: tc.delete, Method: tc.method, StepForwardOver: time.Second, Log: &log}
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := log.String()
			if r.BackwardSteps != 0 {
				t.Errorf("%d backward steps (%v s)", r.BackwardSteps, r.MaxBackwardS)
			}
			leap := leapAt.Seconds()
			if tc.delete {
				leap--
			}
			_, before, _ := r.Metrics.Since(leap - 1800)
			worst := 0.0
			for i := int(leap) - 1800; i < int(leap); i++ {
				worst = max(worst, r.Metrics.Bins[i].MaxAbs)
			}
			_, after, ok := r.Metrics.Since(leap + 15)
			if !ok || worst > 1e-3 || after > 1e-3 {
				t.Errorf("against UTC: worst %.6f s in the half hour before the leap, %.6f s from 15 s after it (want ≤ 1 ms)", worst, after)
			}
			if before < 0.9 {
				t.Errorf("the clock was never 1 s off UTC (%.3f s): no leap happened?", before)
			}
			// How long the slew took: the first second within 1 ms of UTC.
			took := -1
			for i := int(leap); i < len(r.Metrics.Bins); i++ {
				if r.Metrics.Bins[i].MaxAbs <= 1e-3 {
					took = i - int(leap)
					break
				}
			}
			t.Logf("within 1 ms of UTC %d s after the leap; max rate %.0f ppm; after 15 s within %.1f µs", took, r.MaxRatePPM, after*1e6)
			if n := strings.Count(out, tc.announced); n != 1 {
				t.Errorf("%d lines %q, want 1:\n%s", n, tc.announced, out)
			}
			if n := strings.Count(out, "slewing the clock"); n != 1 {
				t.Errorf("%d lines about slewing the leap, want 1:\n%s", n, out)
			}
			if strings.Contains(out, "another program") || strings.Contains(out, "stepped it forward") {
				t.Errorf("the servers' leap taken for a step:\n%s", out)
			}
		})
	}
}
