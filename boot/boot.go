package boot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/discipline/statefile"
	"slewd/ntpclient"
)

// Env is what a one-shot command touches: the kernel clock and the
// network (Net: real UDP, or a simulated network on a simulated kernel),
// the state directory (high-water mark) and the daemon's run directory.
type Env struct {
	Net   ntpclient.Env
	State adjtime.Store // /var/lib/slewd; nil: no high-water mark
	Run   adjtime.Store // /run/slewd; nil: no daemon status
	Log   *slog.Logger
}

func (e Env) log() *slog.Logger {
	if e.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return e.Log
}

// Config is `slewd boot`.
type Config struct {
	Client        ntpclient.Config
	Deadline      time.Duration // 0: DefaultDeadline
	StepThreshold time.Duration // 0: DefaultStepThreshold
	ForwardOnly   bool
	// RequireSync turns "no estimate" into ExitNoSyncRequired, which the
	// unit does not accept, so units that Requires= it do not start.
	RequireSync bool
	// RestoreHighWater moves the clock forward to the high-water mark when
	// no estimate arrives.
	RestoreHighWater bool
	// Built is the binary's build time: a high-water mark implausibly far
	// past it is refused (statefile.CheckHighWater); zero for no bound.
	Built         time.Time
	DryRun        bool
	SyncThreshold time.Duration // 0: DefaultSyncThreshold
}

// Report is what a one-shot command did.
type Report struct {
	Plan
	Estimate           *ntpclient.Estimate // nil without one
	Details            []ntpclient.SourceReport
	NoSync             error // why there is no estimate
	Before             KernelClock
	ExitCode           int
	DryRun             bool
	Elapsed            time.Duration // RAW time from start to the decision
	StartRaw           time.Duration
	Synced             bool          // the kernel was told the clock is synchronized
	PreviousSingleshot time.Duration // a pending singleshot that was cancelled or replaced
	// KernelAtPlan is the kernel when the correction was planned; PLLFuture what
	// its pending PLL offset will still do (the slew asks for the rest).
	KernelAtPlan KernelClock
	PLLFuture    time.Duration
	HighWater    HighWaterReport
}

// HighWaterReport says what boot did with the high-water mark.
type HighWaterReport struct {
	Mark     time.Time // the mark read or saved; zero if none
	Saved    bool
	Restored bool // the clock was stepped forward to it
	Err      error
}

