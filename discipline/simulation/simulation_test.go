package simulation

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
)

func baseSim() Config {
	return Config{ClockError: 54 * time.Second, Servers: 1, Delay: 200 * time.Microsecond,
		Jitter: 20 * time.Microsecond, Duration: 20 * time.Minute, MaxSlewPPM: adjtime.KernelMaxRatePPM,
		Seed: 1, RestartAfter: 3 * time.Second}
}

func TestSimulateConvergesAtTheKernelLimit(t *testing.T) {
	for _, tc := range []struct {
		clockError time.Duration
		limit      float64 // s, from the issue
	}{
		{54 * time.Second, 545},
		{-54 * time.Second, 545},
		{13 * time.Second, 135},
	} {
		for _, method := range []adjtime.Method{adjtime.MethodPLL, adjtime.MethodTick} {
			cfg := baseSim()
			cfg.ClockError, cfg.Method = tc.clockError, method
			r, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if r.ConvergedAfterS == nil {
				t.Fatalf("%v %v: never converged", method, tc.clockError)
			}
			t.Logf("%v %+v: converged after %.1f s, max rate %.0f ppm", method, tc.clockError, *r.ConvergedAfterS, r.MaxRatePPM)
			if *r.ConvergedAfterS > tc.limit {
				t.Errorf("%v %v: converged after %.1f s > %v s", method, tc.clockError, *r.ConvergedAfterS, tc.limit)
			}
			if r.BackwardSteps != 0 {
				t.Errorf("%v %v: %d backward steps", method, tc.clockError, r.BackwardSteps)
			}
			if r.MaxRatePPM > adjtime.KernelMaxRatePPM*1.001 {
				t.Errorf("rate %.0f ppm beyond the kernel's tick+frequency", r.MaxRatePPM)
			}
		}
	}
}

// The done-when of the crash-safety requirement: kill -9 at 100 random
// moments of a 54 s slew, restart 3 s later with the kernel state kept:
// every run converges, never goes back, and leaves no rate bias.
func TestSimulateKilledMidSlew(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for i := 0; i < 100; i++ {
		cfg := baseSim()
		cfg.Seed = uint64(i + 1)
		k := time.Duration(1+rng.Float64()*536) * time.Second
		k += time.Duration(rng.Int64N(int64(time.Second)))
		cfg.KillAt = []time.Duration{k}
		r, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if r.ConvergedAfterS == nil || r.BackwardSteps != 0 {
			t.Errorf("kill at %v: converged %v, %d backward steps", k, r.ConvergedAfterS, r.BackwardSteps)
			continue
		}
		// No rate bias: the kernel back at nominal tick and a drift
		// compensation near the true 0 ppm, and over the last five
		// minutes the clock kept true time's pace. (A slew left running
		// would be thousands of ppm; the servo's own frequency noise 20
		// minutes after a start is a few hundredths.)
		if rate := r.Metrics.MeanRatePPM(300); r.FinalTick != 10000 || math.Abs(r.FinalFrequencyPPM) > 0.5 || math.Abs(rate) > 0.5 {
			t.Errorf("kill at %v: rate bias left: tick %d, frequency %+.3f ppm, rate over the last 5 min %+.3f ppm", k, r.FinalTick, r.FinalFrequencyPPM, rate)
		}
		if *r.ConvergedAfterS > 545+3+3 {
			t.Errorf("kill at %v: converged after %.1f s", k, *r.ConvergedAfterS)
		}
	}
}

// Killed and never restarted: the PLL pump leaves nothing running.
func TestSimulateKilledNoRestart(t *testing.T) {
	cfg := baseSim()
	cfg.KillAt = []time.Duration{300 * time.Second}
	cfg.RestartAfter = 0
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 100 s after the kill the rate is the drift compensation alone again
	// (the oscillator is perfect here, so that is about 0).
	b := r.Metrics.Bins[400]
	if math.Abs(b.RatePPM-r.FinalFrequencyPPM) > 0.01 || math.Abs(b.RatePPM) > 0.1 {
		t.Errorf("rate %+.3f ppm 100 s after the kill (drift compensation %+.3f ppm)", b.RatePPM, r.FinalFrequencyPPM)
	}
	if r.BackwardSteps != 0 {
		t.Errorf("%d backward steps", r.BackwardSteps)
	}
}

