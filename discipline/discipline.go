// Package discipline is slewd's clock discipline: the loop that turns the
// NTP client's estimates into slews of the kernel clock, as chrony's
// reference.c (REF_SetReference) does for chronyd. `slewd run` drives it
// on the real kernel, `slewd simulate` and the tests on the simulated one
// (package simulation), and the qemu rig through the real binary.
//
// Data flows one way: ntpclient (samples → Estimate) → discipline →
// adjtime (Servo, Slewer) → clock. The loop (Discipline.Run) waits on
// clock.Loop for the next event or due time and then:
//
//   - an event the client knows (a reply, a resolution) goes to
//     Estimator.Handle; an Estimate it returns goes through the panic
//     guard (OutOfBounds: beyond Config.MaxOffset nothing is slewed), into
//     the Servo (true time against CLOCK_MONOTONIC_RAW), and the Servo's
//     phase and frequency become the Slewer's target (BaseFrequency: the
//     frequency slewd started with until the servo's is trusted). The
//     servo's wander caps the client's poll interval (PollLimit).
//   - any other event goes to the Env.Handlers, in order (a foreign-step
//     detector, a control socket): they run on the loop's goroutine.
//   - at the Slewer's due time, a control step (Slewer.Control): it arms
//     the kernel, and says whether the clock is synchronized; on a change
//     the loop marks it for systemd and saves the high-water mark.
//   - every Config.DriftInterval, the drift file and the high-water mark;
//     every Env.Watchdog, a systemd watchdog ping.
//
// It persists the drift file (adjtime), the high-water mark and the status
// file (package statefile, which `slewd boot`, `wait` and `sync` read).
// When ctx ends, or on an error, it hands the clock back (shutdown): the
// drift compensation stays, a frequency it has not learnt well is put
// back as it found it, and what is left of the correction goes to the
// kernel's self-terminating slews.
package discipline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/hostinfo"
	"slewd/ntpclient"
)

// Estimator is what the discipline needs of ntpclient.Client.
type Estimator interface {
	Start()
	Handle(ev any) (*ntpclient.Estimate, bool)
	Tick() time.Duration
	Reports() []ntpclient.SourceReport
	SetPollLimit(time.Duration)
	PollNow()
}

// Handler takes the events posted into the loop (clock.Loop.Post) that
// the client does not handle: a foreign step of the clock, a control
// socket's request. It runs on the loop's goroutine, between control
// steps, so it may call the Discipline's methods (Snapshot, ControlNow,
// Remeasure). handled false passes the event on to the next handler; an
// error stops the loop (the clock is handed back first).
type Handler interface {
	HandleEvent(d *Discipline, ev any) (handled bool, err error)
}

// HandlerFunc is a Handler.
type HandlerFunc func(d *Discipline, ev any) (bool, error)

// HandleEvent calls f.
func (f HandlerFunc) HandleEvent(d *Discipline, ev any) (bool, error) { return f(d, ev) }

// Config is `slewd run`'s discipline, its flags minus the servers.
type Config struct {
	MaxOffset     time.Duration // panic guard: larger estimates are not slewed (0: 1000 s)
	MaxSlewPPM    float64       // fastest slew (0: the kernel's limit)
	Method        adjtime.Method
	SyncThreshold time.Duration
	DryRun        bool
	DriftInterval time.Duration // how often to save the drift file (0: hourly)
	// UndoForeignSteps steps the clock forward again, at once, when
	// another program sets it back (up to MaxOffset): `--undo-foreign-steps`.
	UndoForeignSteps bool
	// StepForwardOver: a clock behind true time by more than this is
	// stepped forward once, and the rest slewed (0: never step).
	StepForwardOver time.Duration
	// MonitorOnly measures, selects and publishes (Snapshot) but is a dry
	// run in every other way, without its "would" lines and without
	// needing clock rights: no clock write, no status file, never marked
	// synchronized, no drift file or high-water mark (monitor.go).
	MonitorOnly bool
}

// Env is everything the discipline touches, so that the same loop runs on
// the real kernel and on the simulated one.
type Env struct {
	Clock  clock.Clock
	Loop   clock.Loop
	Client Estimator
	State  adjtime.Store // drift file, slew journal, high-water mark (/var/lib/slewd)
	Run    adjtime.Store // status file (/run/slewd); nil for none
	// StepNotes is where `slewd boot` and `slewd sync` note a step just
	// before making it (statefile.NoteStep), so that it is not taken for a
	// foreign one; the daemon clears a note it has used (not in a dry
	// run). nil means Run. A monitor-only daemon, which writes no status
	// file, reads it and writes nothing.
	StepNotes adjtime.Store
	BootID    func() string
	// MarkSynced touches /run/systemd/timesync/synchronized, which is what
	// systemd-time-wait-sync and time-sync.target wait for.
	MarkSynced func() error
	// Notify sends a systemd notification ("READY=1", "STATUS=...").
	Notify   func(state string)
	Watchdog time.Duration // WATCHDOG_USEC/2, 0 if none
	Handlers []Handler
	// Attribute names the likely culprit of a foreign clock change and the
	// change that stops it (hostinfo on a real machine); nil: "unknown".
	Attribute func(hostinfo.Observation) hostinfo.Suspect
	Log       *slog.Logger
}

