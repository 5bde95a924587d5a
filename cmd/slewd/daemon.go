package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/discipline/statefile"
	"slewd/ntpclient"
)

// estimator is what the daemon needs of ntpclient.Client.
type estimator interface {
	Start()
	Handle(ev any) (*ntpclient.Estimate, bool)
	Tick() time.Duration
	Reports() []ntpclient.SourceReport
	SetPollLimit(time.Duration)
}

// daemonConfig is `slewd run` minus the servers.
type daemonConfig struct {
	MaxOffset     time.Duration // panic guard: larger estimates are not slewed
	MaxSlewPPM    float64
	Method        adjtime.Method
	SyncThreshold time.Duration
	DryRun        bool
	DriftInterval time.Duration // how often to save the drift file
}

// daemonEnv is everything the daemon touches, so that the same loop runs
// on the real kernel and on the simulated one.
type daemonEnv struct {
	Clock  clock.Clock
	Loop   clock.Loop
	Client estimator
	State  adjtime.Store // drift file and slew journal (/var/lib/slewd)
	Run    adjtime.Store // status file (/run/slewd)
	BootID func() string
	// MarkSynced touches /run/systemd/timesync/synchronized, which is what
	// systemd-time-wait-sync and time-sync.target wait for.
	MarkSynced func() error
	// Notify sends a systemd notification ("READY=1", "STATUS=...").
	Notify   func(state string)
	Watchdog time.Duration // WATCHDOG_USEC/2, 0 if none
	Log      *slog.Logger
}

// statusFile is what `slewd run` publishes in its run directory for
// `slewd wait` and for people: the correction still to do, with its sign.
type statusFile struct {
	Time         time.Time `json:"time"`
	Synchronized bool      `json:"synchronized"`
	RemainingS   float64   `json:"remaining_s"` // NTP sign: positive, the clock is behind
	OffsetS      float64   `json:"offset_s"`    // last measured, NTP sign
	ErrorS       float64   `json:"error_s"`
	FrequencyPPM float64   `json:"frequency_ppm"`
	Sources      int       `json:"sources"`
	Slewing      bool      `json:"slewing"`
}

// StatusFileName is the daemon's status file in its run directory.
const StatusFileName = "status.json"

type daemon struct {
	cfg    daemonConfig
	env    daemonEnv
	servo  *adjtime.Servo
	slewer *adjtime.Slewer
	log    *slog.Logger

	nextControl time.Duration // RAW time of the next slewer step
	nextDrift   time.Duration // RAW time to save the drift file
	nextDog     time.Duration
	lastEst     *ntpclient.Estimate
	slewing     bool
	panicked    bool
	markedSync  bool
	// startFreqPPM is the drift compensation slewd started with; it is put
	// back at exit if slewd has not learnt a better one.
	startFreqPPM float64
}

// freqTrusted: below this uncertainty the servo's frequency is used at
// all (before, the frequency slewd started with is), and is worth keeping
// across a restart (drift file, kernel at exit).
const freqTrusted = 0.5 // ppm

func newDaemon(cfg daemonConfig, env daemonEnv) *daemon {
	if cfg.DriftInterval == 0 {
		cfg.DriftInterval = time.Hour
	}
	if cfg.MaxSlewPPM <= 0 || cfg.MaxSlewPPM > adjtime.KernelMaxRatePPM {
		cfg.MaxSlewPPM = adjtime.KernelMaxRatePPM
	}
	if cfg.MaxOffset <= 0 {
		cfg.MaxOffset = 1000 * time.Second
	}
	if env.Notify == nil {
		env.Notify = func(string) {}
	}
	if env.MarkSynced == nil {
		env.MarkSynced = func() error { return nil }
	}
	return &daemon{cfg: cfg, env: env, log: env.Log}
}

