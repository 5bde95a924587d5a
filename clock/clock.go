// Package clock is the only part of slewd that touches the kernel clock.
//
// Everything else sees the Clock interface, so the same code runs against
// the real kernel (System) and against the simulated kernel clock in
// virtual time (package simclock), in the manner of chrony's sys_*.c
// drivers and clknetsim. Nothing in slewd outside this package makes a
// clock system call.
//
// Clock.Adjtimex is the raw adjtimex(2) primitive. The rest of slewd uses
// Driver instead, which speaks in units (ppm, µs of tick, time.Duration)
// and decoded status flags, writes several fields in one call where that
// matters, and returns what the kernel took; no ADJ_* or STA_* bit, and no
// STA_NANO unit conversion, is needed outside this package.
package clock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"time"
)

// Clock is the kernel clock: the three time bases slewd needs and the
// adjtimex interface that changes them.
type Clock interface {
	// Now reads CLOCK_REALTIME: the clock slewd disciplines.
	Now() time.Time
	// Raw reads CLOCK_MONOTONIC_RAW: the oscillator's own count, which no
	// adjustment touches. Slews are planned and measured against it.
	Raw() time.Duration
	// Mono reads CLOCK_MONOTONIC: never stepped, but slewed along with
	// CLOCK_REALTIME. Go timers run on it.
	Mono() time.Duration
	// Adjtimex is clock_adjtime(CLOCK_REALTIME, tx), which is adjtimex(2):
	// it applies tx.Modes and fills tx with the kernel's state.
	Adjtimex(tx *Timex) (State, error)
}

// Loop is what a single-goroutine event loop needs besides the clock:
// helpers that run concurrently and hand results back, and a wait on the
// clock's own time base. Real code gets Go's runtime (SystemLoop); the
// simulator runs the same loop in virtual time.
type Loop interface {
	// Go runs f concurrently. In a simulation f may block only on
	// simulated primitives (simulated sockets, this Loop).
	Go(f func())
	// Post hands ev to the goroutine in Wait. It never blocks.
	Post(ev any)
	// Wait returns the oldest posted event, or waits up to d on
	// CLOCK_MONOTONIC for one. It returns (nil, nil) when d has passed
	// and ctx.Err() when ctx is done.
	Wait(ctx context.Context, d time.Duration) (any, error)
}

// Sleep waits d on the loop's clock. It is for loops that post nothing
// (tools like `slewd wait`); an event arriving meanwhile is an error.
func Sleep(ctx context.Context, l Loop, d time.Duration) error {
	ev, err := l.Wait(ctx, d)
	if err != nil {
		return err
	}
	if ev != nil {
		return fmt.Errorf("clock.Sleep: unexpected event %T on a loop used for sleeping", ev)
	}
	return nil
}

// Reading is one bracketed read of CLOCK_REALTIME against
// CLOCK_MONOTONIC_RAW: RAW, REALTIME, RAW, keeping the narrowest of a few
// tries. Width bounds the error of relating the two clocks.
type Reading struct {
	Real  time.Time
	Raw   time.Duration // midpoint of the bracket
	Width time.Duration // RAW time between the two RAW reads
}

// RealMinusRaw is REALTIME minus RAW, the quantity that slewing changes and
// only slewing and stepping change.
func (r Reading) RealMinusRaw() time.Duration {
	return time.Duration(r.Real.UnixNano()) - r.Raw
}

// Read takes the narrowest of tries bracketed RAW/REALTIME/RAW readings
// (a host preemption between two reads costs 50-300 µs under emulation;
// the narrowest bracket avoids it).
func Read(c Clock, tries int) Reading {
	var best Reading
	for i := 0; i < max(tries, 1); i++ {
		a := c.Raw()
		real := c.Now()
		b := c.Raw()
		w := b - a
		if i == 0 || w < best.Width {
			best = Reading{Real: real, Raw: a + w/2, Width: w}
		}
	}
	return best
}

// AdjtimexError is a failed adjtimex call: what was attempted, the kernel's
// answer, and what to do about it.
type AdjtimexError struct {
	Modes uint32
	Err   error // a syscall.Errno
}

func (e *AdjtimexError) Error() string {
	msg := fmt.Sprintf("adjtimex(%s): %v", ModeString(e.Modes), e.Err)
	switch {
	case errors.Is(e.Err, syscall.EPERM):
		msg += ": changing the clock needs CAP_SYS_TIME: run as root or grant the capability" +
			" (in a container or user namespace the kernel refuses clock changes whatever the capability)"
	case errors.Is(e.Err, syscall.EINVAL):
		msg += ": the kernel rejected a value (tick outside 9000..11000, a bad ADJ_SETOFFSET time, or a step below CLOCK_MONOTONIC)"
	}
	return msg
}

func (e *AdjtimexError) Unwrap() error { return e.Err }

// ErrPermission reports whether err means the process may not change the clock.
func ErrPermission(err error) bool { return errors.Is(err, fs.ErrPermission) }

// CanAdjust tells whether this process may change the clock, by asking the
// kernel for a change it rejects either way: ADJ_TICK with tick 1 fails with
// EPERM without the capability and EINVAL with it, and changes nothing.
// A capability check alone is not enough: inside a user namespace the
// process holds CAP_SYS_TIME but every clock write fails.
func CanAdjust(c Clock) error {
	_, err := c.Adjtimex(&Timex{Modes: AdjTick, Tick: 1})
	if err == nil {
		return errors.New("adjtimex accepted tick 1: this kernel clock does not validate ADJ_TICK")
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}