// Discipline is the loop. Make one with New and call Run once.
type Discipline struct {
	cfg    Config
	env    Env
	servo  *adjtime.Servo
	slewer *adjtime.Slewer
	log    *slog.Logger

	nextControl time.Duration // RAW time of the next slewer step, -1 for none
	nextDrift   time.Duration // RAW time to save the drift file
	nextDog     time.Duration
	lastEst     *ntpclient.Estimate
	reports     []ntpclient.SourceReport // at lastEst
	slewing     bool
	panicked    bool
	markedSync  bool
	// For the Snapshot (slewd tracking): the bounds the slewer was given
	// (maxerror and esterror less the correction left), when it was
	// given any, and when systemd was last told the clock is synchronized.
	hasTarget               bool
	targetDist, targetSigma time.Duration
	markedAt                time.Time
	// Source health: WARN lines when a source fails or recovers.
	health     SourceHealth
	nextHealth time.Duration
	// statusFailing: the status file could not be written (said once).
	statusFailing bool
	// startFreqPPM is the drift compensation slewd started with; it is put
	// back at exit if slewd has not learnt a better one.
	startFreqPPM float64

	fw      foreignWatch // other programs' changes (foreign.go)
	lw      leapWatch    // leap seconds the servers announce (leap.go)
	monitor monitorState // MonitorOnly's last log line (monitor.go)

	mu   sync.Mutex
	snap Snapshot
}

