package clock

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// This file is the detection layer for foreign clock changes (slewd issue
// 10): the kernel's clock_was_set notification, the snapshots that size
// what it reported, and the comparison of polled kernel state against what
// slewd last wrote. Deciding what to do about a foreign change is not here.

// BootClock reads CLOCK_BOOTTIME: MONOTONIC plus the time spent suspended.
// System and the simulated kernel's processes implement it.
type BootClock interface {
	Boot() time.Duration
}

// RealtimeSetter sets CLOCK_REALTIME outright, as settimeofday(2) and
// clock_settime(2) do. slewd itself never calls it: it is what other
// programs do to the clock, for the conformance table and simulations.
type RealtimeSetter interface {
	// ClockSettime is clock_settime(CLOCK_REALTIME, t), to the nanosecond.
	ClockSettime(t time.Time) error
	// Settimeofday is settimeofday(2): t truncated to the microsecond.
	Settimeofday(t time.Time) error
}

// CancelOnSet is a CLOCK_REALTIME timerfd armed with
// TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET: the kernel's notification
// that the clock was set (settimeofday, clock_settime, ADJ_SETOFFSET, a
// leap second, resume from suspend; never slewing). A change that leaves
// REALTIME−MONOTONIC as it was at the arming (a step and its inverse
// before the notification ran) wakes nobody.
type CancelOnSet interface {
	// Arm (re)arms the timer to expire at REALTIME at and records the
	// current REALTIME−MONOTONIC; a set of the clock since the last Wait
	// does not make it fail (the kernel says ECANCELED and arms anyway).
	Arm(at time.Time) error
	// Wait blocks until the clock was set since the last Arm or Wait
	// (canceled true) or the timer expired (false). After Close it
	// returns ErrClosed.
	Wait() (canceled bool, err error)
	// Close releases the timer and makes a blocked Wait return.
	Close() error
}

// CancelOnSetOpener is a clock that can open a CancelOnSet.
type CancelOnSetOpener interface {
	OpenCancelOnSet() (CancelOnSet, error)
}

// ErrClosed is what CancelOnSet.Wait returns once the timer is closed.
var ErrClosed = errors.New("clock: cancel-on-set timer closed")

// Offsets is one bracketed snapshot of the differences between the
// kernel's time bases: MONOTONIC, REALTIME, BOOTTIME, MONOTONIC, with
// MONOTONIC_RAW around them. Slewing moves REALTIME, MONOTONIC and
// BOOTTIME together, so RealMinusMono and BootMinusMono change only when
// the kernel sets the clock (offs_real, offs_boot in timekeeping.c).
type Offsets struct {
	Raw           time.Duration // MONOTONIC_RAW, midpoint of the bracket
	Mono          time.Duration // MONOTONIC, midpoint of the bracket
	RealMinusMono time.Duration // REALTIME − MONOTONIC: moved only by steps, leaps and resume
	BootMinusMono time.Duration // BOOTTIME − MONOTONIC: the time spent suspended since boot
	HasBoot       bool          // the clock reads BOOTTIME (else BootMinusMono is 0)
	Width         time.Duration // MONOTONIC time between the two MONOTONIC reads
}

// ReadOffsets takes the narrowest of tries snapshots of c.
func ReadOffsets(c Clock, tries int) Offsets {
	bc, hasBoot := c.(BootClock)
	var best Offsets
	for i := 0; i < max(tries, 1); i++ {
		raw0 := c.Raw()
		m0 := c.Mono()
		real := c.Now()
		var boot time.Duration
		if hasBoot {
			boot = bc.Boot()
		}
		m1 := c.Mono()
		raw1 := c.Raw()
		w := m1 - m0
		if i > 0 && w >= best.Width {
			continue
		}
		mid := m0 + w/2
		best = Offsets{
			Raw:           raw0 + (raw1-raw0)/2,
			Mono:          mid,
			RealMinusMono: time.Duration(real.UnixNano()) - mid,
			HasBoot:       hasBoot,
			Width:         w,
		}
		if hasBoot {
			best.BootMinusMono = boot - mid
		}
	}
	return best
}

// OffsetChange is what happened to the clock between two Offsets snapshots.
type OffsetChange struct {
	// Step is the signed step of REALTIME beyond any time spent
	// suspended: Δ(REALTIME−MONOTONIC) − Δ(BOOTTIME−MONOTONIC). Positive
	// is forward. A leap second insertion is −1 s.
	Step time.Duration
	// Suspend is Δ(BOOTTIME−MONOTONIC): time spent asleep, which the
	// kernel adds to REALTIME and BOOTTIME on resume but not to MONOTONIC.
	Suspend time.Duration
	// Slewed is Δ(MONOTONIC−RAW): what slewing (tick, frequency,
	// singleshot, PLL) delivered between the snapshots, steps excluded.
	Slewed time.Duration
	// Elapsed is the RAW time between the snapshots (RAW stops in suspend).
	Elapsed time.Duration
	// Tol is the read uncertainty of Step and Suspend: REALTIME and
	// BOOTTIME are each read somewhere within a bracket, so their
	// difference is uncertain by a bracket width per snapshot, plus a
	// nanosecond of rounding.
	Tol time.Duration
}

