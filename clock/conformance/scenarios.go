package conformance

import (
	"fmt"
	"math"
	"time"

	"slewd/clock"
)

// RateWindow is how long rate scenarios measure. With brackets of a few
// µs under qemu TCG, 3 s keeps the read error of a rate near 0.3 ppm.
var RateWindow = 3 * time.Second

// Scenarios is the table, in the order it runs.
func Scenarios() []Scenario {
	return append([]Scenario{
		{"nominal rate", nominal},
		rateScenario("tick 9000", clock.Timex{Modes: clock.AdjTick, Tick: 9000}, -100000),
		rateScenario("tick 11000", clock.Timex{Modes: clock.AdjTick, Tick: 11000}, 100000),
		rateScenario("freq +500 ppm", clock.Timex{Modes: clock.AdjFrequency, Freq: 500 << 16}, 500),
		rateScenario("freq -500 ppm", clock.Timex{Modes: clock.AdjFrequency, Freq: -500 << 16}, -500),
		rateScenario("freq 600 ppm (clamped)", clock.Timex{Modes: clock.AdjFrequency, Freq: 600 << 16}, 500),
		singleshot("singleshot +2 ms", 2000),
		singleshot("singleshot -2 ms", -2000),
		{"singleshot cancelled", singleshotCancel},
		setOffset("ADJ_SETOFFSET +1.5 s", clock.Timeval{Sec: 1, Usec: 500000}, false, 1.5),
		setOffset("ADJ_SETOFFSET -1.5 s (ADJ_NANO)", clock.Timeval{Sec: -2, Usec: 500000000}, true, -1.5),
		pll("PLL 0.3 s tc 0 FREQHOLD", 3e8, true),
		pll("PLL 0.3 s tc 0", 3e8, false),
		pll("PLL 1 ms tc 0", 1e6, false),
		{"maxerror growth", maxErrorGrowth},
		{"status round-trip", statusRoundTrip},
	}, ChangeScenarios()...)
}

// nominal measures the rate with tick 10000 and freq 0: zero in the
// kernel's arithmetic; on a real kernel it shows the clocksource's
// quantisation, if any.
func nominal(s *Session) error {
	r, err := s.ratePPM(RateWindow)
	if err != nil {
		return err
	}
	s.Expect("rate", "ppm", r, TolPPM, 0, 0.01)
	return nil
}

// rateScenario sets tick or frequency and measures the rate; it also
// records what the kernel reads back.
func rateScenario(name string, tx clock.Timex, wantPPM float64) Scenario {
	return Scenario{name, func(s *Session) error {
		got, _, err := s.Adj(tx)
		if err != nil {
			return err
		}
		if err := s.Sleep(100 * time.Millisecond); err != nil {
			return err
		}
		r, err := s.ratePPM(RateWindow)
		if err != nil {
			return err
		}
		s.Expect("rate", "ppm", r, TolPPM, wantPPM, 0.01)
		if tx.Modes&clock.AdjTick != 0 {
			s.Expect("tick read back", "µs", float64(got.Tick), TolExact, float64(tx.Tick), 0)
		} else {
			s.Expect("freq read back", "ppm", clock.FreqToPPM(got.Freq), TolExact, wantPPM, 0.0001)
		}
		return nil
	}}
}

// chunkUs is what a correction chunk of c µs, applied over one REALTIME
// second on top of a base rate, delivers against RAW: the second lasts
// 1/(1+base+c) s of RAW.
func chunkUs(c, basePPM float64) float64 { return c / (1 + basePPM*1e-6 + c*1e-6) }

