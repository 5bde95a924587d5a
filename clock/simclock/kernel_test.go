package simclock

import (
	"context"
	"errors"
	"math"
	"syscall"
	"testing"
	"time"

	"slewd/clock"
)

// run spawns one process that runs f and runs the world until it is done.
func run(t *testing.T, w *World, capSysTime bool, f func(ctx context.Context, p *Process) error) {
	t.Helper()
	p := w.Spawn("test", capSysTime, f)
	w.Run(w.Now() + 24*time.Hour)
	done, err := p.Exited()
	if !done {
		t.Fatal("process did not finish")
	}
	if err != nil {
		t.Fatal(err)
	}
}

func sleep(ctx context.Context, p *Process, d time.Duration) {
	if err := clock.Sleep(ctx, p, d); err != nil {
		panic(err)
	}
}

func mustAdj(t *testing.T, c clock.Clock, tx clock.Timex) clock.Timex {
	t.Helper()
	if _, err := c.Adjtimex(&tx); err != nil {
		t.Fatalf("adjtimex %s: %v", clock.ModeString(tx.Modes), err)
	}
	return tx
}

func read(c clock.Clock) clock.Timex {
	var tx clock.Timex
	c.Adjtimex(&tx)
	return tx
}

// gain is how much REALTIME gained on RAW over d of RAW, in µs.
func gain(ctx context.Context, p *Process, d time.Duration) float64 {
	a := clock.Read(p, 1)
	sleep(ctx, p, d)
	b := clock.Read(p, 1)
	return float64((b.RealMinusRaw() - a.RealMinusRaw()).Nanoseconds()) / 1e3
}

func TestTickAndFrequencyRates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tx      clock.Timex
		wantPPM float64
	}{
		{"tick 9000", clock.Timex{Modes: clock.AdjTick, Tick: 9000}, -100000},
		{"tick 11000", clock.Timex{Modes: clock.AdjTick, Tick: 11000}, 100000},
		{"freq +500", clock.Timex{Modes: clock.AdjFrequency, Freq: 500 << 16}, 500},
		{"freq -500", clock.Timex{Modes: clock.AdjFrequency, Freq: -500 << 16}, -500},
		{"freq 600 clamped", clock.Timex{Modes: clock.AdjFrequency, Freq: 600 << 16}, 500},
		{"tick and freq add", clock.Timex{Modes: clock.AdjTick | clock.AdjFrequency, Tick: 9000, Freq: -500 << 16}, -100500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A drifting, wandering oscillator must not change rates measured against RAW.
			w := New(Config{Seed: 1, Kernel: KernelConfig{Oscillator: Oscillator{DriftPPM: 37, Wander: 1e-8}}})
			run(t, w, true, func(ctx context.Context, p *Process) error {
				mustAdj(t, p, tc.tx)
				got := gain(ctx, p, 10*time.Second) / 10 // µs per s = ppm
				// Sleep runs on MONOTONIC, so 10 s of it is 10/(1+rate) of RAW.
				got *= 1 + tc.wantPPM/1e6
				if math.Abs(got-tc.wantPPM) > 0.01 {
					t.Errorf("rate %.4f ppm, want %v", got, tc.wantPPM)
				}
				return nil
			})
		})
	}
}

func TestFrequencyReadback(t *testing.T) {
	w := New(Config{})
	for _, ppm := range []float64{0, 1, -1, 12.345, 499.99, -250.5} {
		tx := mustAdjWorld(t, w, clock.Timex{Modes: clock.AdjFrequency, Freq: clock.PPMToFreq(ppm)})
		if d := tx.Freq - clock.PPMToFreq(ppm); d < -1 || d > 1 {
			t.Errorf("freq %v ppm read back as %d, want %d", ppm, tx.Freq, clock.PPMToFreq(ppm))
		}
	}
	tx := mustAdjWorld(t, w, clock.Timex{Modes: clock.AdjFrequency, Freq: 600 << 16})
	if tx.Freq != 500<<16 {
		t.Errorf("600 ppm read back as %v ppm, want clamped to 500", clock.FreqToPPM(tx.Freq))
	}
	if tx.Tolerance != 500<<16 {
		t.Errorf("tolerance %d", tx.Tolerance)
	}
}

