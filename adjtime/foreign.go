package adjtime

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"slewd/clock"
)

// Interference is what another program changed of the kernel clock state
// the Slewer owns, as CheckKernel (or a pump step) found it and took it
// back. Slews by others fire no clock-change notification: VMware Tools
// sets the tick, ntpdate under 0.5 s and VirtualBox's agent call adjtime()
// (which replaces any singleshot), another NTP daemon sets the frequency or
// the PLL mode, a program arms a leap second.
type Interference struct {
	Tick       bool          // tick is not the drift compensation's
	Frequency  bool          // frequency is not the drift compensation's
	Mode       bool          // the PLL mode or time constant was changed
	Singleshot time.Duration // an adjtime() slew another program armed (cancelled)
	Leap       bool          // a leap second was armed (STA_INS or STA_DEL; cleared)
	Seen       clock.KernelState
}

// None reports whether nothing was changed.
func (i Interference) None() bool {
	return !i.Tick && !i.Frequency && !i.Mode && i.Singleshot == 0 && !i.Leap
}

// Kind names the change for logs and counts: "leap", "tick", "frequency",
// "slew" (a singleshot) or "mode".
func (i Interference) Kind() string {
	switch {
	case i.Leap:
		return "leap"
	case i.Tick:
		return "tick"
	case i.Singleshot != 0:
		return "slew"
	case i.Frequency:
		return "frequency"
	}
	return "mode"
}

func (i Interference) String() string {
	var parts []string
	if i.Tick {
		parts = append(parts, fmt.Sprintf("tick set to %d (%+.0f ppm)", i.Seen.Tick, i.Seen.TickPPM()))
	}
	if i.Frequency {
		parts = append(parts, fmt.Sprintf("frequency set to %+.3f ppm", i.Seen.FrequencyPPM))
	}
	if i.Mode {
		parts = append(parts, fmt.Sprintf("PLL mode changed (status %s, time constant %d)", strings.Join(i.Seen.Status.Names(), "|"), i.Seen.TimeConstant))
	}
	if i.Singleshot != 0 {
		parts = append(parts, fmt.Sprintf("an adjtime() slew of %v armed", i.Singleshot))
	}
	if i.Leap {
		parts = append(parts, "a leap second armed for midnight UTC")
	}
	if len(parts) == 0 {
		return "nothing changed"
	}
	return strings.Join(parts, ", ")
}

// inspect compares the kernel's state with what the Slewer set.
func (s *Slewer) inspect(cur clock.KernelState) Interference {
	i := Interference{Seen: cur}
	if s.cfg.DryRun {
		return i
	}
	// While the tick method's bulk runs, tick and frequency are its bias,
	// not the drift compensation: compare with what the bias wrote.
	wantTick, wantFreq := s.tookTick, s.tookFreq
	if s.biasing() {
		wantTick, wantFreq = s.tick.bulkTick, s.tick.bulkFreq
	}
	i.Mode = !owned(cur)
	i.Tick = s.baseSet && cur.Tick != wantTick
	i.Frequency = s.baseSet && cur.FrequencyRaw() != wantFreq
	i.Leap = cur.Status.LeapInsert || cur.Status.LeapDelete
	return i
}

// takeBack restores what i found changed: the drift compensation, the
// PLL mode and a leap second nobody should step for.
func (s *Slewer) takeBack(i Interference) error {
	switch {
	case (i.Tick || i.Frequency) && s.biasing():
		// Mid-bulk: the bias again. What the other program's rate slewed
		// meanwhile is in the next estimate, which re-plans the stop.
		if _, err := s.apply(tickFreq(s.tick.bulkTick, s.tick.bulkFreq)); err != nil {
			return fmt.Errorf("taking the clock back: %w", err)
		}
	case i.Tick || i.Frequency:
		s.baseSet = false // force SetBaseFrequency to write
		if err := s.SetBaseFrequency(s.basePPM); err != nil {
			return fmt.Errorf("taking the clock back: %w", err)
		}
	}
	if i.Mode || i.Leap {
		// The status slewd owns has no leap bits: writing it clears them.
		st := s.status
		if _, err := s.apply(clock.Change{Status: &st, SetTimeConstant: true, TimeConstant: 0}); err != nil {
			return fmt.Errorf("taking the clock back: %w", err)
		}
	}
	return nil
}

