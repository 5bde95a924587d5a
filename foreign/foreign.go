// Package foreign decides what slewd does when something else moves the
// clock: a hypervisor agent, a stray ntpdate, a resumed VM, a leap second
// armed by another program.
//
// The kernel says that the clock was set (a timerfd armed with
// TFD_TIMER_CANCEL_ON_SET), but not by how much or by whom. The size comes
// from the kernel's own offsets: REALTIME − BOOTTIME changes only when the
// clock is set (slewing moves both alike, a suspend moves both alike), and
// BOOTTIME − MONOTONIC grows only by the time spent suspended. A Ledger
// keeps the expected values current with slewd's own steps, so what it
// reports is only what others did; Decide turns that into what to do.
//
// Everything here is a plain function of readings: no clock calls, no
// I/O, no sleeps. The discipline feeds it and carries out its decisions.
package foreign

import (
	"fmt"
	"time"
)

// Reading is one look at the kernel's time bases, reduced to the two
// offsets that only foreign events change.
type Reading struct {
	// RealMinusBoot is CLOCK_REALTIME − CLOCK_BOOTTIME. Slewing and suspend
	// leave it alone; settimeofday, clock_settime, ADJ_SETOFFSET and leap
	// seconds change it by exactly the step.
	RealMinusBoot time.Duration
	// BootMinusMono is CLOCK_BOOTTIME − CLOCK_MONOTONIC: it grows by the
	// time injected at each resume from suspend, and nothing else moves it.
	BootMinusMono time.Duration
	// Width bounds the reading's own error: the clocks are read one after
	// another, so the offsets carry the time between the reads.
	Width time.Duration
	// Raw is CLOCK_MONOTONIC_RAW when the reading began (0: unknown): a
	// reading older than the last one observed says nothing new.
	Raw time.Duration
}

// Change is what happened to the clock between two readings, less what
// slewd did itself.
type Change struct {
	// Step is the foreign step of REALTIME, signed: negative, the clock
	// was set back.
	Step time.Duration
	// Suspend is the time the machine spent suspended (0 if none).
	Suspend time.Duration
	// Own is the part of the change that slewd's own steps account for.
	Own time.Duration
}

// None reports whether nothing foreign happened.
func (c Change) None() bool { return c.Step == 0 && c.Suspend == 0 }

func (c Change) String() string {
	switch {
	case c.None():
		return "no foreign change"
	case c.Suspend != 0 && c.Step != 0:
		return fmt.Sprintf("resumed after %v suspended, and stepped %s", c.Suspend, signed(c.Step))
	case c.Suspend != 0:
		return fmt.Sprintf("resumed after %v suspended", c.Suspend)
	}
	return "stepped " + signed(c.Step)
}

// signed writes a step with its direction in words, for log lines.
func signed(d time.Duration) string {
	if d < 0 {
		return fmt.Sprintf("back by %v", -d)
	}
	return fmt.Sprintf("forward by %v", d)
}

// minTolerance is the smallest change taken for a step: below it the three
// clock reads of a Reading, not the clock, differ.
const minTolerance = 20 * time.Microsecond

// Ledger keeps the offsets slewd expects, so that each Observe reports
// only foreign changes. Not safe for concurrent use: the discipline's loop
// owns it.
type Ledger struct {
	last Reading
	set  bool
	own  time.Duration // own steps since the last Observe
}

// Reset takes r as the expected state, forgetting anything pending.
func (l *Ledger) Reset(r Reading) {
	l.last, l.set, l.own = r, true, 0
}

// Own records a step slewd made itself (a forward step, an undo, a boot
// step it was told of), right after the kernel took it. Recording the
// step, rather than reading the clock again, keeps a foreign step made at
// the same moment from being swallowed.
func (l *Ledger) Own(step time.Duration) {
	l.last.RealMinusBoot += step
	l.own += step
}

