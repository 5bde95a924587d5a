package conformance

import (
	"errors"
	"fmt"
	"time"

	"slewd/clock"
)

// The clock_was_set rows: which operations make the kernel notify a
// CLOCK_REALTIME timerfd armed with TFD_TIMER_CANCEL_ON_SET
// (clock.WatchChanges), what step the watcher then measures from
// REALTIME−MONOTONIC, and how long after the operation the notification
// came. On the real kernel a syscall notifies from within the call and a
// leap second from a workqueue after the tick that applied it; the
// simulator notifies at the same virtual instant.

// NotifyLatencyTol is how much later than the simulator (which takes no
// virtual time) the kernel may deliver a notification: a leap second is
// applied at the first accumulation interval past the second edge and
// notified from a workqueue, and a guest under emulation is slow.
const NotifyLatencyTol = 20 * time.Millisecond

// quiet is how long a row waits for a notification that should not come:
// the syscall paths notify before the call returns.
const quiet = 300 * time.Millisecond

// ChangeScenarios are the clock_was_set rows, in the order they run.
func ChangeScenarios() []Scenario {
	return []Scenario{
		setRow("clock_was_set: ADJ_SETOFFSET +1.5 s", 1500*time.Millisecond, TolPhase, stepOp(1500*time.Millisecond)),
		setRow("clock_was_set: ADJ_SETOFFSET -0.25 s", -250*time.Millisecond, TolPhase, stepOp(-250*time.Millisecond)),
		setRow("clock_was_set: ADJ_SETOFFSET 1 µs", time.Microsecond, TolPhase, stepOp(time.Microsecond)),
		quietRow("clock_was_set: ADJ_SETOFFSET 0", stepOp(0)),
		// These read REALTIME and then set it: what passes in between is
		// lost, a few µs, more if the guest is preempted; settimeofday
		// also truncates to the µs.
		setRow("clock_was_set: clock_settime +2 s", 2*time.Second, 20*TolPhase, func(s *Session) error {
			return s.setter().ClockSettime(s.c.Now().Add(2 * time.Second))
		}),
		setRow("clock_was_set: settimeofday -2 s", -2*time.Second, 20*TolPhase+1, func(s *Session) error {
			return s.setter().Settimeofday(s.c.Now().Add(-2 * time.Second))
		}),
		quietRow("clock_was_set: singleshot +100 ms", adjOp(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 100000})),
		quietRow("clock_was_set: ADJ_TICK 9000", adjOp(clock.Timex{Modes: clock.AdjTick, Tick: 9000})),
		quietRow("clock_was_set: ADJ_FREQUENCY +500 ppm", adjOp(clock.Timex{Modes: clock.AdjFrequency, Freq: 500 << 16})),
		quietRow("clock_was_set: ADJ_TAI 37", func(s *Session) error {
			if err := adjOp(clock.Timex{Modes: clock.AdjTAI, Constant: 37})(s); err != nil {
				return err
			}
			return adjOp(clock.Timex{Modes: clock.AdjTAI, Constant: 0})(s)
		}),
		quietRow("clock_was_set: PLL offset 0.2 s", func(s *Session) error {
			if _, _, err := s.Adj(clock.Timex{Modes: clock.AdjStatus | clock.AdjNano, Status: clock.StaPLL}); err != nil {
				return err
			}
			_, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffset, Offset: 2e8})
			return err
		}),
		leapRow("clock_was_set: leap second inserted", 1),
		leapRow("clock_was_set: leap second deleted", -1),
	}
}

func (s *Session) setter() clock.RealtimeSetter {
	if rs, ok := s.c.(clock.RealtimeSetter); ok {
		return rs
	}
	return nil
}

func stepOp(d time.Duration) func(s *Session) error {
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	return adjOp(clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: sec, Usec: ns}})
}

func adjOp(tx clock.Timex) func(s *Session) error {
	return func(s *Session) error { _, _, err := s.Adj(tx); return err }
}

