// Package simrun runs the conformance table against the simulated kernel
// clock, for plain `go test` and for the rig's comparison table.
package simrun

import (
	"context"
	"errors"
	"time"

	"slewd/clock/conformance"
	"slewd/clock/simclock"
)

// Config is the simulated machine the table runs on: HZ 250 as in
// Debian's cloud kernel, and an oscillator that drifts and wanders, which
// must not change anything measured against CLOCK_MONOTONIC_RAW.
var Config = simclock.Config{
	Seed: 2,
	Kernel: simclock.KernelConfig{
		HZ:         250,
		Oscillator: simclock.Oscillator{DriftPPM: 23, Wander: 1e-9},
	},
}

// Run runs the scenarios in a fresh simulated world, as a process with
// CAP_SYS_TIME, and returns their results.
func Run(cfg simclock.Config, scenarios []conformance.Scenario) ([]conformance.Result, error) {
	w := simclock.New(cfg)
	var results []conformance.Result
	var runErr error
	p := w.Spawn("conformance", true, func(ctx context.Context, p *simclock.Process) error {
		results, runErr = conformance.RunAll(ctx, p, p, scenarios)
		return nil
	})
	// Virtual time: an hour is far more than the table needs.
	for deadline := w.Now() + time.Hour; p.Alive(); {
		if w.Now() >= deadline {
			return results, errors.New("simulated conformance run did not finish within an hour of virtual time")
		}
		w.Run(w.Now() + time.Minute)
	}
	return results, runErr
}
