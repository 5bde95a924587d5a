package adjtime

import (
	"context"
	"io"
	"log/slog"
	"math"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
)

// errorTrace follows REALTIME − true time on every segment of the
// simulated kernel: when it first stays within 1 ms, how far it went past
// zero, and the extreme rates.
type errorTrace struct {
	e0          float64
	settledAt   float64 // true time since which |error| ≤ 1 ms, -1 if not now
	overshoot   float64 // largest error on the far side of zero
	maxRatePPM  float64
	lastRatePPM float64
}

func newTrace(w *simclock.World) *errorTrace {
	tr := &errorTrace{e0: w.ClockErrorSeconds(), settledAt: -1}
	w.Observe(tr)
	return tr
}

func (tr *errorTrace) Segment(t0, t1, e0, e1, r float64) {
	tr.maxRatePPM = max(tr.maxRatePPM, math.Abs(r))
	tr.lastRatePPM = r
	for _, e := range []float64{e0, e1} {
		if math.Signbit(e) != math.Signbit(tr.e0) {
			tr.overshoot = max(tr.overshoot, math.Abs(e))
		}
	}
	if math.Abs(e1) <= 1e-3 {
		if tr.settledAt < 0 {
			// The error is linear within a segment: find where it crossed 1 ms.
			tc := t0
			if math.Abs(e0) > 1e-3 {
				tc = t0 + (t1-t0)*(math.Abs(e0)-1e-3)/(math.Abs(e0)-math.Abs(e1))
			}
			tr.settledAt = tc
		}
	} else {
		tr.settledAt = -1
	}
}
func (tr *errorTrace) Jump(t, d float64, why string) {}
func (tr *errorTrace) RTCWrite(t, e float64)         {}