// watch starts the watcher, runs op, collects the notifications for
// window of MONOTONIC and stops the watcher. It returns the events and
// RAW just before op.
func (s *Session) watch(op func(s *Session) error, window time.Duration) ([]clock.ClockChanged, time.Duration, error) {
	if _, ok := s.c.(clock.CancelOnSetOpener); !ok {
		return nil, 0, fmt.Errorf("%T has no cancel-on-set timer", s.c)
	}
	if s.setter() == nil {
		return nil, 0, fmt.Errorf("%T cannot set the clock", s.c)
	}
	stop, err := clock.WatchChanges(s.c, s.l)
	if err != nil {
		return nil, 0, err
	}
	raw0 := s.c.Raw()
	if err := op(s); err != nil {
		stop()
		return nil, raw0, err
	}
	var got []clock.ClockChanged
	end := s.c.Mono() + window
	collect := func(ev any) error {
		switch ev := ev.(type) {
		case clock.ClockChanged:
			got = append(got, ev)
		case clock.ClockWatchFailed:
			return ev.Err
		case nil:
		default:
			return fmt.Errorf("unexpected event %T", ev)
		}
		return nil
	}
	for {
		left := end - s.c.Mono()
		if left <= 0 {
			break
		}
		ev, err := s.l.Wait(s.ctx, left)
		if err != nil {
			stop()
			return nil, raw0, err
		}
		if err := collect(ev); err != nil {
			stop()
			return nil, raw0, err
		}
	}
	stop()
	for { // what was posted before stop
		ev, _ := s.l.Wait(s.ctx, 0)
		if ev == nil {
			break
		}
		if err := collect(ev); err != nil {
			return nil, raw0, err
		}
	}
	return got, raw0, nil
}

// undo steps REALTIME back to where it was relative to MONOTONIC, so that
// the guest's wall clock stays right for whatever runs next.
func (s *Session) undo(orig clock.Offsets) error {
	d := orig.RealMinusMono - clock.ReadOffsets(s.c, Reads).RealMinusMono
	if d == 0 {
		return nil
	}
	return stepOp(d)(s)
}

// record adds the metrics of a row that must notify once.
func (s *Session) record(got []clock.ClockChanged, from time.Duration, step time.Duration, stepTolUs float64) {
	s.Expect("notifications", "count", float64(len(got)), TolExact, 1, 0)
	var seen time.Duration
	for _, ev := range got {
		seen += ev.Change.Step
	}
	s.Expect("step seen", "µs", us(seen), stepTolUs, us(step), stepTolUs)
	if len(got) > 0 {
		lat := got[0].Woke - from
		s.Expect("latency", "µs", us(lat), us(NotifyLatencyTol), 0, us(NotifyLatencyTol))
	}
}

func setRow(name string, step time.Duration, stepTolUs float64, op func(s *Session) error) Scenario {
	return Scenario{name, func(s *Session) error {
		orig := clock.ReadOffsets(s.c, Reads)
		got, raw0, err := s.watch(op, quiet)
		if err != nil {
			return err
		}
		s.record(got, raw0, step, stepTolUs)
		return s.undo(orig)
	}}
}

func quietRow(name string, op func(s *Session) error) Scenario {
	return Scenario{name, func(s *Session) error {
		got, _, err := s.watch(op, quiet)
		if err != nil {
			return err
		}
		s.Expect("notifications", "count", float64(len(got)), TolExact, 0, 0)
		return nil
	}}
}

// leapRow sets REALTIME to 23:59:57.5 UTC, announces a leap second and
// waits past midnight: an insertion repeats 23:59:59 (REALTIME steps back
// at 00:00:00, 2.5 s later), a deletion skips it (forward at 23:59:59,
// 1.5 s later).
func leapRow(name string, leap int) Scenario {
	return Scenario{name, func(s *Session) error {
		orig := clock.ReadOffsets(s.c, Reads)
		rs := s.setter()
		if rs == nil {
			return errors.New("cannot set the clock")
		}
		now := s.c.Now().UTC()
		midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, time.UTC)
		if err := rs.ClockSettime(midnight.Add(-2500 * time.Millisecond)); err != nil {
			return err
		}
		status, at := clock.StaIns, midnight
		if leap < 0 {
			status, at = clock.StaDel, midnight.Add(-time.Second)
		}
		var edge time.Duration // RAW at the leap
		got, _, err := s.watch(func(s *Session) error {
			// RAW runs at REALTIME's rate here (tick and frequency nominal).
			r := s.Read()
			edge = r.Raw + at.Sub(r.Real)
			_, _, err := s.Adj(clock.Timex{Modes: clock.AdjStatus, Status: status | clock.StaUnsync})
			return err
		}, at.Sub(s.c.Now())+500*time.Millisecond)
		if err != nil {
			return err
		}
		s.record(got, edge, time.Duration(-leap)*time.Second, TolPhase)
		if _, _, err := s.Adj(clock.Timex{Modes: clock.AdjStatus, Status: clock.StaUnsync}); err != nil {
			return err
		}
		return s.undo(orig)
	}}
}
