package simulation

import (
	"context"
	"fmt"
	"testing"
	"time"

	"slewd/adjtime"
)

// The scenario matrix's internet path with one server of four sending a
// kiss-of-death from the start: three usable servers answer the first
// bursts within seconds of each other, when each path's delay floor rests
// on two or three samples. Bounds measured from such a floor were too
// tight by ms; the servo truncated its prior to them, learnt +1317 ppm in
// 12 s (the truth is −15), then took each poll's 75 ms innovation for a
// jump of the servers' time, kept the frequency, and converged after
// 1049 s (seed 3; seed 6: 6900 s).
func TestInternetPathEarlyBoundsConverge(t *testing.T) {
	for _, clockError := range []time.Duration{300 * time.Millisecond, -300 * time.Millisecond} {
		for seed := uint64(1); seed <= 3; seed++ {
			cfg := Config{ClockError: clockError, DriftPPM: 15, Wander: 1e-9, Servers: 4,
				Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond,
				ConvergeWithin: 10 * time.Millisecond, Duration: 2 * time.Hour, MaxSlewPPM: adjtime.KernelMaxRatePPM,
				Seed: seed, RestartAfter: 3 * time.Second, StepForwardOver: time.Second,
				Kiss: "RATE"}
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.ConvergedAfterS == nil || *r.ConvergedAfterS > 300 {
				t.Errorf("%+v, seed %d: converged after %s, want within 300 s", clockError, seed, fmtS(r.ConvergedAfterS))
			} else {
				t.Logf("%+v, seed %d: converged after %.1f s", clockError, seed, *r.ConvergedAfterS)
			}
		}
	}
}

// fmtS gives a Result's time in seconds, or "never".
func fmtS(s *float64) string {
	if s == nil {
		return "never"
	}
	return fmt.Sprintf("%.1f s", *s)
}
