package simulation

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// chronyModel is the model chrony 4.3 was measured on in its own
// simulator (clknetsim): a client oscillator 20 ppm fast with a random
// walk of 1 ppb per √s, one server, one-way delay 200 µs plus an
// exponential extra delay of mean 20 µs each way, no loss, 24 h, errors
// from 1 h on. chrony's figures over 10 seeds: poll 64 s, RMS 7.9-9.7 µs
// and max 25-37 µs; adaptive polling, RMS 21-49 µs and max 73-206 µs.
func chronyModel(seed uint64, poll time.Duration) Config {
	cfg := baseSim()
	cfg.ClockError, cfg.DriftPPM, cfg.Wander = 54*time.Second, 20, 1e-9
	cfg.Duration, cfg.Poll, cfg.Seed = 24*time.Hour, poll, seed
	return cfg
}

type steadyFigures struct{ worstRMS, worstMax, bestRMS, bestMax float64 }

func steadyState(t testing.TB, poll time.Duration, seeds int) steadyFigures {
	f := steadyFigures{bestRMS: math.Inf(1), bestMax: math.Inf(1)}
	for seed := 1; seed <= seeds; seed++ {
		r, err := Run(context.Background(), chronyModel(uint64(seed), poll))
		if err != nil {
			t.Fatal(err)
		}
		if r.RMSErrorAfter1hS == nil || r.BackwardSteps != 0 {
			t.Fatalf("seed %d: no figures after 1 h, or %d backward steps", seed, r.BackwardSteps)
		}
		rms, mx := *r.RMSErrorAfter1hS*1e6, *r.MaxAbsErrorAfter1hS*1e6
		f.worstRMS, f.worstMax = math.Max(f.worstRMS, rms), math.Max(f.worstMax, mx)
		f.bestRMS, f.bestMax = math.Min(f.bestRMS, rms), math.Min(f.bestMax, mx)
	}
	return f
}

// The done-when of the steady-state requirement: better than chrony on its
// own model, over 10 seeds.
func TestSteadyStateBeatsChrony(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates 20 days")
	}
	for _, tc := range []struct {
		name           string
		poll           time.Duration
		maxRMS, maxMax float64 // µs
	}{
		{"poll 64 s", 64 * time.Second, 7, 25},
		{"adaptive poll", 0, 20, 70},
	} {
		f := steadyState(t, tc.poll, 10)
		t.Logf("%s: RMS %.2f-%.2f µs, max %.2f-%.2f µs", tc.name, f.bestRMS, f.worstRMS, f.bestMax, f.worstMax)
		if f.worstRMS > tc.maxRMS || f.worstMax > tc.maxMax {
			t.Errorf("%s: worst RMS %.2f µs (limit %v), worst max %.2f µs (limit %v)", tc.name, f.worstRMS, tc.maxRMS, f.worstMax, tc.maxMax)
		}
	}
}

func BenchmarkSteadyStatePoll64(b *testing.B)   { benchSteady(b, 64*time.Second) }
func BenchmarkSteadyStateAdaptive(b *testing.B) { benchSteady(b, 0) }

func benchSteady(b *testing.B, poll time.Duration) {
	var f steadyFigures
	for b.Loop() {
		f = steadyState(b, poll, 10)
	}
	b.ReportMetric(f.worstRMS, "worst-RMS-µs/10-seeds")
	b.ReportMetric(f.worstMax, "worst-max-µs/10-seeds")
	b.ReportMetric(f.bestRMS, "best-RMS-µs")
	b.ReportMetric(f.bestMax, "best-max-µs")
}

