package simclock

import (
	"context"
	"testing"
	"time"

	"slewd/clock"
)

// watchRun runs a process that watches for clock changes while op runs at
// 1 s of virtual time, and returns what it saw by 10 s, with RAW at op.
func watchRun(t *testing.T, cfg Config, op func(w *World) error) ([]clock.ClockChanged, time.Duration) {
	t.Helper()
	w := New(cfg)
	var got []clock.ClockChanged
	var raw0 time.Duration
	p := w.Spawn("watcher", false, func(ctx context.Context, p *Process) error {
		stop, err := clock.WatchChanges(p, p)
		if err != nil {
			return err
		}
		defer stop()
		for {
			ev, err := p.Wait(ctx, time.Hour)
			if err != nil {
				return nil
			}
			switch ev := ev.(type) {
			case clock.ClockChanged:
				got = append(got, ev)
			default:
				t.Errorf("posted %#v", ev)
			}
		}
	})
	w.At(time.Second, func() {
		w.mu.Lock()
		raw0 = seconds(w.k.raw)
		w.mu.Unlock()
		if err := op(w); err != nil {
			t.Errorf("op: %v", err)
		}
	})
	w.Run(10 * time.Second)
	w.Run(w.Now() + 10*time.Second) // past a suspend
	p.Terminate()
	w.Run(w.Now() + time.Second)
	if ok, err := p.Exited(); !ok || err != nil {
		t.Fatalf("watcher exited %v, %v", ok, err)
	}
	return got, raw0
}

func TestClockWasSet(t *testing.T) {
	const s = time.Second
	setTo := func(d time.Duration) func(w *World) error {
		return func(w *World) error {
			w.mu.Lock()
			now := w.k.realtime()
			w.mu.Unlock()
			return w.ClockSettime(now.Add(d))
		}
	}
	adj := func(tx clock.Timex) func(w *World) error {
		return func(w *World) error { _, err := w.Adjtimex(&tx); return err }
	}
	for _, tc := range []struct {
		name          string
		op            func(w *World) error
		notified      bool
		step, suspend time.Duration
	}{
		{"ADJ_SETOFFSET +1.5 s", func(w *World) error { return w.StepRealtime(1500 * time.Millisecond) }, true, 1500 * time.Millisecond, 0},
		{"ADJ_SETOFFSET -0.3 s", func(w *World) error { return w.StepRealtime(-300 * time.Millisecond) }, true, -300 * time.Millisecond, 0},
		{"ADJ_SETOFFSET 1 ns", func(w *World) error { return w.StepRealtime(1) }, true, 1, 0},
		{"ADJ_SETOFFSET 0: nothing changed, nobody woken", func(w *World) error { return w.StepRealtime(0) }, false, 0, 0},
		{"clock_settime +1 h", setTo(time.Hour), true, time.Hour, 0},
		{"clock_settime -10 s", setTo(-10 * s), true, -10 * s, 0},
		{"settimeofday +2 s", func(w *World) error {
			w.mu.Lock()
			now := w.k.realtime()
			w.mu.Unlock()
			// settimeofday keeps µs: the step loses REALTIME's sub-µs part.
			return w.Settimeofday(now.Truncate(time.Microsecond).Add(2 * s))
		}, true, 0, 0},
		{"suspend 1 h", func(w *World) error { w.Suspend(time.Hour); return nil }, true, 0, time.Hour},
		{"suspend 1 h, RTC short by 0.6 s", func(w *World) error { w.SuspendMismeasured(time.Hour, time.Hour-600*time.Millisecond); return nil },
			true, 0, time.Hour - 600*time.Millisecond},
		{"singleshot", adj(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 400000}), false, 0, 0},
		{"ADJ_TICK", adj(clock.Timex{Modes: clock.AdjTick, Tick: 9000}), false, 0, 0},
		{"ADJ_FREQUENCY", adj(clock.Timex{Modes: clock.AdjFrequency, Freq: 500 << 16}), false, 0, 0},
		{"ADJ_TAI", adj(clock.Timex{Modes: clock.AdjTAI, Constant: 37}), false, 0, 0},
		{"ADJ_STATUS", adj(clock.Timex{Modes: clock.AdjStatus, Status: 0}), false, 0, 0},
	} {
		got, raw0 := watchRun(t, Config{Seed: 3, Kernel: KernelConfig{Oscillator: Oscillator{DriftPPM: 40}}}, tc.op)
		if !tc.notified {
			if len(got) != 0 {
				t.Errorf("%s: notified %d times: %v", tc.name, len(got), got[0].Change)
			}
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: notified %d times, want once", tc.name, len(got))
			continue
		}
		ev := got[0]
		ch := ev.Change
		if !ev.Canceled || ch.Suspend != tc.suspend || (tc.step != 0 && ch.Step != tc.step) {
			t.Errorf("%s: %+v, want step %v suspend %v", tc.name, ch, tc.step, tc.suspend)
		}
		if tc.step == 0 && (ch.Step < -time.Microsecond || ch.Step > 2*s+time.Microsecond) {
			t.Errorf("%s: step %v", tc.name, ch.Step)
		}
		// In the syscall or at the resume: no virtual time passes.
		if ev.Woke != raw0 {
			t.Errorf("%s: woken %v after the operation", tc.name, ev.Woke-raw0)
		}
	}
}

