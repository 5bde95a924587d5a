//go:build linux

package clock

import (
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
