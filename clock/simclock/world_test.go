package simclock

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"slewd/clock"
)

// The recorder must see every backward movement. Check it against a
// brute-force sampler reading REALTIME every millisecond while random
// adjustments, steps and leap bits are applied.
func TestRecorderAgreesWithMillisecondSampler(t *testing.T) {
	w := New(Config{Seed: 7, Kernel: KernelConfig{Oscillator: Oscillator{DriftPPM: -80, Wander: 1e-7}}})
	rec := NewRecorder(w)
	rng := rand.New(rand.NewPCG(1, 2))
	sampled := 0
	w.Spawn("adjuster", true, func(ctx context.Context, p *Process) error {
		for i := 0; i < 200; i++ {
			var tx clock.Timex
			switch rng.IntN(5) {
			case 0:
				tx = clock.Timex{Modes: clock.AdjTick, Tick: 9000 + rng.Int64N(2001)}
			case 1:
				tx = clock.Timex{Modes: clock.AdjFrequency, Freq: rng.Int64N(1000<<16) - 500<<16}
			case 2:
				tx = clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: rng.Int64N(4000) - 2000}
			case 3:
				tx = clock.Timex{Modes: clock.AdjStatus | clock.AdjNano | clock.AdjTimeConst, Status: clock.StaPLL, Constant: 0}
				p.Adjtimex(&tx)
				tx = clock.Timex{Modes: clock.AdjOffset, Offset: rng.Int64N(1e9) - 5e8}
			case 4:
				if rng.IntN(4) == 0 {
					tx = clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: -1, Usec: rng.Int64N(1e9)}}
				}
			}
			p.Adjtimex(&tx)
			clock.Sleep(ctx, p, time.Duration(rng.Int64N(2e9)))
		}
		return nil
	})
	w.Spawn("sampler", false, func(ctx context.Context, p *Process) error {
		prev := p.Now()
		for i := 0; i < 250000; i++ {
			clock.Sleep(ctx, p, time.Millisecond)
			now := p.Now()
			if now.Before(prev) {
				sampled++
			}
			prev = now
		}
		return nil
	})
	w.Run(300 * time.Second)
	n, _ := rec.Backward()
	steps := 0
	for _, j := range rec.Jumps {
		if j.Delta < 0 {
			steps++
		}
	}
	if steps == 0 {
		t.Fatal("scenario made no backward step; the test proves nothing")
	}
	if n != sampled || n != steps {
		t.Errorf("recorder saw %d backward movements (%d jumps), 1 ms sampler saw %d", n, steps, sampled)
	}
	// tick 10 % + freq 0.05 % + PLL chunk 12.5 % + singleshot 0.05 % when all stack.
	if r := rec.MaxAbsRatePPM(); r > 226000+100 {
		t.Errorf("rate %v ppm beyond what the kernel allows", r)
	}
}

func TestGoAndPost(t *testing.T) {
	w := New(Config{})
	var got []any
	var times []time.Duration
	p := w.Spawn("loop", true, func(ctx context.Context, p *Process) error {
		for i := range 3 {
			d := time.Duration(3-i) * time.Second
			p.Go(func() {
				b := p.NewBlocker()
				b.Block(p.Mono() + d) // a helper that takes d
				p.Post(d)
			})
		}
		for len(got) < 3 {
			ev, err := p.Wait(ctx, time.Minute)
			if err != nil || ev == nil {
				t.Errorf("wait: %v %v", ev, err)
				return nil
			}
			got = append(got, ev)
			times = append(times, w.Now())
		}
		return nil
	})
	w.Run(time.Hour)
	if ok, _ := p.Exited(); !ok {
		t.Fatal("loop did not finish")
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
		if got[i] != want || times[i] != want {
			t.Errorf("event %d: %v at %v, want %v", i, got[i], times[i], want)
		}
	}
}

// BenchmarkDay runs 24 h of virtual time with one event per second (a
// process waking every second and reading the clock), the figure the
// design asks for: ≤ 10 s of wall time per simulated day.
func BenchmarkDay(b *testing.B) {
	for b.Loop() {
		w := New(Config{Seed: 1, Kernel: KernelConfig{Oscillator: Oscillator{DriftPPM: 20, Wander: 1e-9}}})
		w.Spawn("ticker", true, func(ctx context.Context, p *Process) error {
			for i := 0; i < 86400; i++ {
				clock.Sleep(ctx, p, time.Second)
				var tx clock.Timex
				p.Adjtimex(&tx)
			}
			return nil
		})
		w.Run(25 * time.Hour)
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "wall-s/virtual-day")
}

func TestDayIsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	w := New(Config{})
	n := 0
	w.Spawn("ticker", true, func(ctx context.Context, p *Process) error {
		for ; n < 86400; n++ {
			clock.Sleep(ctx, p, time.Second)
		}
		return nil
	})
	w.Run(25 * time.Hour)
	if n != 86400 || math.Abs(w.Now().Hours()-25) > 1e-9 {
		t.Errorf("%d events, now %v", n, w.Now())
	}
}
