package boot

import (
	"context"
	"fmt"
	"time"

	"slewd/ntpclient"
)

// FirstEstimate runs an ntpclient.Client until the first estimate the
// quorum agrees on (cfg.MinSources, by default a majority of the
// configured sources), or until deadline (on CLOCK_MONOTONIC_RAW) passes.
// All sources are queried at once; a source that does not answer is asked
// again BurstInterval later (2 s by default: servers with ntpd's `restrict
// limited` drop faster queries), names are looked up again after a DNS
// failure, so a network that comes up a few seconds late still gives an
// estimate before the deadline. Unlike ntpclient.Measure it does not wait
// for a silent source once enough others agree.
//
// Without an estimate it returns a *ntpclient.NoEstimateError naming each
// source's problem.
func FirstEstimate(ctx context.Context, cfg ntpclient.Config, env ntpclient.Env, deadline time.Duration) (ntpclient.Estimate, error) {
	c, err := ntpclient.NewClient(cfg, env)
	if err != nil {
		return ntpclient.Estimate{}, err
	}
	end := env.Clock.Raw() + deadline
	c.Start()
	for {
		remain := end - env.Clock.Raw()
		if remain <= 0 {
			break
		}
		// Loop.Wait runs on CLOCK_MONOTONIC; the loop re-checks RAW.
		ev, err := env.Loop.Wait(ctx, min(c.Tick(), remain))
		if err != nil {
			return ntpclient.Estimate{Details: c.Reports()}, fmt.Errorf("waiting for the NTP servers: %w", err)
		}
		if ev == nil {
			continue
		}
		if est, ok := c.Handle(ev); ok && est != nil {
			e := *est
			e.Details = c.Reports()
			return e, nil
		}
	}
	details := c.Reports()
	reason := fmt.Sprintf("fewer than %d sources agreed within %v", c.MinSources(), deadline)
	if c.MinSources() == 1 {
		reason = fmt.Sprintf("no usable answer within %v", deadline)
	}
	return ntpclient.Estimate{Details: details}, &ntpclient.NoEstimateError{Reason: reason, Details: details}
}