// exactTarget is what a perfect estimate would say: true time minus RAW now,
// and the rate of true time against RAW.
func exactTarget(w *simclock.World, p *simclock.Process) (raw, phase time.Duration, freqPPM float64) {
	rd := clock.Read(p, 1)
	d := w.FrequencyError()
	return rd.Raw, time.Duration(w.TrueTime().UnixNano()) - rd.Raw, -d / (1 + d) * 1e6
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// slewLoop runs a slewer against the exact target until ctx ends.
func slewLoop(w *simclock.World, cfg SlewerConfig, ready func(*Slewer)) func(ctx context.Context, p *simclock.Process) error {
	return func(ctx context.Context, p *simclock.Process) error {
		s := NewSlewer(p, cfg, quiet())
		raw, phase, f := exactTarget(w, p)
		if err := s.TakeControl(f); err != nil {
			return err
		}
		s.SetTarget(raw, phase, f, 0, 0)
		if ready != nil {
			ready(s)
		}
		for {
			next, err := s.Control()
			if err != nil {
				return err
			}
			for now := p.Raw(); now < next; now = p.Raw() {
				if _, err := p.Wait(ctx, EarlyWait(next-now)); err != nil {
					return s.Release()
				}
			}
		}
	}
}

// kernelModes are the ways a kernel may time its per-second chunks:
// exactly at the second (the simulator's default), at the first 4 ms
// accumulation interval after it (a busy CPU), or at the next wakeup (an
// idle tickless CPU, woken at the latest after MaxIdle).
var kernelModes = []struct {
	name string
	set  func(*simclock.KernelConfig)
}{
	{"exact", func(*simclock.KernelConfig) {}},
	{"grid", func(k *simclock.KernelConfig) { k.AccumulationGrid = true }},
	{"tickless", func(k *simclock.KernelConfig) { k.Tickless, k.MaxIdle = true, 3*time.Second }},
}

func TestSlewConvergesAtKernelRate(t *testing.T) {
	for _, method := range []Method{MethodPLL, MethodTick} {
		for _, mode := range kernelModes {
			for _, clockErr := range []time.Duration{54 * time.Second, -54 * time.Second, 13 * time.Second, 30 * time.Millisecond, -700 * time.Microsecond} {
				t.Run(method.String()+"/"+mode.name+"/"+clockErr.String(), func(t *testing.T) {
					kc := simclock.KernelConfig{ClockError: clockErr, Oscillator: simclock.Oscillator{DriftPPM: 12}}
					mode.set(&kc)
					testSlewConverges(t, method, kc)
				})
			}
		}
	}
}

func testSlewConverges(t *testing.T, method Method, kc simclock.KernelConfig) {
	clockErr := kc.ClockError
	{
		{
			{
				w := simclock.New(simclock.Config{Kernel: kc})
				tr := newTrace(w)
				rec := simclock.NewRecorder(w)
				j := &Journal{Store: &MemStore{}, BootID: func() string { return "b" }}
				w.Spawn("slewd", true, slewLoop(w, SlewerConfig{Method: method, Journal: j}, nil))
				w.Run(15 * time.Minute)
				ideal := math.Abs(clockErr.Seconds()) / (KernelMaxRatePPM * 1e-6)
				if tr.settledAt < 0 {
					t.Fatalf("never settled within 1 ms; error now %v", w.ClockError())
				}
				t.Logf("settled after %.2f s (ideal %.2f s), overshoot %v, max rate %.0f ppm, final error %v",
					tr.settledAt, ideal, dur(tr.overshoot), tr.maxRatePPM, w.ClockError())
				// The pump starts at the next second boundary; the tick method
				// also leaves 2 ms to the 500 ppm singleshot (4 s).
				slack := 3.0
				if method == MethodTick {
					slack = 5
					if kc.Tickless {
						slack = 8
					}
				}
				if tr.settledAt > ideal*1.01+slack {
					t.Errorf("settled after %.1f s, more than 1 %% + %v s over the kernel's %.1f s", tr.settledAt, slack, ideal)
				}
				if tr.overshoot > 1e-3 {
					t.Errorf("overshoot %v", dur(tr.overshoot))
				}
				// The tick method's singleshot tail moves only when timekeeping
				// runs: on an idle tickless kernel the chunks of seconds it
				// catches up on at once are lost, and the tail stops short.
				finalTol := 5 * time.Microsecond
				if method == MethodTick && kc.Tickless {
					finalTol = time.Millisecond
				}
				if e := w.ClockError(); e.Abs() > finalTol {
					t.Errorf("final error %v", e)
				}
				if tr.maxRatePPM > KernelMaxRatePPM+100 {
					t.Errorf("max rate %.0f ppm", tr.maxRatePPM)
				}
				if n, _ := rec.Backward(); n != 0 {
					t.Errorf("%d backward steps", n)
				}
			}
		}
	}
}

func TestSlewRespectsMaxRate(t *testing.T) {
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: -2 * time.Second}})
	tr := newTrace(w)
	w.Spawn("slewd", true, slewLoop(w, SlewerConfig{MaxRatePPM: 500}, nil))
	w.Run(80 * time.Minute)
	if tr.maxRatePPM > 501 {
		t.Errorf("rate %.1f ppm over the 500 ppm limit", tr.maxRatePPM)
	}
	if tr.settledAt < 0 || tr.settledAt > 2/500e-6*1.01+2 {
		t.Errorf("settled at %.0f s, want about 4000 s", tr.settledAt)
	}
}

// Killed mid-slew and never restarted: with the PLL pump the kernel drains
// what was armed and the rate returns to nominal by itself; with the tick
// method the bias stays.
func TestKillWithoutRestart(t *testing.T) {
	for _, method := range []Method{MethodPLL, MethodTick} {
		t.Run(method.String(), func(t *testing.T) {
			w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 54 * time.Second}})
			tr := newTrace(w)
			j := &Journal{Store: &MemStore{}, BootID: func() string { return "b" }}
			p := w.Spawn("slewd", true, slewLoop(w, SlewerConfig{Method: method, Journal: j}, nil))
			w.At(200*time.Second+123*time.Millisecond, p.Kill)
			w.Run(300 * time.Second)
			rate := tr.lastRatePPM
			t.Logf("rate 100 s after the kill: %.1f ppm", rate)
			switch method {
			case MethodPLL:
				if math.Abs(rate) > 1 {
					t.Errorf("rate %.1f ppm 100 s after the kill, want nominal", rate)
				}
			case MethodTick:
				if rate > -99000 {
					t.Errorf("rate %.1f ppm: the tick method was expected to leave its bias", rate)
				}
			}
		})
	}
}