func TestSimulateWithFalsetickerAndLoss(t *testing.T) {
	cfg := baseSim()
	cfg.ClockError = 2 * time.Second
	cfg.Servers, cfg.Falsetickers, cfg.Loss = 4, 1, 0.3
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.ConvergedAfterS == nil || math.Abs(r.FinalErrorS) > 1e-3 {
		t.Errorf("converged %v, final error %v s", r.ConvergedAfterS, r.FinalErrorS)
	}
}

func TestSimulateIsDeterministic(t *testing.T) {
	cfg := baseSim()
	cfg.Servers, cfg.Loss, cfg.Wander, cfg.DriftPPM = 3, 0.1, 1e-8, 15
	a, _ := Run(context.Background(), cfg)
	b, _ := Run(context.Background(), cfg)
	if a.FinalErrorS != b.FinalErrorS || *a.ConvergedAfterS != *b.ConvergedAfterS {
		t.Errorf("same seed, different runs: %v/%v vs %v/%v", a.FinalErrorS, *a.ConvergedAfterS, b.FinalErrorS, *b.ConvergedAfterS)
	}
}

func TestPanicGuardDoesNotSlew(t *testing.T) {
	var log bytes.Buffer
	cfg := baseSim()
	cfg.ClockError, cfg.Duration, cfg.Log = 1200*time.Second, 10*time.Minute, &log
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.FinalErrorS-1200) > 0.01 {
		t.Errorf("clock moved from 1200 s to %v s past the panic guard", r.FinalErrorS)
	}
	if !strings.Contains(log.String(), "slewd boot") || !strings.Contains(log.String(), "max-offset") {
		t.Errorf("the log does not say what to do:\n%s", log.String())
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	cfg := baseSim()
	cfg.ClockError, cfg.DryRun, cfg.Duration = 3*time.Second, true, 5*time.Minute
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.FinalErrorS != 3 || r.MaxRatePPM != 0 {
		t.Errorf("dry run moved the clock: final error %v s, max rate %v ppm", r.FinalErrorS, r.MaxRatePPM)
	}
}

func TestRTCNeverWrittenWhileOff(t *testing.T) {
	cfg := baseSim()
	cfg.Duration = 2 * time.Hour
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.RTCWritesWhileOffOver100ms != 0 {
		t.Errorf("%d RTC writes while the clock was off by more than 100 ms", r.RTCWritesWhileOffOver100ms)
	}
}

// SIGTERM mid-slew: the daemon leaves the kernel clean (nominal tick, the
// drift compensation only) and the rest of the correction to the kernel,
// which finishes it alone.
func TestSIGTERMHandsOff(t *testing.T) {
	var log bytes.Buffer
	cfg := baseSim()
	cfg.ClockError, cfg.TerminateAt, cfg.Duration, cfg.Log = 2*time.Second, 10*time.Second, 2*time.Hour, &log
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "handed the remaining correction to the kernel") {
		t.Errorf("no hand-off logged:\n%s", log.String())
	}
	if r.FinalTick != 10000 || math.Abs(r.FinalFrequencyPPM) > 1 {
		t.Errorf("kernel left at tick %d, freq %v ppm", r.FinalTick, r.FinalFrequencyPPM)
	}
	// About 1 s left at SIGTERM goes at 500 ppm: done well within 2 h.
	if math.Abs(r.FinalErrorS) > 2e-3 || r.BackwardSteps != 0 {
		t.Errorf("after the hand-off: final error %v s, %d backward steps", r.FinalErrorS, r.BackwardSteps)
	}
}