// New fills in Config's and Env's defaults.
func New(cfg Config, env Env) *Discipline {
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
	if env.BootID == nil {
		env.BootID = func() string { return "unknown" }
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	if env.StepNotes == nil {
		env.StepNotes = env.Run
	}
	cfg, env = monitorOnly(cfg, env)
	return &Discipline{cfg: cfg, env: env, log: env.Log}
}

// Run is `slewd run`: the ntpclient → adjtime loop, until ctx ends. It
// returns nil when ctx is cancelled and the clock was handed back cleanly.
func (d *Discipline) Run(ctx context.Context) error {
	if err := d.start(); err != nil {
		return err
	}
	env := d.env
	for {
		now := env.Clock.Raw()
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
		if now >= d.fw.next {
			if err := d.lookForeign(now, nil); err != nil {
				return d.shutdown(err)
			}
		}
		if d.lw.armed && now >= d.lw.due {
			d.leapDue(now)
		}
		if now >= d.nextHealth {
			d.checkSources()
			d.nextHealth = now + SourceHealthInterval
		}
		if env.Watchdog > 0 && now >= d.nextDog {
			env.Notify("WATCHDOG=1")
			d.nextDog = now + env.Watchdog
		}
		ev, err := env.Loop.Wait(ctx, d.wait(now))
		if err != nil {
			return d.shutdown(err)
		}
		if ev == nil {
			continue
		}
		if err := d.dispatch(ev); err != nil {
			return d.shutdown(err)
		}
	}
}

// start takes the clock: the drift compensation to start from, the servo
// and the slewer, the kernel in the slewer's mode.
func (d *Discipline) start() error {
	env := d.env
	if !d.cfg.DryRun {
		if err := clock.CanAdjust(env.Clock); err != nil {
			return fmt.Errorf("slewd run cannot adjust the clock: %w (use --monitor-only to only measure)", err)
		}
	}
	drift, known, err := adjtime.ReadDrift(env.State)
	if err != nil {
		d.log.Warn("ignoring the drift file", "err", err)
	}
	var journal *adjtime.Journal
	if d.cfg.Method == adjtime.MethodTick {
		journal = &adjtime.Journal{Store: env.State, BootID: env.BootID}
	}
	var kernel *clock.KernelState
	if !known {
		// Without a drift file, the kernel's tick and frequency may hold a
		// drift compensation worth adopting.
		if k, err := clock.NewDriver(env.Clock).Read(); err == nil {
			kernel = &k
		}
	}
	basePPM := StartFrequency(drift, known, kernel, !known && journal.Active())
	d.startFreqPPM = basePPM
	d.servo = adjtime.NewServo(adjtime.ServoConfig{FreqPPM: basePPM, FreqKnown: known})
	d.slewer = adjtime.NewSlewer(env.Clock, adjtime.SlewerConfig{
		Method: d.cfg.Method, MaxRatePPM: d.cfg.MaxSlewPPM, SyncThreshold: d.cfg.SyncThreshold,
		DryRun: d.cfg.DryRun, Journal: journal,
	}, d.log)
	if err := d.slewer.TakeControl(basePPM); err != nil {
		return err
	}
	d.log.Info("slewd started", "drift_ppm", math.Round(basePPM*1e3)/1e3, "drift_file", known, "method", d.cfg.Method.String(),
		"max_slew_ppm", d.cfg.MaxSlewPPM, "dry_run", d.cfg.DryRun, "monitor_only", d.cfg.MonitorOnly)
	// Started: waiting for synchronization is slewd-wait's job, not the
	// service's start-up (a boot without network must not time out here).
	env.Notify("READY=1\nSTATUS=waiting for the first estimate")
	now := env.Clock.Raw()
	d.nextControl = -1
	d.nextDrift = now + d.cfg.DriftInterval
	d.nextDog = now
	d.startForeign()
	d.nextHealth = now + SourceHealthInterval
	d.publish(nil)
	env.Client.Start()
	return nil
}

// wait is how long the loop may wait for an event: until the client's
// next due time or the discipline's own, whichever is first. Due times
// are on RAW; Loop.Wait runs on MONOTONIC, which slewing makes up to 10 %
// fast or slow, so a wait may end early or late by that much. Steps
// re-check RAW; the slewer measures anyway.
func (d *Discipline) wait(now time.Duration) time.Duration {
	wait := d.env.Client.Tick()
	due := []time.Duration{d.nextDrift, d.fw.next, d.nextHealth}
	if d.nextControl >= 0 {
		due = append(due, d.nextControl)
	}
	if d.env.Watchdog > 0 {
		due = append(due, d.nextDog)
	}
	if d.lw.armed {
		due = append(due, d.lw.due)
	}
	for _, t := range due {
		wait = min(wait, adjtime.EarlyWait(max(t-now, 0)))
	}
	return wait
}

// dispatch hands an event to the client, else to the handlers.
func (d *Discipline) dispatch(ev any) error {
	switch ev := ev.(type) {
	case clock.ClockChanged:
		return d.lookForeign(ev.Woke, &ev.After)
	case attributed:
		d.logForeign(ev)
		return nil
	case clock.ClockWatchFailed:
		d.log.Warn("stopped watching for clock steps; looking once a second instead", "err", ev.Err)
		return nil
	}
	if est, ok := d.env.Client.Handle(ev); ok {
		if est == nil {
			// A reply, a timeout or a lookup without a new estimate:
			// the sources' state is news all the same (an unreachable one).
			d.reports = d.env.Client.Reports()
			d.publish(nil)
			return nil
		}
		return d.onEstimate(*est)
	}
	for _, h := range d.env.Handlers {
		handled, err := h.HandleEvent(d, ev)
		if err != nil {
			return err
		}
		if handled {
			return nil
		}
	}
	d.log.Debug("an event nobody handles", "type", fmt.Sprintf("%T", ev))
	return nil
}

func (d *Discipline) onEstimate(est ntpclient.Estimate) error {
	d.lastEst = &est
	d.reports = d.env.Client.Reports()
	d.checkSources()
	d.monitorLog(est)
	if OutOfBounds(est.Offset, d.cfg.MaxOffset) {
		if !d.panicked {
			d.log.Error("the clock is too far off to slew: not correcting it",
				"offset", est.Offset.Round(time.Millisecond), "max_offset", d.cfg.MaxOffset,
				"slew_would_take", SlewTime(est.Offset, d.cfg.MaxSlewPPM).Round(time.Second),
				"fix", "run `slewd boot` to step the clock once (stop services that dislike steps first), or raise --max-offset")
			d.panicked = true
			d.env.Notify(fmt.Sprintf("STATUS=not correcting: clock off by %v > --max-offset %v", est.Offset.Round(time.Millisecond), d.cfg.MaxOffset))
			// Whatever was being corrected no longer applies: stop, and
			// aim at nothing until the clock is back within bounds.
			if err := d.slewer.Stop(); err != nil {
				return err
			}
		}
		d.publish(nil)
		return nil
	}
	if d.panicked {
		d.log.Info(d.claim("the clock is back within --max-offset; correcting it"), "offset", est.Offset)
		d.panicked = false
	}
	d.leapEstimate(est)
	// The servo takes the fresh sample behind the estimate, moved onto the
	// combination of the sources, with its hard bound.
	innov := d.servo.Update(est.Sample.Raw, est.Sample.Phase()-est.SampleBias, est.SampleBound)
	now := d.env.Clock.Raw()
	freq := BaseFrequency(d.servo.FreqPPM(), d.servo.FreqSigmaPPM(), d.startFreqPPM)
	if err := d.slewer.SetBaseFrequency(freq); err != nil {
		return err
	}
	d.hasTarget, d.targetDist, d.targetSigma = true, est.Error+d.servo.PhaseSigma(now), d.servo.PhaseSigma(now)
	d.slewer.SetTarget(now, d.servo.Phase(now), freq, d.targetDist, d.targetSigma)
	d.env.Client.SetPollLimit(PollLimit(d.servo.WanderUpper()))
	if err := d.stepForwardIfBehind(est.Error + d.servo.PhaseSigma(now)); err != nil {
		return err
	}
	d.log.Debug("estimate", "offset", est.Offset, "error", est.Error, "jitter", est.Jitter, "sources", est.Sources,
		"innovation", time.Duration(innov*1e9), "freq_ppm", freq, "wander", d.servo.WanderPerRootSecond())
	return d.control()
}

// control runs a slewer step and reports what changed.
func (d *Discipline) control() error {
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
	if AnnounceSlew(d.slewing, slewing, rem) && !d.cfg.MonitorOnly {
		msg := "slewing"
		if d.cfg.DryRun {
			msg = "dry run: would slew (the clock is left alone)"
		}
		d.log.Info(msg, "correction", rem.Round(time.Microsecond),
			"rate_ppm", d.cfg.MaxSlewPPM, "eta", SlewTime(rem, d.cfg.MaxSlewPPM).Round(time.Second))
	}
	if !slewing && d.slewing && d.lastEst != nil {
		d.log.Info("slew done", "remaining", rem.Round(time.Microsecond), "freq_ppm", math.Round(d.servo.FreqPPM()*1e3)/1e3)
	}
	d.slewing = slewing
	synced := d.slewer.Synced() && !d.cfg.MonitorOnly
	if synced != d.markedSync {
		d.markedSync = synced
		if synced && d.cfg.DryRun {
			// Nothing was told to the kernel or systemd: no flag file.
			d.log.Info("dry run: the clock would now count as synchronized (kernel and systemd not told)", "remaining", rem)
		} else if synced {
			d.log.Info("clock synchronized", "remaining", rem, "error_bound", d.lastEst.Error)
			if err := d.env.MarkSynced(); err != nil {
				d.log.Warn("could not mark the clock synchronized for systemd", "err", err)
			} else {
				d.markedAt = d.env.Clock.Now()
			}
			d.saveHighWater()
		} else {
			d.log.Info("clock no longer synchronized", "remaining", rem)
		}
	}
	st := d.publish(nil)
	if d.lastEst != nil {
		d.env.Notify(fmt.Sprintf("STATUS=offset %v, %v left to slew, %d sources", d.lastEst.Offset.Round(time.Microsecond), rem.Round(time.Microsecond), d.lastEst.Sources))
		d.writeStatus(st)
	}
	return nil
}

// ControlNow makes the next control step due at once (after the handler
// returns): the Slewer measures REALTIME against its target again, so a
// step of the clock from outside is seen and planned for now rather than
// at the next estimate or the hourly check.
func (d *Discipline) ControlNow() {
	if d.slewer != nil {
		d.nextControl = d.env.Clock.Raw()
	}
}

// Remeasure asks every source again now (a foreign step, a network that
// came back): the next estimate does not wait for the poll interval.
func (d *Discipline) Remeasure() { d.env.Client.PollNow() }

// shutdown leaves the kernel clean: the drift compensation stays, and what
// is left of a correction goes to the kernel's self-terminating slews.
func (d *Discipline) shutdown(cause error) error {
	d.env.Notify("STOPPING=1")
	d.stopForeign()
	if cause != nil && !errors.Is(cause, context.Canceled) {
		d.log.Error(d.claim("stopping on an error; handing the clock back first"), "err", cause)
	}
	d.saveDrift()
	d.saveHighWater()
	if !FrequencyTrusted(d.servo.FreqSigmaPPM()) {
		// A frequency learnt from a few samples is worse than none: leave
		// the kernel the compensation it had when slewd started.
		if err := d.slewer.SetBaseFrequency(d.startFreqPPM); err != nil {
			d.log.Warn("could not restore the frequency", "err", err)
		}
	}
	if d.cfg.MonitorOnly {
		// Nothing was ever armed, and a monitor does not talk of handing
		// a correction over.
	} else if err := d.slewer.Release(); err != nil {
		return errors.Join(cause, fmt.Errorf("handing the clock back: %w", err))
	}
	d.publish(func(s *Snapshot) { s.Stopped = true })
	d.log.Info("slewd stopped", "remaining", d.slewer.Remaining())
	if errors.Is(cause, context.Canceled) {
		return nil
	}
	return cause
}