func mustAdjWorld(t *testing.T, w *World, tx clock.Timex) clock.Timex {
	t.Helper()
	if _, err := w.Adjtimex(&tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestValidation(t *testing.T) {
	w := New(Config{})
	for _, tc := range []struct {
		name string
		cap  bool
		tx   clock.Timex
		want error
	}{
		{"tick 8999", true, clock.Timex{Modes: clock.AdjTick, Tick: 8999}, syscall.EINVAL},
		{"tick 11001", true, clock.Timex{Modes: clock.AdjTick, Tick: 11001}, syscall.EINVAL},
		{"tick 9000", true, clock.Timex{Modes: clock.AdjTick, Tick: 9000}, nil},
		{"read unprivileged", false, clock.Timex{}, nil},
		{"tick unprivileged", false, clock.Timex{Modes: clock.AdjTick, Tick: 10000}, syscall.EPERM},
		{"probe unprivileged", false, clock.Timex{Modes: clock.AdjTick, Tick: 1}, syscall.EPERM},
		{"probe privileged", true, clock.Timex{Modes: clock.AdjTick, Tick: 1}, syscall.EINVAL},
		{"singleshot read unprivileged", false, clock.Timex{Modes: clock.AdjOffsetSSRead}, nil},
		{"singleshot unprivileged", false, clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 5}, syscall.EPERM},
		{"setoffset negative usec", true, clock.Timex{Modes: clock.AdjSetOffset, Time: clock.Timeval{Sec: 1, Usec: -1}}, syscall.EINVAL},
		{"setoffset usec 1e6", true, clock.Timex{Modes: clock.AdjSetOffset, Time: clock.Timeval{Usec: 1e6}}, syscall.EINVAL},
		{"setoffset nsec 1e6 ok", true, clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Usec: 1e6}}, nil},
		{"setoffset below monotonic", true, clock.Timex{Modes: clock.AdjSetOffset, Time: clock.Timeval{Sec: -3e9}}, syscall.EINVAL},
		{"freq overflow", true, clock.Timex{Modes: clock.AdjFrequency, Freq: math.MaxInt64 / 1000}, syscall.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run(t, w, tc.cap, func(ctx context.Context, p *Process) error {
				tx := tc.tx
				_, err := p.Adjtimex(&tx)
				if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
					t.Errorf("got %v, want %v", err, tc.want)
				}
				return nil
			})
		})
	}
	w.Adjtimex(&clock.Timex{Modes: clock.AdjTick, Tick: clock.NominalTick})
}

func TestCanAdjust(t *testing.T) {
	w := New(Config{})
	run(t, w, false, func(ctx context.Context, p *Process) error {
		if err := clock.CanAdjust(p); !clock.ErrPermission(err) {
			t.Errorf("unprivileged: %v", err)
		}
		return nil
	})
	run(t, w, true, func(ctx context.Context, p *Process) error {
		if err := clock.CanAdjust(p); err != nil {
			t.Errorf("privileged: %v", err)
		}
		return nil
	})
	if tx := read(procless{w}); tx.Tick != clock.NominalTick {
		t.Errorf("probe changed tick to %d", tx.Tick)
	}
}

type procless struct{ w *World }

func (p procless) Now() time.Time      { return time.Time{} }
func (p procless) Raw() time.Duration  { return 0 }
func (p procless) Mono() time.Duration { return 0 }
func (p procless) Adjtimex(tx *clock.Timex) (clock.State, error) {
	return p.w.Adjtimex(tx)
}