// CheckKernel looks for another program steering the clock (call it every
// second: slews fire no notification), takes back what it finds, and
// returns it, with anything a pump step found since the last call. An
// error is the kernel refusing to give the clock back.
func (s *Slewer) CheckKernel() (Interference, error) {
	found := s.pending
	s.pending = Interference{}
	cur, err := s.drv.Read()
	if err != nil {
		return found, err
	}
	i := s.inspect(cur)
	if !s.cfg.DryRun {
		// The PLL method never leaves a singleshot running while it runs,
		// nor does the tick method's bulk; its tail is at most what it
		// armed, in the same direction. Anything else pending is another
		// program's adjtime(), which replaced slewd's tail.
		if left, err := s.drv.SingleshotRemaining(); err == nil && left != 0 && !s.ownSingleshot(left) {
			if _, err := s.drv.CancelSingleshot(); err != nil {
				return found, fmt.Errorf("cancelling another program's adjtime() slew: %w", err)
			}
			i.Singleshot = left
		}
	}
	if !i.None() {
		if err := s.takeBack(i); err != nil {
			return merge(found, i), err
		}
	}
	return merge(found, i), nil
}

// ownSingleshot says whether a pending singleshot of left can be the tick
// method's tail: armed by slewd, not by a bulk, and no larger than what it
// armed, in the same direction (the kernel only drains it). A foreign
// adjtime() of the same sign and no larger is not told apart; it is small
// and the next estimate corrects it.
func (s *Slewer) ownSingleshot(left time.Duration) bool {
	if s.tick == nil || s.biasing() {
		return false
	}
	armed := time.Duration(math.Round(s.tick.singleshot*1e6)) * time.Microsecond
	return (left > 0) == (armed > 0) && left.Abs() <= armed.Abs()
}

// merge combines two findings, the later state winning.
func merge(a, b Interference) Interference {
	if a.None() {
		return b
	}
	if b.None() {
		return a
	}
	return Interference{Tick: a.Tick || b.Tick, Frequency: a.Frequency || b.Frequency, Mode: a.Mode || b.Mode,
		Singleshot: a.Singleshot + b.Singleshot, Leap: a.Leap || b.Leap, Seen: b.Seen}
}

// errBackwardStep: the Slewer has no way to step the clock back.
var errBackwardStep = errors.New("slewd never steps the clock back")

// StepForward steps REALTIME forward by d at once (ADJ_SETOFFSET): to undo
// another program's backward step, or to bring a clock that is behind to
// true time, since a forward step harms no program that dies on backward
// time. It refuses anything but a forward step. It returns the step the
// kernel took (0 in dry-run mode, which changes nothing).
//
// The step wipes the kernel's PLL offset, any singleshot, the sync status
// and maxerror (ntp_clear); tick and frequency stay. The next Control
// re-arms from a fresh measurement and writes the status again.
func (s *Slewer) StepForward(d time.Duration) (time.Duration, error) {
	if d <= 0 {
		return 0, fmt.Errorf("refusing a step of %v: %w", d, errBackwardStep)
	}
	if s.cfg.DryRun {
		return 0, nil
	}
	if s.biasing() {
		// The bulk's deadline was planned for the correction before the
		// step: end it; the next Control plans again.
		if err := s.tick.stop(s); err != nil {
			return 0, err
		}
	}
	if _, err := s.drv.Step(d); err != nil {
		return 0, fmt.Errorf("stepping the clock forward by %v: %w", d, err)
	}
	s.Wiped()
	return d, nil
}

// Wiped tells the Slewer that a step (its own or another program's) has
// cleared the kernel's PLL offset and singleshot: nothing it armed is
// running any more.
func (s *Slewer) Wiped() {
	s.armed, s.armedNs, s.chunk = 0, 0, 0
}

// ShiftTarget moves the target trajectory by d, with the servo's frame
// (Servo.Shift): after a suspend, until the next estimate.
func (s *Slewer) ShiftTarget(d time.Duration) {
	if s.hasTarget {
		s.tPhase += d
	}
}