// run is `slewd run`: the ntpclient → adjtime loop, until ctx ends.
func (d *daemon) run(ctx context.Context) error {
	env := d.env
	if !d.cfg.DryRun {
		if err := clock.CanAdjust(env.Clock); err != nil {
			return fmt.Errorf("slewd run cannot adjust the clock: %w (use --dry-run to only measure)", err)
		}
	}
	drift, known, err := adjtime.ReadDrift(env.State)
	if err != nil {
		d.log.Warn("ignoring the drift file", "err", err)
	}
	basePPM := drift.FreqPPM
	var journal *adjtime.Journal
	if d.cfg.Method == adjtime.MethodTick {
		journal = &adjtime.Journal{Store: env.State, BootID: env.BootID}
	}
	if !known {
		// No drift file: adopt what the kernel holds if it looks like a
		// drift compensation (frequency only, and no slew of ours under
		// way that a journal records), as ntpd-rs does.
		var tx clock.Timex
		if _, err := env.Clock.Adjtimex(&tx); err == nil && tx.Tick == clock.NominalTick && !journal.Active() {
			basePPM = clock.FreqToPPM(tx.Freq)
		}
	}
	d.startFreqPPM = basePPM
	d.servo = adjtime.NewServo(adjtime.ServoConfig{FreqPPM: basePPM, FreqKnown: known})
	d.slewer = adjtime.NewSlewer(env.Clock, adjtime.SlewerConfig{
		Method: d.cfg.Method, MaxRatePPM: d.cfg.MaxSlewPPM, SyncThreshold: d.cfg.SyncThreshold,
		DryRun: d.cfg.DryRun, Journal: journal,
	}, d.log)
	if err := d.slewer.TakeControl(basePPM); err != nil {
		return err
	}
	d.log.Info("slewd started", "drift_ppm", basePPM, "drift_file", known, "method", d.cfg.Method.String(),
		"max_slew_ppm", d.cfg.MaxSlewPPM, "dry_run", d.cfg.DryRun)
	// Started: waiting for synchronization is slewd-wait's job, not the
	// service's start-up (a boot without network must not time out here).
	env.Notify("READY=1\nSTATUS=waiting for the first estimate")
	now := env.Clock.Raw()
	d.nextControl = -1
	d.nextDrift = now + d.cfg.DriftInterval
	d.nextDog = now
	env.Client.Start()
	for {
		now = env.Clock.Raw()
		if d.nextControl >= 0 && now >= d.nextControl {
			if err := d.control(); err != nil {
				return d.shutdown(err)
			}
		}
		if now >= d.nextDrift {
			d.saveDrift()
			d.saveHighWater()
			d.nextDrift = now + d.cfg.DriftInterval
		}
		if env.Watchdog > 0 && now >= d.nextDog {
			env.Notify("WATCHDOG=1")
			d.nextDog = now + env.Watchdog
		}
		// Due times are on RAW; Loop.Wait runs on MONOTONIC, which slewing
		// makes up to 10 % fast or slow, so a wait may end early or late
		// by that much. Steps re-check RAW; the slewer measures anyway.
		wait := env.Client.Tick()
		due := []time.Duration{d.nextDrift}
		if d.nextControl >= 0 {
			due = append(due, d.nextControl)
		}
		if env.Watchdog > 0 {
			due = append(due, d.nextDog)
		}
		for _, t := range due {
			wait = min(wait, adjtime.EarlyWait(max(t-now, 0)))
		}
		ev, err := env.Loop.Wait(ctx, wait)
		if err != nil {
			return d.shutdown(err)
		}
		if ev == nil {
			continue
		}
		if est, ok := env.Client.Handle(ev); ok && est != nil {
			if err := d.onEstimate(*est); err != nil {
				return d.shutdown(err)
			}
		}
	}
}

func (d *daemon) onEstimate(est ntpclient.Estimate) error {
	d.lastEst = &est
	if est.Offset.Abs() > d.cfg.MaxOffset {
		if !d.panicked {
			d.log.Error("the clock is too far off to slew: not correcting it",
				"offset", est.Offset.Round(time.Millisecond), "max_offset", d.cfg.MaxOffset,
				"slew_would_take", slewTime(est.Offset, d.cfg.MaxSlewPPM).Round(time.Second),
				"fix", "run `slewd boot` to step the clock once (stop services that dislike steps first), or raise --max-offset")
			d.panicked = true
			d.env.Notify(fmt.Sprintf("STATUS=not correcting: clock off by %v > --max-offset %v", est.Offset.Round(time.Millisecond), d.cfg.MaxOffset))
			// Whatever was being corrected no longer applies: stop, and
			// aim at nothing until the clock is back within bounds.
			if err := d.slewer.Stop(); err != nil {
				return err
			}
		}
		return nil
	}
	if d.panicked {
		d.log.Info("the clock is back within --max-offset; correcting it", "offset", est.Offset)
		d.panicked = false
	}
	// The servo takes the fresh sample behind the estimate, moved onto the
	// combination of the sources, with its hard bound.
	innov := d.servo.Update(est.Sample.Raw, est.Sample.Phase()-est.SampleBias, est.SampleBound)
	now := d.env.Clock.Raw()
	// A frequency learnt from a few samples seconds apart can be ppm off,
	// and the clock would run that far off until the next poll: until the
	// servo knows it well, keep the one slewd started with.
	freq := d.servo.FreqPPM()
	if d.servo.FreqSigmaPPM() > freqTrusted {
		freq = d.startFreqPPM
	}
	if err := d.slewer.SetBaseFrequency(freq); err != nil {
		return err
	}
	d.slewer.SetTarget(now, d.servo.Phase(now), freq, est.Error+d.servo.PhaseSigma(now), d.servo.PhaseSigma(now))
	d.env.Client.SetPollLimit(pollLimit(d.servo.WanderUpper()))
	d.log.Debug("estimate", "offset", est.Offset, "error", est.Error, "jitter", est.Jitter, "sources", est.Sources,
		"innovation", time.Duration(innov*1e9), "freq_ppm", freq, "wander", d.servo.WanderPerRootSecond())
	return d.control()
}