// singleshot programs adjtime(offsetUs) at a half second and measures
// what it delivered five seconds later, when it has finished.
func singleshot(name string, offsetUs int64) Scenario {
	return Scenario{name, func(s *Session) error {
		t0 := s.NextAt(500 * time.Millisecond)
		m0, err := s.PhaseAt(t0)
		if err != nil {
			return err
		}
		old, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: offsetUs})
		if err != nil {
			return err
		}
		s.Expect("previous remainder", "µs", float64(old.Offset), TolExact, 0, 0)
		// Chunks of 500 µs start at the next second: two are done at +2 s.
		if err := s.Until(t0.Add(2 * time.Second)); err != nil {
			return err
		}
		mid, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSSRead})
		if err != nil {
			return err
		}
		sign := float64(offsetUs) / math.Abs(float64(offsetUs))
		s.Expect("remaining at +2 s", "µs", float64(mid.Offset), TolExact, float64(offsetUs)-sign*1000, 0)
		m1, err := s.PhaseAt(t0.Add(5 * time.Second))
		if err != nil {
			return err
		}
		n := math.Abs(float64(offsetUs)) / clock.SingleshotRate
		// The chunk rate switches 0 → ±500 µs/s and, at the end, back to 0.
		// From before the singleshot to after it finished: whole chunks
		// only, so when in its tick the kernel switched does not matter.
		s.Expect("delivered", "µs", us(m1-m0), TolPhase, n*chunkUs(sign*500, 0), 0.01)
		end, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSSRead})
		if err != nil {
			return err
		}
		s.Expect("remaining at end", "µs", float64(end.Offset), TolExact, 0, 0)
		return nil
	}}
}

// singleshotCancel starts a 1 s adjtime, replaces it with 0 after 1.3 s
// and checks the remainder returned and what was delivered meanwhile.
func singleshotCancel(s *Session) error {
	t0 := s.NextAt(500 * time.Millisecond)
	m0, err := s.PhaseAt(t0)
	if err != nil {
		return err
	}
	if _, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 1000000}); err != nil {
		return err
	}
	if err := s.Until(t0.Add(1300 * time.Millisecond)); err != nil {
		return err
	}
	old, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 0})
	if err != nil {
		return err
	}
	// One chunk was taken at the second boundary in between; the chunk in
	// flight when it is replaced still runs to the end of its second.
	s.Expect("remainder returned", "µs", float64(old.Offset), TolExact, 1000000-500, 0)
	m1, err := s.PhaseAt(t0.Add(3 * time.Second))
	if err != nil {
		return err
	}
	s.Expect("delivered", "µs", us(m1-m0), TolPhase, chunkUs(500, 0), 0.01)
	return nil
}

// readMono is a bracketed RAW/MONOTONIC/RAW read: MONOTONIC−RAW.
func readMono(c clock.Clock) time.Duration {
	var best, bestW time.Duration
	for i := 0; i < Reads; i++ {
		a := c.Raw()
		m := c.Mono()
		b := c.Raw()
		if w := b - a; i == 0 || w < bestW {
			best, bestW = m-(a+w/2), w
		}
	}
	return best
}

// setOffset steps the clock with ADJ_SETOFFSET from a state that the step
// must partly clear (synchronized, maxerror 0, a pending singleshot) and
// partly keep (freq 100 ppm).
func setOffset(name string, step clock.Timeval, nano bool, wantS float64) Scenario {
	return Scenario{name, func(s *Session) error {
		prep := clock.Timex{Modes: clock.AdjStatus | clock.AdjMaxError | clock.AdjFrequency, Status: 0, MaxError: 0, Freq: 100 << 16}
		if _, _, err := s.Adj(prep); err != nil {
			return err
		}
		// Step at x.25, far from a second boundary on both sides of a 1.5 s step.
		if err := s.Until(s.NextAt(250 * time.Millisecond)); err != nil {
			return err
		}
		if _, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 5000}); err != nil {
			return err
		}
		modes := clock.AdjSetOffset
		if nano {
			modes |= clock.AdjNano
		}
		mono0 := readMono(s.c)
		r0 := s.Read()
		tx, st, err := s.Adj(clock.Timex{Modes: modes, Time: step})
		if err != nil {
			return err
		}
		r1 := s.Read()
		mono1 := readMono(s.c)
		s.Expect("step", "µs", us(r1.RealMinusRaw()-r0.RealMinusRaw()), TolPhase, wantS*1e6, 1)
		s.Expect("MONOTONIC moved", "µs", us(mono1-mono0), TolPhase, 0, 1)
		wantStatus := clock.StaUnsync
		if nano {
			wantStatus |= clock.StaNano
		}
		s.Expect("status after", "flags", float64(tx.Status), TolExact, float64(wantStatus), 0)
		s.Expect("state returned", "state", float64(st), TolExact, float64(clock.TimeError), 0)
		s.Expect("maxerror after", "µs", float64(tx.MaxError), TolExact, clock.MaxErrorLimit, 0)
		s.Expect("freq kept", "ppm", clock.FreqToPPM(tx.Freq), TolExact, 100, 0.0001)
		ss, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffsetSSRead})
		if err != nil {
			return err
		}
		s.Expect("singleshot after", "µs", float64(ss.Offset), TolExact, 0, 0)
		return nil
	}}
}