func TestSingleshot(t *testing.T) {
	w := New(Config{})
	run(t, w, true, func(ctx context.Context, p *Process) error {
		// 2000 µs at 500 µs/s: 4 s, then it stops by itself at exactly zero.
		old := mustAdj(t, p, clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 2000})
		if old.Offset != 0 {
			t.Errorf("previous remainder %d", old.Offset)
		}
		// Each 500 µs chunk runs for one REALTIME second, which at 1.0005
		// is 1/1.0005 s of RAW: 4 × 499.75 µs against RAW.
		if g := gain(ctx, p, 10*time.Second); math.Abs(g-4*500/1.0005) > 0.01 {
			t.Errorf("delivered %.3f µs, want 1999.0", g)
		}
		if r := mustAdj(t, p, clock.Timex{Modes: clock.AdjOffsetSSRead}); r.Offset != 0 {
			t.Errorf("remainder %d after completion", r.Offset)
		}
		// A new value replaces the old and returns the remainder.
		mustAdj(t, p, clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: -1000000})
		sleep(ctx, p, 2200*time.Millisecond)
		r := mustAdj(t, p, clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 0})
		if r.Offset > -998500 || r.Offset < -999500 {
			t.Errorf("remainder after ~2 s: %d", r.Offset)
		}
		return nil
	})
}

func TestSetOffset(t *testing.T) {
	w := New(Config{})
	rec := NewRecorder(w)
	run(t, w, true, func(ctx context.Context, p *Process) error {
		mustAdj(t, p, clock.Timex{Modes: clock.AdjTick | clock.AdjFrequency, Tick: 10010, Freq: 7 << 16})
		mustAdj(t, p, clock.Timex{Modes: clock.AdjStatus | clock.AdjNano | clock.AdjMaxError, Status: clock.StaPLL, MaxError: 100})
		mustAdj(t, p, clock.Timex{Modes: clock.AdjOffset | clock.AdjNano, Offset: 1e8})
		mustAdj(t, p, clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 5000})
		mono0, real0 := p.Mono(), p.Now()
		mustAdj(t, p, clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: -2, Usec: 5e8}}) // -1.5 s
		if d := p.Now().Sub(real0) - (p.Mono() - mono0); d != -1500*time.Millisecond {
			t.Errorf("stepped by %v", d)
		}
		tx := read(p)
		if tx.Status&clock.StaUnsync == 0 || tx.MaxError != clock.MaxErrorLimit || tx.EstError != clock.MaxErrorLimit {
			t.Errorf("after step: status %v maxerror %d", clock.StatusNames(tx.Status), tx.MaxError)
		}
		if tx.Tick != 10010 || tx.Freq != 7<<16 {
			t.Errorf("step lost tick/freq: %d %d", tx.Tick, tx.Freq)
		}
		if tx.Offset != 0 {
			t.Errorf("PLL offset %d survived the step", tx.Offset)
		}
		if ss := mustAdj(t, p, clock.Timex{Modes: clock.AdjOffsetSSRead}); ss.Offset != 0 {
			t.Errorf("singleshot %d survived the step", ss.Offset)
		}
		return nil
	})
	if n, largest := rec.Backward(); n != 1 || math.Abs(largest-1.5) > 1e-9 {
		t.Errorf("recorder: %d backward, largest %v", n, largest)
	}
}

