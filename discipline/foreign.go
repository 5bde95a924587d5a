package discipline

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/discipline/statefile"
	"slewd/foreign"
	"slewd/hostinfo"
)

// What the discipline does when something else moves the clock.
//
// It hears of a step at once (clock.WatchChanges: the kernel's
// cancel-on-set notice, on every clock_was_set) and looks once a second
// anyway, for slews, which fire nothing (another program's tick,
// frequency, adjtime() or leap second; Slewer.CheckKernel), and for a step
// whose notice was lost. A foreign.Ledger keeps slewd's own steps out of
// what it sees; foreign.Decide says what to do; the discipline does it
// (undo a backward step by stepping forward, re-measure, re-plan), names
// the likely culprit (Env.Attribute) and counts it for the status file.

// checkEvery is how often the discipline looks at the kernel for changes
// nobody notifies.
const checkEvery = time.Second

// foreignWatch is the discipline's state about other programs' changes.
type foreignWatch struct {
	ledger  foreign.Ledger
	tally   foreign.Tally
	next    time.Duration // RAW time of the next look
	stop    func()        // the change watcher's
	earlier []time.Time   // when earlier foreign changes were seen, for a period

	saidDryStep bool          // a dry run said once that it would step forward
	ownRaw      time.Duration // RAW of slewd's last own step
	usedNote    time.Duration // RAW of the step note last taken (ownNotedStep)
}

// ownStep records a step slewd made in the ledger.
func (d *Discipline) ownStep(took time.Duration) {
	d.fw.ledger.Own(took)
	d.fw.ownRaw = d.env.Clock.Raw()
}

// forgetter is a client that can drop its samples (ntpclient.Client).
type forgetter interface{ Forget() }

// offsetsReading turns the kernel's offsets into the ledger's terms.
func offsetsReading(o clock.Offsets) foreign.Reading {
	return foreign.Reading{
		RealMinusBoot: o.RealMinusMono - o.BootMinusMono,
		BootMinusMono: o.BootMinusMono,
		Width:         o.Width,
		Raw:           o.Raw - o.Width, // about the bracket's start
	}
}

// startForeign arms the change watcher and takes the first reading.
func (d *Discipline) startForeign() {
	d.fw.ledger.Reset(offsetsReading(clock.ReadOffsets(d.env.Clock, 4)))
	d.fw.next = d.env.Clock.Raw() + checkEvery
	stop, err := clock.WatchChanges(d.env.Clock, d.env.Loop)
	if err != nil {
		d.log.Warn("cannot watch for clock steps; looking once a second instead", "err", err)
		return
	}
	d.fw.stop = stop
}

func (d *Discipline) stopForeign() {
	if d.fw.stop != nil {
		d.fw.stop()
		d.fw.stop = nil
	}
}

// lookForeign is the once-a-second look, and what a change notice runs:
// woke is RAW when the notice arrived (the look's own time otherwise);
// seen, when not nil, the offsets the watcher read right after the notice
// (reading them again would cost the undo time).
func (d *Discipline) lookForeign(woke time.Duration, seen *clock.Offsets) error {
	now := d.env.Clock.Raw()
	d.fw.next = now + checkEvery
	var o clock.Offsets
	if seen != nil && seen.Raw-seen.Width > d.fw.ownRaw {
		o = *seen
	} else {
		// No reading, or slewd stepped since it was taken (the ledger
		// already counts that step): read now.
		o = clock.ReadOffsets(d.env.Clock, 4)
	}
	c := d.fw.ledger.Observe(offsetsReading(o))
	if !c.None() {
		if err := d.onForeignStep(c, woke); err != nil {
			return err
		}
	}
	i, err := d.slewer.CheckKernel()
	if !i.None() {
		d.onForeignSlew(i)
	}
	return err
}