// TestLeapSecondNotifies: STA_INS steps REALTIME back 1 s at midnight
// UTC, STA_DEL forward, and both wake the watcher at that instant.
func TestLeapSecondNotifies(t *testing.T) {
	for _, leap := range []int{1, -1} {
		// True time 23:59:57 at zero: the announcement at 1 s, midnight at 3 s.
		cfg := Config{Epoch: time.Date(2026, 12, 31, 23, 59, 57, 0, time.UTC), Kernel: KernelConfig{Uptime: 100 * time.Second}}
		got, raw0 := watchRun(t, cfg, func(w *World) error { return w.SetLeap(leap) })
		if len(got) != 1 {
			t.Fatalf("leap %+d: notified %d times", leap, len(got))
		}
		ch := got[0].Change
		if ch.Step != time.Duration(-leap)*time.Second || ch.Suspend != 0 {
			t.Errorf("leap %+d: %v", leap, ch)
		}
		// Delete: 23:59:59 is skipped, so midnight comes 1 s early.
		want := 2 * time.Second
		if leap < 0 {
			want = time.Second
		}
		if d := got[0].Woke - raw0; d < want-time.Millisecond || d > want+time.Millisecond {
			t.Errorf("leap %+d: woken %v after the announcement, want %v", leap, d, want)
		}
	}
}

// TestSuspendClocks: MONOTONIC and RAW stop, BOOTTIME and REALTIME go on,
// and a MONOTONIC timer due during the sleep fires after it.
func TestSuspendClocks(t *testing.T) {
	w := New(Config{})
	var fired time.Duration
	var before, after clock.Offsets
	var bootBefore, bootAfter time.Duration
	p := w.Spawn("sleeper", false, func(ctx context.Context, p *Process) error {
		before, bootBefore = clock.ReadOffsets(p, 1), p.Boot()
		clock.Sleep(ctx, p, 2*time.Second) // due at 2 s; suspended from 1 s to 1 h + 1 s
		fired = p.World().Now()
		after, bootAfter = clock.ReadOffsets(p, 1), p.Boot()
		return nil
	})
	w.At(time.Second, func() { w.Suspend(time.Hour) })
	w.Run(2 * time.Hour)
	if ok, _ := p.Exited(); !ok {
		t.Fatal("sleeper did not finish")
	}
	if fired != time.Hour+2*time.Second {
		t.Errorf("2 s timer fired at %v, want 1h0m2s", fired)
	}
	ch := clock.CompareOffsets(before, after)
	if ch.Suspend != time.Hour || ch.Stepped() || ch.Elapsed != 2*time.Second {
		t.Errorf("across the suspend: %v, elapsed %v", ch, ch.Elapsed)
	}
	if d := bootAfter - bootBefore; d != time.Hour+2*time.Second {
		t.Errorf("BOOTTIME advanced %v", d)
	}
	if e := w.ClockError(); e != 0 {
		t.Errorf("clock error %v after an exactly measured suspend", e)
	}
}

func TestSettimeNeedsCapability(t *testing.T) {
	w := New(Config{})
	var errs []error
	p := w.Spawn("user", false, func(ctx context.Context, p *Process) error {
		errs = append(errs, p.ClockSettime(time.Now()), p.Settimeofday(time.Now()))
		return nil
	})
	w.Run(time.Second)
	if ok, _ := p.Exited(); !ok || len(errs) != 2 || !clock.ErrPermission(errs[0]) || !clock.ErrPermission(errs[1]) {
		t.Errorf("unprivileged set: %v", errs)
	}
	// Below MONOTONIC (uptime 2 s): EINVAL, nothing changes.
	if err := w.ClockSettime(time.Unix(1, 0)); err == nil {
		t.Error("REALTIME set below MONOTONIC")
	}
	if e := w.ClockError(); e != 0 {
		t.Errorf("clock error %v", e)
	}
	// A set clears the NTP state like a step.
	w.Adjtimex(&clock.Timex{Modes: clock.AdjStatus | clock.AdjMaxError | clock.AdjTick, Status: 0, MaxError: 0, Tick: 9500})
	if err := w.ClockSettime(w.TrueTime().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	var tx clock.Timex
	w.Adjtimex(&tx)
	if tx.Status != clock.StaUnsync || tx.MaxError != clock.MaxErrorLimit || tx.Tick != 9500 {
		t.Errorf("after clock_settime: status %v maxerror %d tick %d", clock.StatusNames(tx.Status), tx.MaxError, tx.Tick)
	}
	if e := w.ClockError(); e < time.Minute-time.Microsecond || e > time.Minute+time.Microsecond {
		t.Errorf("clock error %v after setting it a minute ahead", e)
	}
}