// BenchmarkSteadyStateSpread runs 100 seeds of chrony's model: the issue
// judges 10, and how often another 10 would fail is what the spread says.
// It reports the mean, 95th percentile and worst of the per-seed max
// error, how many seeds exceed the limit, and NTP queries a day.
func BenchmarkSteadyStateSpread(b *testing.B) {
	for _, tc := range []struct {
		name  string
		poll  time.Duration
		limit float64 // µs
	}{{"poll64", 64 * time.Second, 25}, {"adaptive", 0, 70}} {
		b.Run(tc.name, func(b *testing.B) {
			const seeds = 100
			var maxes []float64
			var queries int64
			for b.Loop() {
				maxes, queries = nil, 0
				for seed := uint64(1); seed <= seeds; seed++ {
					r, err := Run(context.Background(), chronyModel(seed, tc.poll))
					if err != nil || r.MaxAbsErrorAfter1hS == nil {
						b.Fatalf("seed %d: %v", seed, err)
					}
					maxes = append(maxes, *r.MaxAbsErrorAfter1hS*1e6)
					queries += r.Queries
				}
			}
			slices.Sort(maxes)
			over, sum := 0, 0.0
			for _, m := range maxes {
				sum += m
				if m > tc.limit {
					over++
				}
			}
			b.ReportMetric(sum/seeds, "mean-max-µs")
			b.ReportMetric(maxes[seeds*95/100-1], "p95-max-µs")
			b.ReportMetric(maxes[seeds-1], "worst-max-µs")
			b.ReportMetric(float64(over), "seeds-over-limit/100")
			b.ReportMetric(float64(queries)/seeds, "queries/day")
		})
	}
}

// BenchmarkConverge reports how long corrections take in virtual time
// (the limits: 54 s in ≤ 545 s, 13 s in ≤ 135 s; the kernel's
// 10.05 % makes those 537.3 s and 129.4 s).
func BenchmarkConverge(b *testing.B) {
	for _, ce := range []time.Duration{54 * time.Second, -54 * time.Second, 13 * time.Second} {
		b.Run(fmt.Sprintf("%+v", ce), func(b *testing.B) {
			var conv float64
			for b.Loop() {
				cfg := baseSim()
				cfg.ClockError = ce
				r, err := Run(context.Background(), cfg)
				if err != nil || r.ConvergedAfterS == nil {
					b.Fatalf("no convergence: %v", err)
				}
				conv = *r.ConvergedAfterS
			}
			b.ReportMetric(conv, "converged-virtual-s")
		})
	}
}

// BenchmarkKillMidSlew kills -9 at 100 random moments of a 54 s slew and
// restarts 3 s later; it reports the slowest convergence, the backward
// steps and the largest rate left at the end.
func BenchmarkKillMidSlew(b *testing.B) {
	var worst, worstRate float64
	var backward, failed int
	for b.Loop() {
		worst, worstRate, backward, failed = 0, 0, 0, 0
		rng := rand.New(rand.NewPCG(11, 12))
		for i := 0; i < 100; i++ {
			cfg := baseSim()
			cfg.Seed = uint64(i + 1)
			cfg.KillAt = []time.Duration{time.Duration((1 + rng.Float64()*536) * float64(time.Second))}
			r, err := Run(context.Background(), cfg)
			if err != nil || r.ConvergedAfterS == nil {
				failed++
				continue
			}
			worst = math.Max(worst, *r.ConvergedAfterS)
			worstRate = math.Max(worstRate, math.Abs(r.Metrics.MeanRatePPM(300)))
			backward += r.BackwardSteps
		}
	}
	b.ReportMetric(float64(100-failed), "converged/100")
	b.ReportMetric(float64(backward), "backward-steps")
	b.ReportMetric(worst, "slowest-converged-s")
	b.ReportMetric(worstRate, "worst-rate-left-ppm")
}

// BenchmarkSimulateDay is the wall time of `slewd simulate --duration=24h`
// on the chrony model (the requirement: ≤ 10 s).
func BenchmarkSimulateDay(b *testing.B) {
	for b.Loop() {
		if _, err := Run(context.Background(), chronyModel(1, 0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "wall-s/virtual-day")
}