func TestReleaseHandsOff(t *testing.T) {
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 10 * time.Second}})
	tr := newTrace(w)
	p := w.Spawn("slewd", true, slewLoop(w, SlewerConfig{}, nil))
	w.At(50*time.Second, p.Terminate)
	w.Run(60 * time.Second)
	if ok, err := p.Exited(); !ok || err != nil {
		t.Fatalf("exit %v %v", ok, err)
	}
	left := w.ClockError()
	d := clock.NewDriver(w)
	k, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	ss, err := d.SingleshotRemaining()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after SIGTERM: error %v, PLL %v, singleshot %v, tick %d", left, k.PLLOffset, ss, k.Tick)
	if k.Tick != clock.NominalTick || k.FrequencyPPM != 0 {
		t.Errorf("rate not restored: tick %d freq %v ppm", k.Tick, k.FrequencyPPM)
	}
	if pending := k.PLLOffset + ss; (pending + left).Abs() > 100*time.Millisecond {
		t.Errorf("handed off %v for an error of %v", pending, left)
	}
	// The kernel goes on by itself, at 500 ppm, and lands.
	w.Run(60*time.Second + time.Duration(left.Seconds()/500e-6*1.01)*time.Second)
	if e := w.ClockError(); e.Abs() > 2*time.Millisecond {
		t.Errorf("error %v after the kernel finished alone", e)
	}
	if tr.overshoot > 1e-3 {
		t.Errorf("overshoot %v", dur(tr.overshoot))
	}
}

func TestPumpArm(t *testing.T) {
	const b = 0.1005
	for _, tc := range []struct {
		need, base, want float64
	}{
		{need: 54, want: 4 * b},
		{need: -54, want: -4 * b},
		{need: 4 * b, want: 4 * b},
		{need: 0, want: 0},
		// Small: the chunk that removes landingShare of it, e = c/(1+base+c).
		{need: 0.01, want: 4 * 0.0095 / (1 - 0.0095)},
		{need: -0.01, base: 20e-6, want: 4 * -0.0095 * (1 + 20e-6) / (1 + 0.0095)},
	} {
		got := pumpArm(tc.need, b, tc.base)
		if math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("pumpArm(%v, base %v) = %v, want %v", tc.need, tc.base, got, tc.want)
		}
		if tc.need != 0 {
			// The chunk of the arm must never do more than need in one second.
			if e := chunkEffect(got*pllShare, tc.base); math.Abs(e) > math.Abs(tc.need)+1e-12 {
				t.Errorf("need %v: one second delivers %v", tc.need, e)
			}
		}
	}
}

func TestBaseTickFreq(t *testing.T) {
	for _, ppm := range []float64{0, 12.5, -499, 450, 451, -2000, 9999, 100400} {
		tick, freq := baseTickFreq(ppm)
		if got := clock.RatePPM(tick, freq); math.Abs(got-ppm) > 1e-4 && math.Abs(ppm) < 100500 {
			t.Errorf("%v ppm → tick %d freq %d = %v ppm", ppm, tick, freq, got)
		}
		if math.Abs(ppm) <= 450 && tick != clock.NominalTick {
			t.Errorf("%v ppm used the tick", ppm)
		}
	}
}

// A journal that is not JSON does not stop slewd: taking control resets
// tick and frequency anyway, which removes any bias it would have recorded.
func TestCorruptJournal(t *testing.T) {
	w := simclock.New(simclock.Config{})
	if _, err := clock.NewDriver(w).SetTick(11000); err != nil {
		t.Fatal(err)
	}
	st := &MemStore{}
	st.WriteFile(JournalFile, []byte("{garbage"))
	j := &Journal{Store: st, BootID: func() string { return "b" }}
	w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		s := NewSlewer(p, SlewerConfig{Method: MethodTick, Journal: j}, quiet())
		if err := s.TakeControl(0); err != nil {
			t.Errorf("TakeControl with a corrupt journal: %v", err)
		}
		return nil
	})
	w.Run(time.Second)
	if k, err := clock.NewDriver(w).Read(); err != nil || k.Tick != clock.NominalTick {
		t.Errorf("tick %d left biased (%v)", k.Tick, err)
	}
}

// Another program sets the PLL time constant mid-slew: the pump needs 0
// (a quarter a second) and takes it back instead of crawling on.
func TestInterferenceWithTheTimeConstant(t *testing.T) {
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 54 * time.Second}})
	tr := newTrace(w)
	w.Spawn("slewd", true, slewLoop(w, SlewerConfig{}, nil))
	w.At(100*time.Second, func() {
		clock.NewDriver(w).Apply(clock.Change{SetTimeConstant: true, TimeConstant: 6})
	})
	w.Run(15 * time.Minute)
	if tr.settledAt < 0 || tr.settledAt > 545 {
		t.Errorf("settled at %.1f s after the time constant was changed", tr.settledAt)
	}
}