// onForeignStep answers a step or a resume that slewd did not make.
func (d *Discipline) onForeignStep(c foreign.Change, woke time.Duration) error {
	now := d.env.Clock.Raw()
	if c.Step != 0 {
		// A step wiped the kernel's PLL offset and singleshot (ntp_clear);
		// the pump re-arms at the next control step. A resume keeps them.
		d.slewer.Wiped()
	}
	if c.Suspend == 0 && d.ownNotedStep(c.Step, now) {
		return nil
	}
	dec := foreign.Decide(c, foreign.Policy{Undo: d.cfg.UndoForeignSteps, MaxUndo: d.cfg.MaxOffset})
	if c.Suspend > 0 {
		// RAW stood still while true time went on: the servo's frame and
		// the slewer's target move with the time asleep, which the kernel
		// measured (to about a second, with the RTC). The burst below
		// measures what is really left; a clock behind is stepped forward.
		d.servo.Shift(c.Suspend, time.Second)
		d.slewer.ShiftTarget(c.Suspend)
		if f, ok := d.env.Client.(forgetter); ok {
			f.Forget() // the sources' samples are in the old frame
		}
	}
	ev := foreign.Event{Kind: "step", Step: c.Step, Suspend: c.Suspend, Action: dec.Did}
	if c.Suspend > 0 {
		ev.Kind = "suspend"
	}
	if dec.Action == foreign.UndoStep {
		// The notice's reading may be old by now: if the clock moved again
		// meanwhile (put right by whoever set it back, say), undo only what
		// is still missing, never more.
		more := d.fw.ledger.Observe(offsetsReading(clock.ReadOffsets(d.env.Clock, 1)))
		dec.StepForward -= more.Step
		if dec.StepForward <= 0 {
			dec = foreign.Decision{Action: foreign.Remeasure, Did: "already put right again before slewd could undo it; re-measuring at once"}
			ev.Action = dec.Did
		}
	}
	if dec.Action == foreign.UndoStep {
		took, err := d.slewer.StepForward(dec.StepForward)
		if err != nil {
			return fmt.Errorf("undoing a foreign step: %w", err)
		}
		d.ownStep(took)
		ev.Undone = took > 0
		ev.UndoneRaw = d.env.Clock.Raw()
		ev.Latency = ev.UndoneRaw - woke
		if d.cfg.MonitorOnly {
			ev.Action = "monitor only: left alone"
		} else if d.cfg.DryRun {
			ev.Action = "dry run: would undo it (step forward by " + dec.StepForward.String() + ")"
		}
	}
	d.ControlNow()
	d.Remeasure()
	ev.Time = d.env.Clock.Now()
	kind := hostinfo.Step
	d.reportForeign(ev, hostinfo.Observation{Kind: kind, Offset: c.Step, Resumed: c.Suspend > 0}, dec.Advice)
	return nil
}

// ownNotedStep says whether a step is the one `slewd boot` or `slewd sync`
// noted in the run directory just before making it, and if so answers it
// as slewd's own: it is not undone, reported or counted, whatever its
// direction, the undo policy or the mode (a monitor reads the note too),
// and the sources are re-measured. A note is used once.
func (d *Discipline) ownNotedStep(step, raw time.Duration) bool {
	if d.env.StepNotes == nil {
		return false
	}
	s, ok := statefile.OwnStep(d.env.StepNotes, raw, step, time.Millisecond)
	if !ok || s.Raw == d.fw.usedNote {
		return false
	}
	d.fw.usedNote = s.Raw
	d.log.Info("the clock was stepped by "+s.By+"; slewd's own step, not a foreign one", "step", step)
	if !d.cfg.DryRun {
		statefile.ForgetStep(d.env.StepNotes) // used: it cannot match again
	}
	d.ControlNow()
	d.Remeasure()
	return true
}

// onForeignSlew reports what another program changed of the kernel's
// rate or status (CheckKernel has taken it back).
func (d *Discipline) onForeignSlew(i adjtime.Interference) {
	obs := hostinfo.Observation{Kind: hostinfo.FreqChange, LeapArmed: i.Leap}
	switch i.Kind() {
	case "tick":
		obs.Kind = hostinfo.TickChange
	case "slew":
		obs.Kind, obs.Offset = hostinfo.Slew, i.Singleshot
	}
	action := "taken back"
	if i.Leap {
		action = "cleared: slewd slews leap seconds, the kernel must not step for one"
	}
	d.ControlNow()
	d.reportForeign(foreign.Event{Time: d.env.Clock.Now(), Kind: i.Kind(), Action: action + " (" + i.String() + ")"}, obs, "")
}

// attributed is a foreign change with its culprit, posted back to the
// loop by the helper that looked for it.
type attributed struct {
	ev      foreign.Event
	obs     hostinfo.Observation
	advice  string
	suspect hostinfo.Suspect
}