// control runs a slewer step and reports what changed.
func (d *daemon) control() error {
	next, err := d.slewer.Control()
	if err != nil {
		return err
	}
	slewing := next != adjtime.Idle
	d.nextControl = next
	if !slewing {
		// Nothing in progress: look again in an hour all the same.
		d.nextControl = d.env.Clock.Raw() + time.Hour
	}
	rem := d.slewer.Remaining()
	if slewing && !d.slewing && rem.Abs() > 10*time.Millisecond {
		msg := "slewing"
		if d.cfg.DryRun {
			msg = "dry run: would slew (the clock is left alone)"
		}
		d.log.Info(msg, "correction", rem.Round(time.Microsecond),
			"rate_ppm", d.cfg.MaxSlewPPM, "eta", slewTime(rem, d.cfg.MaxSlewPPM).Round(time.Second))
	}
	if !slewing && d.slewing && d.lastEst != nil {
		d.log.Info("slew done", "remaining", rem, "freq_ppm", d.servo.FreqPPM())
	}
	d.slewing = slewing
	synced := d.slewer.Synced()
	if synced != d.markedSync {
		d.markedSync = synced
		if synced {
			d.log.Info("clock synchronized", "remaining", rem, "error_bound", d.lastEst.Error)
			if err := d.env.MarkSynced(); err != nil {
				d.log.Warn("could not mark the clock synchronized for systemd", "err", err)
			}
			d.saveHighWater()
		} else {
			d.log.Info("clock no longer synchronized", "remaining", rem)
		}
	}
	if d.lastEst != nil {
		d.env.Notify(fmt.Sprintf("STATUS=offset %v, %v left to slew, %d sources", d.lastEst.Offset.Round(time.Microsecond), rem.Round(time.Microsecond), d.lastEst.Sources))
		d.writeStatus(rem, synced, slewing)
	}
	return nil
}

func (d *daemon) writeStatus(rem time.Duration, synced, slewing bool) {
	if d.env.Run == nil {
		return
	}
	st := statusFile{
		Time: d.env.Clock.Now(), Synchronized: synced, RemainingS: rem.Seconds(),
		OffsetS: d.lastEst.Offset.Seconds(), ErrorS: d.lastEst.Error.Seconds(),
		FrequencyPPM: d.servo.FreqPPM(), Sources: d.lastEst.Sources, Slewing: slewing,
	}
	b, _ := json.Marshal(st)
	if err := d.env.Run.WriteFile(StatusFileName, append(b, '\n')); err != nil {
		d.log.Debug("could not write the status file", "err", err)
	}
}

// saveHighWater records a time known to have passed, for `slewd boot
// --restore-from-high-water` on a machine that comes up with no server:
// what REALTIME reads once the correction left is made, less the error
// bound. Only while synchronized.
func (d *daemon) saveHighWater() {
	if d.cfg.DryRun || d.slewer == nil || !d.slewer.Synced() || d.lastEst == nil {
		return
	}
	mark := d.env.Clock.Now().Add(d.slewer.Remaining() - d.lastEst.Error)
	if err := statefile.SaveHighWater(d.env.State, mark); err != nil {
		d.log.Warn("could not save the high-water mark", "err", err)
	}
}

func (d *daemon) saveDrift() {
	if d.servo == nil || !d.servo.Ready() || d.cfg.DryRun || d.servo.FreqSigmaPPM() > freqTrusted {
		return
	}
	dr := adjtime.Drift{FreqPPM: d.servo.FreqPPM(), SigmaPPM: d.servo.FreqSigmaPPM()}
	if err := adjtime.WriteDrift(d.env.State, dr); err != nil {
		d.log.Warn("could not save the drift file", "err", err)
	}
}

// shutdown leaves the kernel clean: the drift compensation stays, and what
// is left of a correction goes to the kernel's self-terminating slews.
func (d *daemon) shutdown(cause error) error {
	d.env.Notify("STOPPING=1")
	if cause != nil && !errors.Is(cause, context.Canceled) {
		d.log.Error("stopping on an error; handing the clock back first", "err", cause)
	}
	d.saveDrift()
	d.saveHighWater()
	if d.servo.FreqSigmaPPM() > freqTrusted {
		// A frequency learnt from a few samples is worse than none: leave
		// the kernel the compensation it had when slewd started.
		if err := d.slewer.SetBaseFrequency(d.startFreqPPM); err != nil {
			d.log.Warn("could not restore the frequency", "err", err)
		}
	}
	if err := d.slewer.Release(); err != nil {
		return errors.Join(cause, fmt.Errorf("handing the clock back: %w", err))
	}
	d.log.Info("slewd stopped", "remaining", d.slewer.Remaining())
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}

// pollDrift is how far the oscillator may wander, unseen, between two
// polls: the adaptive poll interval is capped where the wander the servo
// measures would move the clock that much (√(q·τ³/3) for a random walk of
// frequency), so polling less often never costs accuracy.
const pollDrift = 2.5e-6 // s

func pollLimit(wanderPerRootS float64) time.Duration {
	if wanderPerRootS <= 0 {
		return 0
	}
	tau := math.Cbrt(3 * pollDrift * pollDrift / (wanderPerRootS * wanderPerRootS))
	return time.Duration(tau * 1e9)
}

// slewTime is how long a correction takes at ratePPM.
func slewTime(offset time.Duration, ratePPM float64) time.Duration {
	return time.Duration(math.Abs(offset.Seconds()) / (ratePPM * 1e-6) * 1e9)
}