// CompareOffsets returns the change from before to after.
func CompareOffsets(before, after Offsets) OffsetChange {
	suspend := time.Duration(0)
	if before.HasBoot && after.HasBoot {
		suspend = after.BootMinusMono - before.BootMinusMono
	}
	return OffsetChange{
		Step:    after.RealMinusMono - before.RealMinusMono - suspend,
		Suspend: suspend,
		Slewed:  (after.Mono - after.Raw) - (before.Mono - before.Raw),
		Elapsed: after.Raw - before.Raw,
		Tol:     before.Width + after.Width + 2*time.Nanosecond,
	}
}

// Stepped reports whether REALTIME was stepped beyond the read uncertainty.
func (c OffsetChange) Stepped() bool { return c.Step > c.Tol || c.Step < -c.Tol }

// Suspended reports whether the machine slept beyond the read uncertainty.
func (c OffsetChange) Suspended() bool { return c.Suspend > c.Tol }

// None reports whether neither a step nor a suspend shows.
func (c OffsetChange) None() bool { return !c.Stepped() && !c.Suspended() }

func (c OffsetChange) String() string {
	switch {
	case c.Stepped() && c.Suspended():
		return fmt.Sprintf("suspended %v and stepped %+v", c.Suspend, c.Step)
	case c.Stepped():
		return fmt.Sprintf("stepped %+v", c.Step)
	case c.Suspended():
		return fmt.Sprintf("suspended %v", c.Suspend)
	}
	return "no step"
}

// ClockChanged is posted by WatchChanges when the kernel reported that the
// clock was set, or when the offsets changed across a timer expiry.
type ClockChanged struct {
	Before, After Offsets
	Change        OffsetChange
	// Woke is MONOTONIC_RAW when the notification reached the watcher.
	Woke time.Duration
	// Canceled is true when the kernel's notification (ECANCELED) said so;
	// false when only the offsets, read at a routine re-arm, did.
	Canceled bool
}

// ClockWatchFailed is posted once when the watcher stops on an error; no
// ClockChanged follows it.
type ClockWatchFailed struct{ Err error }

// ArmHorizon is how far ahead WatchChanges arms its timer: it is meant to
// be cancelled, not to expire, and is re-armed if it does.
const ArmHorizon = 365 * 24 * time.Hour

// WatchChanges posts a ClockChanged into l every time the kernel of c says
// the clock was set, until stop is called; after stop returns nothing more
// is posted (events already posted stay queued). Each event compares the
// offsets read right after the previous arming with those read right
// after the re-arming, so every change is counted exactly once: a change
// between the wake and the re-arm is in the new reading, and one after
// the re-arm wakes the watcher again (possibly for a ClockChanged whose
// Change is None).
func WatchChanges(c Clock, l Loop) (stop func(), err error) {
	return watchChanges(c, l, ArmHorizon)
}

func watchChanges(c Clock, l Loop, horizon time.Duration) (func(), error) {
	o, ok := c.(CancelOnSetOpener)
	if !ok {
		return nil, fmt.Errorf("clock: %T cannot watch for clock changes", c)
	}
	fd, err := o.OpenCancelOnSet()
	if err != nil {
		return nil, err
	}
	if err := fd.Arm(c.Now().Add(horizon)); err != nil {
		fd.Close()
		return nil, err
	}
	base := ReadOffsets(c, 4)
	var mu sync.Mutex
	stopped := false
	done := make(chan struct{})
	post := func(ev any) bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return false
		}
		l.Post(ev)
		return true
	}
	l.Go(func() {
		defer close(done)
		for {
			canceled, err := fd.Wait()
			woke := c.Raw()
			if errors.Is(err, ErrClosed) {
				return
			}
			if err != nil {
				post(ClockWatchFailed{Err: fmt.Errorf("clock change watcher: %w", err)})
				return
			}
			if err := fd.Arm(c.Now().Add(horizon)); err != nil {
				post(ClockWatchFailed{Err: fmt.Errorf("clock change watcher: re-arming: %w", err)})
				return
			}
			// Two tries: the discipline undoes a step from this reading,
			// and under emulation each clock read costs microseconds.
			now := ReadOffsets(c, 2)
			ch := CompareOffsets(base, now)
			if canceled || !ch.None() {
				if !post(ClockChanged{Before: base, After: now, Change: ch, Woke: woke, Canceled: canceled}) {
					return
				}
			}
			base = now
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			mu.Lock()
			stopped = true
			mu.Unlock()
			fd.Close()
			<-done
		})
	}, nil
}
