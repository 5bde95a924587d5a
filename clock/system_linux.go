//go:build linux

package clock

import (
	"context"
	"time"

	"golang.org/x/sys/unix"
)

// System is the real kernel clock of this machine.
type System struct{}

// Now reads CLOCK_REALTIME (through the vDSO). The monotonic reading Go
// attaches to time.Now is stripped: differences of REALTIME readings must
// be differences of REALTIME.
func (System) Now() time.Time { return time.Now().Round(0) }

// Raw reads CLOCK_MONOTONIC_RAW.
func (System) Raw() time.Duration { return gettime(unix.CLOCK_MONOTONIC_RAW) }

// Mono reads CLOCK_MONOTONIC.
func (System) Mono() time.Duration { return gettime(unix.CLOCK_MONOTONIC) }

func gettime(id int32) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(id, &ts); err != nil {
		// Every Linux since 2.6.28 has these clocks; without them nothing works.
		panic("clock_gettime: " + err.Error())
	}
	return time.Duration(ts.Nano())
}

// Adjtimex calls clock_adjtime(CLOCK_REALTIME, tx), which is adjtimex(2).
func (System) Adjtimex(tx *Timex) (State, error) {
	var u unix.Timex
	toUnix(tx, &u)
	state, err := unix.ClockAdjtime(unix.CLOCK_REALTIME, &u)
	fromUnix(&u, tx)
	if err != nil {
		return State(state), &AdjtimexError{Modes: tx.Modes, Err: err}
	}
	return State(state), nil
}

// unix.Timex field types differ by architecture (int32 on 32-bit arm);
// set converts without caring which.
func set[T ~int32 | ~int64](p *T, v int64) { *p = T(v) }

func toUnix(t *Timex, u *unix.Timex) {
	u.Modes = t.Modes
	set(&u.Offset, t.Offset)
	set(&u.Freq, t.Freq)
	set(&u.Maxerror, t.MaxError)
	set(&u.Esterror, t.EstError)
	u.Status = t.Status
	set(&u.Constant, t.Constant)
	set(&u.Time.Sec, t.Time.Sec)
	set(&u.Time.Usec, t.Time.Usec)
	set(&u.Tick, t.Tick)
	u.Tai = t.TAI
}

func fromUnix(u *unix.Timex, t *Timex) {
	modes := t.Modes
	*t = Timex{
		Modes:     modes,
		Offset:    int64(u.Offset),
		Freq:      int64(u.Freq),
		MaxError:  int64(u.Maxerror),
		EstError:  int64(u.Esterror),
		Status:    u.Status,
		Constant:  int64(u.Constant),
		Precision: int64(u.Precision),
		Tolerance: int64(u.Tolerance),
		Time:      Timeval{Sec: int64(u.Time.Sec), Usec: int64(u.Time.Usec)},
		Tick:      int64(u.Tick),
		PPSFreq:   int64(u.Ppsfreq),
		Jitter:    int64(u.Jitter),
		Shift:     u.Shift,
		Stabil:    int64(u.Stabil),
		JitCnt:    int64(u.Jitcnt),
		CalCnt:    int64(u.Calcnt),
		ErrCnt:    int64(u.Errcnt),
		StbCnt:    int64(u.Stbcnt),
		TAI:       u.Tai,
	}
}

// SystemLoop is Loop on Go's runtime; its timers run on CLOCK_MONOTONIC.
type SystemLoop struct {
	events chan any
}

// NewSystemLoop returns a Loop whose Post never blocks for up to backlog
// queued events.
func NewSystemLoop(backlog int) *SystemLoop {
	return &SystemLoop{events: make(chan any, backlog)}
}

// Go runs f in a new goroutine.
func (l *SystemLoop) Go(f func()) { go f() }

// Post queues ev for Wait. If the queue is full the event is dropped rather
// than blocking a helper forever; size the backlog for the helpers you run.
func (l *SystemLoop) Post(ev any) {
	select {
	case l.events <- ev:
	default:
	}
}

// Wait returns the oldest posted event or waits up to d for one.
func (l *SystemLoop) Wait(ctx context.Context, d time.Duration) (any, error) {
	select {
	case ev := <-l.events:
		return ev, nil
	default:
	}
	if d <= 0 {
		return nil, ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case ev := <-l.events:
		return ev, nil
	case <-t.C:
		return nil, ctx.Err()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