// Run is `slewd boot`: measure until the quorum agrees or the deadline
// passes, then step the clock once (|offset| ≥ StepThreshold; a clock that
// is ahead only without ForwardOnly) or hand the offset to the singleshot,
// set the kernel's status honestly, and save the high-water mark. The
// error is for failures (the clock refused, bad configuration); every
// other outcome is in Report.ExitCode.
func Run(ctx context.Context, cfg Config, env Env) (Report, error) {
	if cfg.Deadline <= 0 {
		cfg.Deadline = DefaultDeadline
	}
	if cfg.StepThreshold <= 0 {
		cfg.StepThreshold = DefaultStepThreshold
	}
	if cfg.SyncThreshold <= 0 {
		cfg.SyncThreshold = DefaultSyncThreshold
	}
	c, log := env.Net.Clock, env.log()
	rep, err := begin(cfg.Client, env, cfg.DryRun)
	if err != nil {
		return rep, err
	}
	if err := readBefore(c, cfg.DryRun, "set", "use --dry-run to only measure", &rep); err != nil {
		return rep, err
	}

	est, err := FirstEstimate(ctx, cfg.Client, env.Net, cfg.Deadline)
	rep.Details = est.Details
	rep.Elapsed = c.Raw() - rep.StartRaw
	var none *ntpclient.NoEstimateError
	switch {
	case errors.As(err, &none):
		return noEstimate(cfg, env, rep, none)
	case err != nil:
		return rep, err
	}
	rep.Estimate = &est

	policy := Policy{StepThreshold: cfg.StepThreshold, ForwardOnly: cfg.ForwardOnly}
	rd, err := decide(ctx, env.Net, est, policy, cfg.DryRun, &rep)
	if err != nil {
		return rep, err
	}
	offset := rep.Offset
	rep.ExitCode = ExitOK
	if rep.Refused {
		rep.ExitCode = ExitRefused
	}
	log.Info("estimate", "offset", offset, "error", est.Error, "sources", est.Sources,
		"action", rep.Action, "reason", rep.Reason, "dry_run", cfg.DryRun)
	if rep.BackwardRefused {
		log.Warn("the clock is ahead and --forward-only forbids stepping it back", "ahead", -offset, "action", rep.Action)
	}
	if cfg.DryRun {
		_, rep.Synced = StatusChange(rep.Before.Status, rep.Remaining(), est.Error+rd.Width, est.Jitter, cfg.SyncThreshold)
		return rep, nil
	}

	if err := apply(c, env.Run, "slewd boot", &rep); err != nil {
		return rep, err
	}
	if err := finish(env, est, rd, cfg.SyncThreshold, &rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// begin starts a one-shot command's report at RAW now and checks the
// client's configuration: a bad one is a usage error, whatever the
// privileges.
func begin(cfg ntpclient.Config, env Env, dryRun bool) (Report, error) {
	rep := Report{DryRun: dryRun, StartRaw: env.Net.Clock.Raw()}
	_, err := ntpclient.NewClient(cfg, env.Net)
	return rep, err
}

// readBefore fails before measuring when the clock cannot be adjusted
// (unless dry-running: without the capability nothing can be done), and
// reads the kernel as it was into rep.Before. The error says "cannot
// <verb> the clock", with hint in parentheses.
func readBefore(c clock.Clock, dryRun bool, verb, hint string, rep *Report) error {
	if !dryRun {
		if err := clock.CanAdjust(c); err != nil {
			return fmt.Errorf("cannot %s the clock: %w (%s)", verb, err, hint)
		}
	}
	before, err := ReadKernel(c)
	if err != nil {
		return err
	}
	rep.Before = before
	return nil
}

// finish follows the applied correction: it tells the kernel the clock's
// status (synchronized when what is left, plus the error bound, is within
// syncThreshold) and saves the high-water mark.
func finish(env Env, est ntpclient.Estimate, rd clock.Reading, syncThreshold time.Duration, rep *Report) error {
	ch, synced := StatusChange(rep.Before.Status, rep.Remaining(), est.Error+rd.Width, est.Jitter, syncThreshold)
	if err := SetStatus(env.Net.Clock, ch); err != nil {
		return err
	}
	rep.Synced = synced
	saveHighWater(env, rep, est.Error+rd.Width)
	return nil
}

// decide plans the correction from the estimate, against the kernel as it
// is now. A step cancels whatever the kernel is still slewing, so it is
// planned on the offset alone. A slew must not fight what is already under
// way: a pending singleshot is cancelled (unless dry-running), and once the
// chunk the kernel loaded for the current second has been delivered (the
// next REALTIME second boundary) the offset is measured again against RAW;
// a pending PLL offset is left to finish and the slew asks for the rest
// (rep.PLLFuture).
func decide(ctx context.Context, net ntpclient.Env, est ntpclient.Estimate, policy Policy, dryRun bool, rep *Report) (clock.Reading, error) {
	c := net.Clock
	for settled := false; ; settled = true {
		k, err := ReadKernel(c)
		if err != nil {
			return clock.Reading{}, err
		}
		rd := clock.Read(c, 4)
		rep.Plan = Decide(OffsetNow(est, rd, k.RatePPM()), policy)
		rep.KernelAtPlan = k
		rep.PLLFuture = 0
		if rep.Action == ActionStep {
			return rd, nil
		}
		if k.Singleshot != 0 && !dryRun && !settled {
			prev, err := clock.NewDriver(c).CancelSingleshot()
			if err != nil {
				return rd, err
			}
			rep.PreviousSingleshot = prev
			// MONOTONIC runs at REALTIME's rate: this wait ends just after
			// the next second boundary (plus a margin for the tick).
			wait := time.Duration((1-secondFraction(rd.Real))*1e9) + 100*time.Millisecond
			if err := clock.Sleep(ctx, net.Loop, wait); err != nil {
				return rd, err
			}
			continue
		}
		rep.PLLFuture = PLLFuture(k.PLLOffset, k.TimeConstant, secondFraction(rd.Real), k.RatePPM())
		return rd, nil
	}
}

// saveHighWater records a lower bound of true time after a good
// measurement: what REALTIME will read once the remaining correction is
// made, less the error bound.
func saveHighWater(env Env, rep *Report, errorBound time.Duration) {
	if env.State == nil {
		return
	}
	log := env.log()
	mark := env.Net.Clock.Now().Add(rep.Remaining() - errorBound)
	if old, ok, err := statefile.ReadHighWater(env.State); err == nil && ok && old.Sub(mark) > time.Second {
		log.Warn("the servers put true time before the saved high-water mark; trusting the servers",
			"high_water", old, "now", mark)
	}
	rep.HighWater.Mark = mark
	if err := statefile.SaveHighWater(env.State, mark); err != nil {
		rep.HighWater.Err = err
		log.Warn("could not save the high-water mark", "err", err)
		return
	}
	rep.HighWater.Saved = true
}

// apply carries out the plan: the one step, or the singleshot. A step is
// noted first in the daemon's run directory (if any), so that a running
// `slewd run` takes it for slewd's own and does not undo it.
func apply(c clock.Clock, run adjtime.Store, by string, rep *Report) error {
	switch rep.Action {
	case ActionStep:
		return stepClock(c, run, by, rep.Step)
	case ActionSlew:
		us := SingleshotMicros(rep.Slew-rep.PLLFuture, rep.KernelAtPlan.RatePPM())
		prev, err := clock.NewDriver(c).ArmSingleshot(time.Duration(us) * time.Microsecond)
		if prev != 0 {
			rep.PreviousSingleshot = prev
		}
		return err
	}
	return nil
}

// noEstimate is boot without an estimate: perhaps forward to the
// high-water mark, and the exit code that says "not synchronized".
func noEstimate(cfg Config, env Env, rep Report, none *ntpclient.NoEstimateError) (Report, error) {
	c, log := env.Net.Clock, env.log()
	rep.NoSync = none
	rep.Details = none.Details
	rep.Action = ActionNone
	rep.Reason = "no usable time from the servers: " + Summary(none)
	rep.ExitCode = ExitNoSync
	if cfg.RequireSync {
		rep.ExitCode = ExitNoSyncRequired
	}
	if !cfg.RestoreHighWater || env.State == nil {
		return rep, nil
	}
	mark, ok, err := statefile.ReadHighWater(env.State)
	if err == nil && ok {
		err = statefile.CheckHighWater(mark, cfg.Built)
	}
	rep.HighWater.Mark, rep.HighWater.Err = mark, err
	if err != nil || !ok {
		if err != nil {
			log.Warn("cannot restore the high-water mark", "err", err)
			rep.Reason += "; high-water mark ignored: " + err.Error()
		}
		return rep, nil
	}
	step := HighWaterStep(c.Now(), mark)
	if step <= 0 {
		rep.Reason += "; the clock is already past the high-water mark " + mark.UTC().Format(time.RFC3339)
		return rep, nil
	}
	rep.Action, rep.Step, rep.Offset = ActionStep, step, step
	rep.Reason += fmt.Sprintf("; the clock was %v behind the high-water mark %s: stepping it forward to the mark",
		step, mark.UTC().Format(time.RFC3339))
	if cfg.DryRun {
		log.Warn("dry run: without an NTP estimate, the clock would be moved forward to the high-water mark", "mark", mark, "step", step)
		return rep, nil
	}
	log.Warn("no NTP estimate: moving the clock forward to the high-water mark", "mark", mark, "step", step)
	if err := stepClock(c, env.Run, "slewd boot", step); err != nil {
		return rep, err
	}
	// After the step the kernel says unsynchronized with maxerror 16 s,
	// which is the truth; only the status from before (its unit) is put back.
	ch, _ := StatusChange(rep.Before.Status, 0, clock.MaxErrorLimit*time.Microsecond, clock.MaxErrorLimit*time.Microsecond, 0)
	if err := SetStatus(c, ch); err != nil {
		return rep, err
	}
	rep.HighWater.Restored = true
	return rep, nil
}

// stepClock steps the clock by d, noting the step for a running daemon first.
func stepClock(c clock.Clock, run adjtime.Store, by string, d time.Duration) error {
	if run != nil {
		// Best effort: without a run directory no daemon is there to tell.
		statefile.NoteStep(run, statefile.Step{Raw: c.Raw(), Step: d, By: by})
	}
	_, err := clock.NewDriver(c).Step(d)
	return err
}
