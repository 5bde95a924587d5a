package simulation

import (
	"context"
	"testing"
	"time"
)

// The foreign-step scenarios of `slewd simulate`, through the real NTP
// client on the simulated network: with the daemon's defaults (undo on,
// step forward over 1 s), no program sees time go back for longer than
// it takes slewd to hear of a step, and the clock ends within 1 ms.
func TestForeignScenarios(t *testing.T) {
	on := func(c Config) Config {
		c.UndoForeignSteps, c.StepForwardOver = true, time.Second
		c.ClockError = 0
		c.Servers = 4
		return c
	}
	for _, tc := range []struct {
		name      string
		cfg       func(Config) Config
		converged float64 // within 1 ms by then (s)
		outside   int     // steps from outside, at least
		undone    int     // undone by slewd, at least
		suspends  int
	}{
		{"a step back of 5 s", func(c Config) Config { c.StepBy, c.StepAt = -5*time.Second, 10*time.Minute; return c }, 601, 1, 1, 0},
		{"a step back of 54 s", func(c Config) Config { c.StepBy, c.StepAt = -54*time.Second, 10*time.Minute; return c }, 601, 1, 1, 0},
		{"30 s behind at start", func(c Config) Config { c.ClockError = -30 * time.Second; return c }, 6, 0, 0, 0},
		{"an agent that agrees with the servers, after a step forward", func(c Config) Config {
			c.StepBy, c.StepAt = 5*time.Second, 5*time.Minute
			c.AgentPeriod, c.AgentStart, c.AgentThreshold = 3*time.Second, 5*time.Minute+time.Second, 500*time.Millisecond
			return c
		}, 5*60 + 90, 5, 5, 0},
		{"a suspend of an hour, measured 300 ms short", func(c Config) Config {
			c.SuspendAt, c.SuspendFor, c.SuspendError = 5*time.Minute, time.Hour, -300*time.Millisecond
			c.Duration = 80 * time.Minute
			return c
		}, 3900 + 15, 0, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg(on(baseSim()))
			r, err := Run(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if r.ConvergedAfterS == nil || *r.ConvergedAfterS > tc.converged {
				t.Errorf("converged after %v s, want by %v s", deref(r.ConvergedAfterS), tc.converged)
			}
			if r.BackwardSteps != 0 || r.BackwardWindowS > 1e-3 {
				t.Errorf("%d backward steps by slewd, longest backward window %v s", r.BackwardSteps, r.BackwardWindowS)
			}
			if r.OutsideSteps < tc.outside {
				t.Errorf("%d steps from outside, want at least %d", r.OutsideSteps, tc.outside)
			}
			f := r.ForeignSeen
			if tc.undone+tc.suspends > 0 && (f == nil || f.Undone < tc.undone || f.Suspends != tc.suspends) {
				t.Errorf("the daemon saw %+v; want %d undone, %d suspends", f, tc.undone, tc.suspends)
			}
			t.Logf("converged %.1f s, %d outside steps, %d windows (longest %v s), seen %+v", deref(r.ConvergedAfterS), r.OutsideSteps, r.BackwardWindows, r.BackwardWindowS, f)
		})
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