// pll enables the PLL (STA_PLL, ADJ_NANO, time constant 0), waits two
// seconds so that the frequency side effect shows without FREQHOLD, and
// sets the offset at a half second. It measures the rate of each of the
// first three chunks in the middle of its second, and what the PLL
// delivered from before the offset was set until it has drained (25 s:
// the chunk still running then is 0.75^25/4 of the offset, under 60 ppm,
// so a 4 ms late switch moves the window's end by under 0.3 µs). Both are immune to when in its tick the kernel
// switches chunks, which a window ending mid-drain is not: the kernel
// switches at the 1/HZ tick after the REALTIME second, the simulator at
// the second itself.
func pll(name string, offsetNs int64, hold bool) Scenario {
	return Scenario{name, func(s *Session) error {
		status := clock.StaPLL
		if hold {
			status |= clock.StaFreqHold
		}
		t0, err := s.AlignHalf()
		if err != nil {
			return err
		}
		if _, _, err := s.Adj(clock.Timex{Modes: clock.AdjStatus | clock.AdjNano | clock.AdjTimeConst, Status: status, Constant: 0}); err != nil {
			return err
		}
		t1 := t0.Add(2 * time.Second)
		m0, err := s.PhaseAt(t1)
		if err != nil {
			return err
		}
		set, _, err := s.Adj(clock.Timex{Modes: clock.AdjOffset, Offset: offsetNs})
		if err != nil {
			return err
		}
		s.Expect("offset read back", "µs", float64(set.Offset)/1e3, TolPhase, float64(offsetNs)/1e3, 0.01)
		// The frequency changed at the call: (offset·secs) >> 8 ns/s with
		// secs = 2 whole seconds since STA_PLL went on, clamped to 500 ppm.
		wantFreq := 0.0
		if !hold {
			wantFreq = min(float64(offsetNs)*2/256/1e3, clock.MaxFreqPPM)
		}
		s.Expect("freq", "ppm", clock.FreqToPPM(set.Freq), TolExact, wantFreq, 0.0001)
		// tc 0: each second a quarter of what is left goes into the length
		// of the second. Chunk k runs in the second that starts at t1+0.5+k.
		left := float64(offsetNs) / 1e9
		for k := 0; k < 3; k++ {
			c := left / 4
			left -= c
			start := t1.Add(time.Duration(k)*time.Second + 500*time.Millisecond)
			r, err := s.rateBetween(start.Add(200*time.Millisecond), start.Add(800*time.Millisecond))
			if err != nil {
				return err
			}
			s.Expect(fmt.Sprintf("chunk %d rate", k), "ppm", r, TolPPM, c*1e6+wantFreq, 0.01)
		}
		tx, _ := s.State()
		s.Expect("offset left after 3 chunks", "µs", float64(tx.Offset)/1e3, TolPhase, left*1e6, 0.01)
		end := t1.Add(25 * time.Second)
		m1, err := s.PhaseAt(end)
		if err != nil {
			return err
		}
		// Every switch of chunk may come up to one accumulation interval
		// late: the chunks fall by a quarter each second, 2·offset/4 in all.
		m := s.Add("delivered, drained", "µs", us(m1-m0), SwitchTol(float64(offsetNs)/1e3/4, float64(offsetNs)/1e3/4))
		if hold {
			// Each chunk lasts one REALTIME second, 1/(1+c) of RAW; 24 are
			// done at the end and half of the 25th.
			left, want := float64(offsetNs)/1e3, 0.0
			for k := range 25 {
				c := left / 4
				left -= c
				if k == 24 {
					want += chunkUs(c, 0) / 2
				} else {
					want += chunkUs(c, 0)
				}
			}
			m.Expect, m.ExpectTol = &want, 0.05
		}
		return nil
	}}
}