// Kill points too close together used to start a second daemon while the
// first restart was pending; two daemons then fought over the kernel.
func TestSimulateCloseKillPoints(t *testing.T) {
	cfg := baseSim()
	cfg.KillAt = []time.Duration{100 * time.Second, 101 * time.Second}
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.ConvergedAfterS == nil || *r.ConvergedAfterS > 550 || r.Syscalls > 5000 {
		t.Errorf("converged %v after %d adjtimex calls", r.ConvergedAfterS, r.Syscalls)
	}
}

// A hypervisor steps the guest back 54 s after it converged: slewd slews
// it forward again, and the step is not counted as slewd's.
func TestSimulateExternalStep(t *testing.T) {
	cfg := baseSim()
	cfg.Duration, cfg.StepAt, cfg.StepBy = 40*time.Minute, 15*time.Minute, -54*time.Second
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.BackwardSteps != 0 || r.ConvergedAfterS == nil || *r.ConvergedAfterS > 900+64+545 {
		t.Errorf("backward %d, converged %v", r.BackwardSteps, r.ConvergedAfterS)
	}
}

// After converging, the clock is stepped 2000 s from outside: beyond
// --max-offset, so slewd must not slew it (for 5.5 h at 10 %), not even
// later toward its old target.
func TestPanicGuardAfterConvergence(t *testing.T) {
	var log bytes.Buffer
	cfg := baseSim()
	cfg.ClockError, cfg.Duration, cfg.Log = 0, 3*time.Hour, &log
	cfg.StepAt, cfg.StepBy = 300*time.Second, 2000*time.Second
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.FinalErrorS-2000) > 0.01 {
		t.Errorf("the clock was slewed from 2000 s to %v s past --max-offset", r.FinalErrorS)
	}
	if !strings.Contains(log.String(), "too far off to slew") {
		t.Errorf("no panic-guard log:\n%s", log.String())
	}
}

// After a suspend the kernel measured half a second long, slewd corrects
// the clock at once: the client forgets the samples kept against
// CLOCK_MONOTONIC_RAW, which stood still (without, samples from before
// the sleep held every estimate back for ~400 s).
func TestSimulateResumeCorrectsAtOnce(t *testing.T) {
	cfg := baseSim()
	cfg.ClockError, cfg.Servers, cfg.Duration = 13*time.Second, 4, 90*time.Minute
	cfg.SuspendAt, cfg.SuspendFor, cfg.SuspendError = 5*time.Minute, time.Hour, 500*time.Millisecond
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	resume := (cfg.SuspendAt + cfg.SuspendFor).Seconds()
	if r.ConvergedAfterS == nil || *r.ConvergedAfterS > resume+30 || r.BackwardSteps != 0 {
		t.Errorf("resumed at %.0f s 0.5 s off: converged %v (want within 30 s), %d backward steps", resume, r.ConvergedAfterS, r.BackwardSteps)
	}
}

// The network faults: an outage silences every server for its window
// (the first query after it is answered), a kiss-of-death DENY from one
// of four servers costs nothing, and names that do not resolve for 10 min
// delay the first sample past it.
func TestSimulateNetworkFaults(t *testing.T) {
	cfg := baseSim()
	cfg.Servers, cfg.Duration = 4, time.Hour
	cfg.OutageAt, cfg.OutageFor = 20*time.Minute, 20*time.Minute
	cfg.Kiss = "DENY"
	var log bytes.Buffer
	cfg.Log = &log
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.ConvergedAfterS == nil || r.BackwardSteps != 0 {
		t.Errorf("outage and DENY: converged %v, %d backward steps", r.ConvergedAfterS, r.BackwardSteps)
	}
	for _, want := range []string{"kiss-of-death: no more queries to this server", "source unreachable"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("no %q in the log", want)
		}
	}
	cfg = baseSim()
	cfg.DNSFailFor, cfg.Duration = 10*time.Minute, 40*time.Minute
	if r, err = Run(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if r.ConvergedAfterS == nil || *r.ConvergedAfterS < 600 {
		t.Errorf("names unresolvable for 10 min: converged after %v s", r.ConvergedAfterS)
	}
}