func TestPLL(t *testing.T) {
	for _, hold := range []bool{false, true} {
		w := New(Config{})
		run(t, w, true, func(ctx context.Context, p *Process) error {
			st := clock.StaPLL
			if hold {
				st |= clock.StaFreqHold
			}
			mustAdj(t, p, clock.Timex{Modes: clock.AdjStatus | clock.AdjNano | clock.AdjTimeConst, Status: st, Constant: 0})
			sleep(ctx, p, 3*time.Second)
			tx := mustAdj(t, p, clock.Timex{Modes: clock.AdjOffset, Offset: 3e8})
			if tx.Offset != 3e8 {
				t.Errorf("offset readback %d", tx.Offset)
			}
			// tc 0: a quarter of what is left goes each second.
			prev := tx.Offset
			for i := 0; i < 4; i++ {
				sleep(ctx, p, time.Second)
				cur := read(p).Offset
				if want := prev - prev/4; cur != want && cur != prev {
					t.Errorf("second %d: offset %d, want %d", i, cur, want)
				}
				prev = cur
			}
			f := read(p).Freq
			if hold && f != 0 {
				t.Errorf("FREQHOLD: freq changed to %v ppm", clock.FreqToPPM(f))
			}
			if !hold && f == 0 {
				t.Error("PLL without FREQHOLD left the frequency alone")
			}
			return nil
		})
	}
}

func TestStatusAndMaxError(t *testing.T) {
	w := New(Config{})
	run(t, w, true, func(ctx context.Context, p *Process) error {
		tx := read(p)
		if st, _ := p.Adjtimex(&clock.Timex{}); st != clock.TimeError || tx.Status != clock.StaUnsync {
			t.Errorf("boot state %v status %v", st, clock.StatusNames(tx.Status))
		}
		mustAdj(t, p, clock.Timex{Modes: clock.AdjStatus | clock.AdjMaxError | clock.AdjEstError, Status: clock.StaPLL | clock.StaFreqHold, MaxError: 0, EstError: 20})
		st, _ := p.Adjtimex(&tx)
		if st != clock.TimeOK || tx.Status != clock.StaPLL|clock.StaFreqHold || tx.EstError != 20 {
			t.Errorf("state %v status %v esterror %d", st, clock.StatusNames(tx.Status), tx.EstError)
		}
		sleep(ctx, p, 10*time.Second)
		if tx = read(p); tx.MaxError < 4500 || tx.MaxError > 5500 {
			t.Errorf("maxerror after 10 s: %d µs, want about 5000", tx.MaxError)
		}
		// Turning STA_PLL off resets the state and the writable bits.
		mustAdj(t, p, clock.Timex{Modes: clock.AdjStatus, Status: 0})
		if tx = read(p); tx.Status != 0 {
			t.Errorf("status after PLL off: %v", clock.StatusNames(tx.Status))
		}
		// maxerror reaching 16 s sets STA_UNSYNC by itself: 32000 s from 0.
		mustAdj(t, p, clock.Timex{Modes: clock.AdjMaxError, MaxError: 0})
		sleep(ctx, p, 31990*time.Second)
		if st, _ := p.Adjtimex(&tx); st != clock.TimeOK {
			t.Errorf("unsynchronized too early: maxerror %d", tx.MaxError)
		}
		sleep(ctx, p, 20*time.Second)
		if st, _ := p.Adjtimex(&tx); st != clock.TimeError || tx.Status&clock.StaUnsync == 0 || tx.MaxError != clock.MaxErrorLimit {
			t.Errorf("after 32010 s: state %v maxerror %d", st, tx.MaxError)
		}
		return nil
	})
}

func TestLeapSecondInsertGoesBack(t *testing.T) {
	w := New(Config{Epoch: time.Date(2026, 6, 30, 23, 59, 50, 0, time.UTC)})
	rec := NewRecorder(w)
	w.Adjtimex(&clock.Timex{Modes: clock.AdjStatus, Status: clock.StaIns})
	w.Run(20 * time.Second)
	if n, largest := rec.Backward(); n != 1 || largest != 1 {
		t.Errorf("backward %d, largest %v", n, largest)
	}
	if e := w.ClockError(); e.Round(time.Millisecond) != -time.Second {
		t.Errorf("error after the leap %v", e)
	}
}