// maxErrorGrowth sets maxerror 0 at a half second and reads it three
// seconds later (500 µs per second_overflow); then it lets maxerror run
// into the 16 s cap, which sets STA_UNSYNC.
func maxErrorGrowth(s *Session) error {
	t0, err := s.AlignHalf()
	if err != nil {
		return err
	}
	if _, _, err := s.Adj(clock.Timex{Modes: clock.AdjMaxError | clock.AdjEstError, MaxError: 0, EstError: 0}); err != nil {
		return err
	}
	if err := s.Until(t0.Add(3 * time.Second)); err != nil {
		return err
	}
	tx, _ := s.State()
	s.Expect("maxerror after 3 s", "µs", float64(tx.MaxError), TolExact, 3*clock.MaxErrorGrowth, 0)
	s.Expect("esterror after 3 s", "µs", float64(tx.EstError), TolExact, 0, 0)
	tx, st, err := s.Adj(clock.Timex{Modes: clock.AdjStatus | clock.AdjMaxError, Status: 0, MaxError: clock.MaxErrorLimit - 300})
	if err != nil {
		return err
	}
	s.Expect("state below the cap", "state", float64(st), TolExact, float64(clock.TimeOK), 0)
	if err := s.Until(t0.Add(4 * time.Second)); err != nil {
		return err
	}
	tx, st = s.State()
	s.Expect("maxerror at the cap", "µs", float64(tx.MaxError), TolExact, clock.MaxErrorLimit, 0)
	s.Expect("status at the cap", "flags", float64(tx.Status), TolExact, float64(clock.StaUnsync), 0)
	s.Expect("state at the cap", "state", float64(st), TolExact, float64(clock.TimeError), 0)
	return nil
}

// statusRoundTrip writes status words and reads them back: read-only bits
// are ignored, STA_PPSFREQ without a PPS signal is an error only in
// kernels built with CONFIG_NTP_PPS, and turning STA_PLL off resets the
// writable bits.
func statusRoundTrip(s *Session) error {
	for i, w := range []struct {
		write      int32
		wantStatus int32
		wantState  clock.State
	}{
		{clock.StaPLL | clock.StaFLL | clock.StaFreqHold | clock.StaPPSSignal | clock.StaClockErr | clock.StaNano | clock.StaMode,
			clock.StaPLL | clock.StaFLL | clock.StaFreqHold, clock.TimeOK},
		{clock.StaPLL | clock.StaPPSFreq, clock.StaPLL | clock.StaPPSFreq, clock.TimeOK},
		{0, 0, clock.TimeOK},
		{clock.StaUnsync, clock.StaUnsync, clock.TimeError},
	} {
		tx, st, err := s.Adj(clock.Timex{Modes: clock.AdjStatus, Status: w.write})
		if err != nil {
			return err
		}
		name := fmt.Sprintf("write %#x", w.write)
		s.Expect(fmt.Sprintf("%d: %s: status", i+1, name), "flags", float64(tx.Status), TolExact, float64(w.wantStatus), 0)
		s.Expect(fmt.Sprintf("%d: %s: state", i+1, name), "state", float64(st), TolExact, float64(w.wantState), 0)
	}
	return nil
}