// Observe compares r with what was expected and returns what others did
// since the last Observe (or Reset). It then expects r. The first Observe
// after a zero Ledger only takes r.
func (l *Ledger) Observe(r Reading) Change {
	if !l.set {
		l.Reset(r)
		return Change{}
	}
	if r.Raw != 0 && r.Raw < l.last.Raw {
		// Taken before the last one: what it shows is counted already.
		return Change{}
	}
	tol := max(minTolerance, 2*(r.Width+l.last.Width))
	c := Change{Own: l.own}
	if d := r.RealMinusBoot - l.last.RealMinusBoot; d > tol || d < -tol {
		c.Step = d
	}
	if d := r.BootMinusMono - l.last.BootMinusMono; d > tol {
		c.Suspend = d
	}
	l.Reset(r)
	return c
}

// Policy is what the administrator chose about foreign steps.
type Policy struct {
	// Undo steps the clock forward again, at once, by what another program
	// set it back (--undo-foreign-steps, on by default).
	Undo bool
	// MaxUndo: a backward step larger than this is not undone (it is as
	// likely to be a correction of a clock that was far off): --max-offset.
	MaxUndo time.Duration
}

// Action is what the discipline does about a Change.
type Action int

const (
	// Nothing foreign happened.
	Nothing Action = iota
	// UndoStep: step forward by Decision.StepForward, then re-measure.
	UndoStep
	// Remeasure: leave the clock, ask the sources at once and re-plan
	// (a forward step, a resume, or a backward step not undone).
	Remeasure
)

func (a Action) String() string {
	switch a {
	case Nothing:
		return "nothing"
	case UndoStep:
		return "undo"
	case Remeasure:
		return "re-measure"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is what to do about one Change, and why, for the log.
type Decision struct {
	Action      Action
	StepForward time.Duration // with UndoStep: how far to step forward
	// Did says in words what slewd does, for the WARN line.
	Did string
	// Advice is what the administrator should do, when slewd cannot.
	Advice string
}

// Decide says what to do about c. A backward step is undone (REALTIME is
// put back past the highest time it had shown, so no program sees time go
// back for longer than it takes to hear of it), unless the policy says not
// to or the step is too large to be a mistake worth undoing blindly. Any
// foreign change is followed by a fresh measurement: the sources decide
// what the time really is, and the normal discipline slews (never steps
// back) toward it.
func Decide(c Change, p Policy) Decision {
	switch {
	case c.None():
		return Decision{Action: Nothing}
	case c.Step >= 0:
		d := Decision{Action: Remeasure, Did: "re-measuring at once"}
		if c.Step > 0 {
			d.Did = "left it (a forward step harms no program); re-measuring at once, any error is slewed back"
		}
		return d
	case !p.Undo:
		return Decision{Action: Remeasure, Did: "not undone (--undo-foreign-steps=false); re-measuring at once"}
	case p.MaxUndo > 0 && -c.Step > p.MaxUndo:
		return Decision{
			Action: Remeasure,
			Did:    fmt.Sprintf("not undone: larger than --max-offset %v", p.MaxUndo),
			Advice: "if the new time is right, nothing to do; if it is wrong, run `slewd boot` to set the clock once, and stop the program that set it",
		}
	}
	return Decision{Action: UndoStep, StepForward: -c.Step, Did: fmt.Sprintf("undone: stepped forward by %v; re-measuring at once", -c.Step)}
}

// ForwardStep is how far to step a clock that is behind: when the
// correction still to make (NTP sign: positive, the clock is behind) is
// more than threshold, step it by the correction less the error bound, so
// that the step can never carry the clock past true time; the rest is
// slewed. It returns 0 when no step is due. A clock that is ahead is never
// stepped.
func ForwardStep(remaining, errorBound, threshold time.Duration) time.Duration {
	if threshold <= 0 || remaining <= threshold {
		return 0
	}
	step := remaining - max(errorBound, 0)
	if step <= 0 {
		return 0
	}
	return step
}