// reportForeign names the culprit, counts the change, and says it all in
// one WARN line (ERROR for one that keeps coming back). Looking for the
// culprit reads /proc, cron and units: it runs beside the loop, which
// must stay free to undo the next step at once.
func (d *Discipline) reportForeign(ev foreign.Event, obs hostinfo.Observation, advice string) {
	obs.At = ev.Time.Local()
	obs.Earlier = append([]time.Time(nil), d.fw.earlier...)
	d.fw.earlier = append(d.fw.earlier, obs.At)
	if len(d.fw.earlier) > 16 {
		d.fw.earlier = d.fw.earlier[1:]
	}
	attr := d.env.Attribute
	if attr == nil {
		d.logForeign(attributed{ev: ev, obs: obs, advice: advice})
		return
	}
	loop := d.env.Loop
	loop.Go(func() { loop.Post(attributed{ev: ev, obs: obs, advice: advice, suspect: attr(obs)}) })
}

// logForeign counts an attributed change and logs it.
func (d *Discipline) logForeign(a attributed) {
	ev, advice := a.ev, a.advice
	ev.Culprit, ev.Fix = "unknown", "enable audit rules for time changes (auditctl -a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime,clock_adjtime -k time-change) to see who does it"
	if s := a.suspect; s.Who != "" {
		ev.Culprit, ev.Fix = s.Who, s.Fix
		if s.Why != "" {
			ev.Culprit += " (" + s.Why + ")"
		}
	}
	if advice != "" {
		ev.Fix = advice + "; " + ev.Fix
	}
	repeats := d.fw.tally.Add(d.env.Clock.Raw(), ev)
	level, msg := slog.LevelWarn, foreignMessage(ev)
	if repeats >= 3 {
		level = slog.LevelError
		msg = fmt.Sprintf("%s; %d times in 10 minutes: something keeps moving the clock", msg, repeats)
	}
	attrs := []any{"kind", ev.Kind, "action", ev.Action, "culprit", ev.Culprit, "fix", ev.Fix}
	if ev.Step != 0 {
		attrs = append(attrs, "step", ev.Step)
	}
	if ev.Suspend != 0 {
		attrs = append(attrs, "suspended", ev.Suspend)
	}
	if ev.Undone {
		attrs = append(attrs, "undone_in", ev.Latency)
	}
	d.log.Log(context.Background(), level, msg, attrs...)
	st := d.publish(nil)
	if d.lastEst != nil {
		d.writeStatus(st)
	}
}

// foreignMessage is the WARN line's message: what happened, in words.
func foreignMessage(ev foreign.Event) string {
	switch ev.Kind {
	case "step":
		if ev.Step < 0 {
			return fmt.Sprintf("another program set the clock back by %v", (-ev.Step).Round(time.Microsecond))
		}
		return fmt.Sprintf("another program set the clock forward by %v", ev.Step.Round(time.Microsecond))
	case "suspend":
		m := fmt.Sprintf("the machine resumed after %v suspended", ev.Suspend)
		if ev.Step != 0 {
			m += fmt.Sprintf(", and the clock was stepped %v besides", ev.Step)
		}
		return m
	case "leap":
		return "another program armed a leap second in the kernel"
	case "tick":
		return "another program changed the kernel's tick (a slew)"
	case "slew":
		return "another program started an adjtime() slew"
	}
	return "another program changed the kernel clock's mode or frequency"
}

// stepForwardIfBehind steps a clock that is behind true time by more than
// Config.StepForwardOver forward at once (a forward step harms no program
// that dies on backward time), less the error bound so that it cannot
// overshoot; the slewer slews the rest.
func (d *Discipline) stepForwardIfBehind(errorBound time.Duration) error {
	if d.cfg.StepForwardOver <= 0 {
		return nil
	}
	// A step back by another program not handled yet would look like a
	// clock that is behind, and be corrected twice: hear of it first.
	if err := d.lookForeign(d.env.Clock.Raw(), nil); err != nil {
		return err
	}
	_, e := d.slewer.Measure()
	rem := -e
	step := foreign.ForwardStep(rem, errorBound, d.cfg.StepForwardOver)
	if step == 0 {
		return nil
	}
	took, err := d.slewer.StepForward(step)
	if err != nil {
		return err
	}
	d.ownStep(took)
	if d.cfg.DryRun {
		if !d.fw.saidDryStep && !d.cfg.MonitorOnly {
			d.fw.saidDryStep = true
			d.log.Info("dry run: would step the clock forward (it is behind); the clock is left alone", "behind", rem.Round(time.Microsecond), "step", step)
		}
		return nil
	}
	d.log.Info("the clock was behind: stepped it forward (a forward step harms no program); slewing the rest",
		"behind", rem.Round(time.Microsecond), "step", took, "error_bound", errorBound)
	return nil
}
