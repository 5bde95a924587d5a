package boot

import (
	"context"
	"errors"
	"time"

	"slewd/discipline/statefile"
	"slewd/ntpclient"
)

// SyncConfig is `slewd sync` and `slewd ntpdate`.
type SyncConfig struct {
	Client ntpclient.Config
	// Deadline bounds the measurement (0: enough for the whole burst).
	Deadline time.Duration
	// Query measures and reports only (ntpdate -q, -d; slewd sync --dry-run).
	Query bool
	// Step is ntpdate -b: step whatever the offset, but forward only (a
	// clock that is ahead is slewed; `slewd boot` steps it back).
	Step bool
	// Force runs even when `slewd run` is keeping the clock (a fresh
	// status file in the run directory); otherwise sync stands aside.
	Force         bool
	StatusMaxAge  time.Duration // 0: statefile.DefaultStatusMaxAge
	SyncThreshold time.Duration // 0: DefaultSyncThreshold
}

// Sync is `slewd sync`: measure (ntpclient.Measure: every server, Burst
// samples BurstInterval apart), then hand the correction to the kernel's
// adjtime singleshot and return; the kernel goes on slewing at 500 ppm
// after the process exits and stops at zero by itself. It never steps,
// except forward under SyncConfig.Step (ntpdate -b). A correction the
// singleshot cannot make (over MaxSingleshot) is refused with advice.
func Sync(ctx context.Context, cfg SyncConfig, env Env) (Report, error) {
	if cfg.SyncThreshold <= 0 {
		cfg.SyncThreshold = DefaultSyncThreshold
	}
	if cfg.StatusMaxAge <= 0 {
		cfg.StatusMaxAge = statefile.DefaultStatusMaxAge
	}
	c, log := env.Net.Clock, env.log()
	rep, err := begin(cfg.Client, env, cfg.Query)
	if err != nil {
		return rep, err
	}
	if !cfg.Query && !cfg.Force && env.Run != nil {
		st, ok, err := statefile.ReadStatus(env.Run)
		if err != nil {
			log.Warn("ignoring the daemon's status file", "err", err)
		}
		if err == nil && ok && st.Fresh(c.Now(), cfg.StatusMaxAge) {
			rep.Action, rep.ExitCode = ActionNone, ExitOK
			rep.Reason = "slewd run is keeping the clock (its status file is fresh): nothing to do; --force to slew anyway"
			return rep, nil
		}
	}
	if err := readBefore(c, cfg.Query, "adjust", "query only with -q / --dry-run", &rep); err != nil {
		return rep, err
	}

	est, err := ntpclient.Measure(ctx, cfg.Client, env.Net, cfg.Deadline)
	rep.Details = est.Details
	rep.Elapsed = c.Raw() - rep.StartRaw
	var none *ntpclient.NoEstimateError
	switch {
	case errors.As(err, &none):
		rep.NoSync, rep.Details = none, none.Details
		rep.Action, rep.ExitCode = ActionNone, ExitNoSync
		rep.Reason = "no usable time from the servers: " + Summary(none)
		return rep, nil
	case err != nil:
		return rep, err
	}
	rep.Estimate = &est

	policy := Policy{NeverStep: true}
	if cfg.Step {
		policy = Policy{StepThreshold: 0, ForwardOnly: true}
	}
	rd, err := decide(ctx, env.Net, est, policy, cfg.Query, &rep)
	if err != nil {
		return rep, err
	}
	offset := rep.Offset
	rep.ExitCode = ExitOK
	if rep.Refused {
		rep.ExitCode = ExitRefused
	}
	log.Info("estimate", "offset", offset, "error", est.Error, "sources", est.Sources,
		"action", rep.Action, "reason", rep.Reason, "query", cfg.Query)
	if cfg.Query || rep.Refused {
		return rep, nil
	}
	if err := apply(c, env.Run, "slewd sync", &rep); err != nil {
		return rep, err
	}
	if rep.PreviousSingleshot != 0 {
		log.Info("replaced a pending adjtime slew", "previous", rep.PreviousSingleshot)
	}
	if err := finish(env, est, rd, cfg.SyncThreshold, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}
