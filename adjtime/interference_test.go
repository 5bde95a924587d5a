package adjtime

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
)

// refusingClock is a process whose time-constant changes the kernel
// refuses once refuse is set, while it still takes the pump's arms.
type refusingClock struct {
	*simclock.Process
	refuse *bool
}

func (c refusingClock) Adjtimex(tx *clock.Timex) (clock.State, error) {
	if *c.refuse && tx.Modes&clock.AdjTimeConst != 0 {
		return 0, &clock.AdjtimexError{Modes: tx.Modes, Err: syscall.EPERM}
	}
	return c.Process.Adjtimex(tx)
}

// Another program changes the time constant, and the kernel then refuses
// slewd's attempt to take it back: Control says so, instead of slewing on
// in a mode the pump does not work in.
func TestInterferenceNotTakenBackIsAnError(t *testing.T) {
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 54 * time.Second}})
	refuse := false
	p := w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		s := NewSlewer(refusingClock{p, &refuse}, SlewerConfig{}, quiet())
		raw, phase, f := exactTarget(w, p)
		if err := s.TakeControl(f); err != nil {
			return err
		}
		s.SetTarget(raw, phase, f, 0, 0)
		for {
			next, err := s.Control()
			if err != nil {
				return err
			}
			for now := p.Raw(); now < next; now = p.Raw() {
				if _, err := p.Wait(ctx, EarlyWait(next-now)); err != nil {
					return nil
				}
			}
		}
	})
	w.At(100*time.Second, func() {
		refuse = true
		w.Adjtimex(&clock.Timex{Modes: clock.AdjTimeConst, Constant: 6})
	})
	w.Run(110 * time.Second)
	done, err := p.Exited()
	if !done || !errors.Is(err, syscall.EPERM) {
		t.Errorf("exited %v with %v; want the kernel's refusal to take the clock back", done, err)
	}
}
