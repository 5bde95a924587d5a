package ntpclient

import (
	"context"
	"fmt"
	"time"
)

// Measure is a one-shot measurement, what `ntpdate -q` and `chronyd -Q`
// do: every source gets cfg.Burst queries (DefaultMeasureBurst unless
// set) BurstInterval apart, all sources in parallel, and Measure returns
// as soon as the quorum agrees and every source has either given all its
// samples or shown it has nothing to give (silence, a kiss, an
// unsynchronized or bad answer). deadline (RAW time; 0 means enough for
// the whole burst) bounds the wait: at the deadline the latest estimate
// is returned if there is one, else a *NoEstimateError naming why there
// is none, with Estimate.Details filled in either way.
func Measure(ctx context.Context, cfg Config, env Env, deadline time.Duration) (Estimate, error) {
	c, err := newClient(cfg, env, true)
	if err != nil {
		return Estimate{}, err
	}
	if deadline <= 0 {
		deadline = time.Duration(c.cfg().Burst-1)*c.cfg().BurstInterval + c.cfg().Timeout + time.Second
		if c.hasNTS() {
			deadline += ntsKETimeout
		}
	}
	end := env.Clock.Raw() + deadline
	c.Start()
	for {
		if est, _ := c.Latest(); est != nil && c.settled() {
			est.Details = c.Reports()
			return *est, nil
		}
		if c.finished() {
			break
		}
		remain := end - env.Clock.Raw()
		if remain <= 0 {
			break
		}
		ev, err := env.Loop.Wait(ctx, min(c.Tick(), wakeEarly(remain)))
		if err != nil {
			return Estimate{Details: c.Reports()}, fmt.Errorf("measure: %w", err)
		}
		if ev != nil {
			c.Handle(ev)
		}
	}
	est, reason := c.Latest()
	if est != nil {
		est.Details = c.Reports()
		return *est, nil
	}
	if reason == "" {
		reason = "no source gave a usable sample"
	}
	if !c.finished() {
		reason += fmt.Sprintf(" (after %v)", deadline)
	}
	details := c.Reports()
	return Estimate{Details: details}, &NoEstimateError{Reason: reason, Details: details}
}

// settled says whether waiting longer could not change what any source
// contributes much: each has all its samples, or stopped, or has answered
// nothing usable so far (it will not be waited for once a quorum agrees).
func (c *Client) settled() bool {
	for _, p := range c.pools {
		if p.lookup != 0 {
			return false
		}
	}
	for _, s := range c.sources {
		switch {
		case s.lookup != 0, s.ke != 0:
			return false
		case s.done && s.query == 0, s.stopped != "", s.addr == "":
		case s.filter.len() == 0 && (s.lastErr != "" || s.status != "" || s.kiss != ""):
		default:
			return false
		}
	}
	return true
}

// finished says whether nothing more will happen: no lookup or query in
// flight or to come.
func (c *Client) finished() bool {
	for _, p := range c.pools {
		if p.lookup != 0 || p.resolveAt >= 0 {
			return false
		}
	}
	for _, s := range c.sources {
		if s.lookup != 0 || s.query != 0 || (s.resolveAt >= 0 && s.addr == "") || s.queryable() || s.ke != 0 || (s.keAt >= 0 && !s.done && s.stopped == "") {
			return false
		}
	}
	return true
}