func TestTimersRunOnSlewedMonotonic(t *testing.T) {
	w := New(Config{})
	w.Adjtimex(&clock.Timex{Modes: clock.AdjTick, Tick: 9000})
	run(t, w, true, func(ctx context.Context, p *Process) error {
		t0 := w.Now()
		sleep(ctx, p, 9*time.Second)
		// CLOCK_MONOTONIC runs 10 % slow, so 9 s of it take 10 s.
		if d := w.Now() - t0; (d - 10*time.Second).Abs() > time.Microsecond {
			t.Errorf("9 s sleep took %v of true time", d)
		}
		return nil
	})
}

func TestOscillatorDriftMovesRawNotRates(t *testing.T) {
	w := New(Config{Kernel: KernelConfig{Oscillator: Oscillator{DriftPPM: 50}}})
	e0 := w.ClockErrorSeconds()
	w.Run(1000 * time.Second)
	if d := (w.ClockErrorSeconds() - e0) * 1e6; math.Abs(d-50000) > 0.01 {
		t.Errorf("clock gained %.3f µs in 1000 s with a 50 ppm oscillator, want 50000", d)
	}
}

func TestKillKeepsKernelStateRebootResets(t *testing.T) {
	w := New(Config{})
	p := w.Spawn("slewing", true, func(ctx context.Context, p *Process) error {
		mustAdj(t, p, clock.Timex{Modes: clock.AdjTick, Tick: 11000})
		_, err := p.Wait(ctx, time.Hour)
		// Never reached after Kill: a killed process runs no cleanup.
		p.Adjtimex(&clock.Timex{Modes: clock.AdjTick, Tick: clock.NominalTick})
		return err
	})
	w.At(10*time.Second, p.Kill)
	w.Run(2 * time.Hour)
	if tx := read(procless{w}); tx.Tick != 11000 {
		t.Errorf("tick %d after kill, want it left at 11000", tx.Tick)
	}
	if p.Alive() {
		t.Error("killed process alive")
	}
	id := w.BootID()
	w.Reboot(time.Second, 3*time.Second)
	if tx := read(procless{w}); tx.Tick != clock.NominalTick || tx.Freq != 0 || tx.Status != clock.StaUnsync {
		t.Errorf("after reboot: tick %d freq %d status %v", tx.Tick, tx.Freq, clock.StatusNames(tx.Status))
	}
	if w.BootID() == id {
		t.Error("boot id unchanged")
	}
	if e := w.ClockError(); e != 3*time.Second {
		t.Errorf("clock error after reboot %v", e)
	}
}

func TestTerminateWakesWait(t *testing.T) {
	w := New(Config{})
	p := w.Spawn("d", true, func(ctx context.Context, p *Process) error {
		_, err := p.Wait(ctx, time.Hour)
		return err
	})
	w.At(5*time.Second, p.Terminate)
	w.Run(10 * time.Second)
	if done, err := p.Exited(); !done || !errors.Is(err, context.Canceled) {
		t.Errorf("exited %v err %v", done, err)
	}
}

func TestRTCWritesOnlyWhenSynchronized(t *testing.T) {
	w := New(Config{})
	rec := NewRecorder(w)
	w.Run(30 * time.Minute)
	if len(rec.RTCWrites) != 0 {
		t.Fatalf("RTC written while unsynchronized: %v", rec.RTCWrites)
	}
	w.Adjtimex(&clock.Timex{Modes: clock.AdjStatus | clock.AdjMaxError, Status: 0, MaxError: 0})
	w.Run(w.Now() + 23*time.Minute)
	if len(rec.RTCWrites) != 3 {
		t.Errorf("RTC writes in 23 min of sync: %d, want 3 (at once, +11, +22 min)", len(rec.RTCWrites))
	}
}

func TestDeterministic(t *testing.T) {
	final := func() float64 {
		w := New(Config{Seed: 42, Kernel: KernelConfig{Oscillator: Oscillator{DriftPPM: 3, Wander: 1e-7}}})
		w.Run(time.Hour)
		return w.ClockErrorSeconds()
	}
	if a, b := final(), final(); a != b {
		t.Errorf("same seed, different worlds: %v vs %v", a, b)
	}
}
