// Package conformance is one table of kernel clock scenarios that runs
// unchanged against the simulated kernel (package simclock) and against a
// real Linux kernel inside the qemu rig (test/kernel), so that the two can
// be compared figure by figure.
//
// A scenario sees only clock.Clock and clock.Loop. It measures what the
// kernel did against CLOCK_MONOTONIC_RAW, which no adjustment touches:
// rates as Δ(REALTIME−RAW)/ΔRAW and delivered corrections as Δ(REALTIME−RAW),
// with bracketed RAW/REALTIME/RAW reads. The kernel applies singleshot and
// PLL corrections in chunks, one per REALTIME second (second_overflow), so
// every window starts and ends in the middle of a REALTIME second and its
// phase is interpolated to that exact REALTIME instant: both kernels then
// count the same chunks whatever the scheduling jitter of the guest.
package conformance

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"slewd/clock"
)

// Tolerances of the comparison between the simulator and the kernel.
const (
	TolPPM   = 1.0  // rates, ppm
	TolPhase = 10.0 // delivered corrections and offsets, µs
	TolExact = 0.0  // kernel integers read back (tick, freq units, status, maxerror)
)

// AccumulationInterval is the granularity at which a real kernel switches
// singleshot and PLL chunks: second_overflow runs while timekeeping
// accumulates whole intervals of 1/HZ of the clocksource (4 ms of RAW at
// Debian's HZ=250), at the first one past the REALTIME second. The grid
// is fixed in RAW while a chunk changes REALTIME's rate, so the delay
// changes from second to second in [0, 4 ms); the simulator switches at
// the second itself. (On a NO_HZ CPU left idle the switch waits for the
// next wakeup instead; the rig keeps the guest's tick running.)
const AccumulationInterval = 4 * time.Millisecond

// SwitchTol is the tolerance of a correction delivered in chunks whose
// rates change by changes (µs per second each) within the window: each
// switch may come up to one AccumulationInterval late, keeping the old
// chunk for that long, and nobody can observe by how much.
func SwitchTol(changes ...float64) float64 {
	tol := TolPhase
	for _, c := range changes {
		tol += math.Abs(c) * AccumulationInterval.Seconds()
	}
	return tol
}

// Metric is one figure a scenario measured.
type Metric struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit"` // "ppm", "µs", "flags", or the kernel's unit of a readback
	Value float64 `json:"value"`
	// Tol is how far the simulator and the kernel may differ.
	Tol float64 `json:"tol"`
	// Expect is what the kernel's documented arithmetic gives, when it can
	// be written down in closed form; the simulator must meet it within
	// ExpectTol on its own.
	Expect    *float64 `json:"expect,omitempty"`
	ExpectTol float64  `json:"expect_tol,omitempty"`
}

// Result is what one scenario measured.
type Result struct {
	Scenario string   `json:"scenario"`
	Metrics  []Metric `json:"metrics"`
	Err      string   `json:"err,omitempty"`
	// Bracket widths of the clock reads, ns: how well RAW and REALTIME
	// were related (wide brackets mean a preempted read).
	BracketMaxNs    int64 `json:"bracket_max_ns"`
	BracketMedianNs int64 `json:"bracket_median_ns"`
}

// Scenario is one row group of the table.
type Scenario struct {
	Name string
	Run  func(s *Session) error
}

// Session is a scenario's view of the clock, with measuring helpers.
type Session struct {
	ctx     context.Context
	c       clock.Clock
	l       clock.Loop
	metrics []Metric
	widths  []time.Duration
}

// Reads is how many bracketed reads Read takes, keeping the narrowest.
const Reads = 8

// RunAll runs the scenarios one after another on c, restoring the clock's
// default state (Restore) before the first and after each one, even when a
// scenario fails. A scenario's failure is recorded in its Result; RunAll
// returns an error only if the clock could not be restored, since then
// the following results would mean nothing.
func RunAll(ctx context.Context, c clock.Clock, l clock.Loop, scenarios []Scenario) ([]Result, error) {
	if err := Restore(ctx, c, l); err != nil {
		return nil, err
	}
	var results []Result
	for _, sc := range scenarios {
		s := &Session{ctx: ctx, c: c, l: l}
		err := sc.Run(s)
		r := Result{Scenario: sc.Name, Metrics: s.metrics}
		if err != nil {
			r.Err = err.Error()
		}
		r.BracketMaxNs, r.BracketMedianNs = widthStats(s.widths)
		results = append(results, r)
		if err := Restore(ctx, c, l); err != nil {
			return results, fmt.Errorf("after %q: %w", sc.Name, err)
		}
	}
	return results, nil
}

func widthStats(ws []time.Duration) (maxNs, medianNs int64) {
	if len(ws) == 0 {
		return 0, 0
	}
	s := slices.Clone(ws)
	slices.Sort(s)
	return int64(s[len(s)-1]), int64(s[len(s)/2])
}

// Restore puts the kernel clock back to its boot defaults as far as the
// scenarios change them: tick 10000, freq 0, status STA_UNSYNC (µs mode,
// time constant 2), no PLL or singleshot offset, maxerror and esterror
// 16 s. It then waits past the next REALTIME second boundary, so that a
// chunk already loaded for the current second has been delivered.
func Restore(ctx context.Context, c clock.Clock, l clock.Loop) error {
	steps := []clock.Timex{
		{Modes: clock.AdjOffsetSingleshot, Offset: 0},
		// ADJ_OFFSET 0 with STA_PLL|STA_FREQHOLD clears the PLL offset
		// without touching the frequency (status is processed first).
		{Modes: clock.AdjStatus | clock.AdjOffset, Status: clock.StaPLL | clock.StaFreqHold, Offset: 0},
		// Time constant 2 as at boot: with ADJ_NANO the kernel takes it as is.
		{Modes: clock.AdjNano | clock.AdjTimeConst, Constant: 2},
		// Turning STA_PLL off resets the status; STA_UNSYNC is written too.
		{Modes: clock.AdjMicro | clock.AdjStatus | clock.AdjTick | clock.AdjFrequency | clock.AdjMaxError | clock.AdjEstError,
			Status: clock.StaUnsync, Tick: clock.NominalTick, Freq: 0,
			MaxError: clock.MaxErrorLimit, EstError: clock.MaxErrorLimit},
	}
	for _, tx := range steps {
		if _, err := c.Adjtimex(&tx); err != nil {
			return fmt.Errorf("restoring the clock: %w", err)
		}
	}
	frac := time.Duration(c.Now().Nanosecond())
	if err := clock.Sleep(ctx, l, time.Second-frac+50*time.Millisecond); err != nil {
		return err
	}
	var tx clock.Timex
	c.Adjtimex(&tx)
	ss := clock.Timex{Modes: clock.AdjOffsetSSRead}
	c.Adjtimex(&ss)
	if tx.Tick != clock.NominalTick || tx.Freq != 0 || tx.Status != clock.StaUnsync || tx.Offset != 0 || ss.Offset != 0 || tx.Constant != 2 {
		return fmt.Errorf("clock not restored: tick %d freq %d status %v offset %d singleshot %d constant %d",
			tx.Tick, tx.Freq, clock.StatusNames(tx.Status), tx.Offset, ss.Offset, tx.Constant)
	}
	return nil
}

// Adj calls adjtimex and returns the kernel's answer.
func (s *Session) Adj(tx clock.Timex) (clock.Timex, clock.State, error) {
	st, err := s.c.Adjtimex(&tx)
	return tx, st, err
}

// State reads the kernel state (modes 0).
func (s *Session) State() (clock.Timex, clock.State) {
	var tx clock.Timex
	st, _ := s.c.Adjtimex(&tx)
	return tx, st
}

// Sleep waits d on CLOCK_MONOTONIC.
func (s *Session) Sleep(d time.Duration) error { return clock.Sleep(s.ctx, s.l, d) }

// Read is a bracketed RAW/REALTIME/RAW read; its width is kept for the report.
func (s *Session) Read() clock.Reading {
	r := clock.Read(s.c, Reads)
	s.widths = append(s.widths, r.Width)
	return r
}

// AlignHalf waits until REALTIME is in the middle of a second (x.500),
// at least 100 ms from now, and returns that instant. MONOTONIC runs at
// REALTIME's rate, so a MONOTONIC wait lands there up to scheduling jitter.
func (s *Session) AlignHalf() (time.Time, error) {
	t := s.NextAt(500 * time.Millisecond)
	return t, s.Until(t)
}

// PhaseAt returns REALTIME−RAW at the REALTIME instant at, which must be
// in the middle of a second: it reads 40 ms before and 20 ms after and
// interpolates. Within one REALTIME second the kernel runs REALTIME at a
// constant rate against RAW, so the interpolation is exact and the
// scheduling jitter of the reads drops out.
func (s *Session) PhaseAt(at time.Time) (time.Duration, error) {
	if d := at.Add(-40 * time.Millisecond).Sub(s.c.Now()); d > 0 {
		if err := s.Sleep(d); err != nil {
			return 0, err
		}
	}
	a := s.Read()
	if err := s.Sleep(60 * time.Millisecond); err != nil {
		return 0, err
	}
	b := s.Read()
	sec := at.Unix()
	if a.Real.Unix() != sec || b.Real.Unix() != sec || !a.Real.Before(b.Real) {
		return 0, fmt.Errorf("reads at %s and %s missed the second of %s (the guest was held up)",
			a.Real.Format("15:04:05.000000"), b.Real.Format("15:04:05.000000"), at.Format("15:04:05.000"))
	}
	// REALTIME−RAW is about 1.8e18 ns, beyond float64's ns precision:
	// interpolate the small change only.
	ma, mb := a.RealMinusRaw(), b.RealMinusRaw()
	f := float64(at.Sub(a.Real)) / float64(b.Real.Sub(a.Real))
	return ma + time.Duration(math.Round(f*float64(mb-ma))), nil
}

// Add records a metric.
func (s *Session) Add(name, unit string, value, tol float64) *Metric {
	s.metrics = append(s.metrics, Metric{Name: name, Unit: unit, Value: value, Tol: tol})
	return &s.metrics[len(s.metrics)-1]
}

// Expect records a metric together with its closed-form expectation.
func (s *Session) Expect(name, unit string, value, tol, expect, expectTol float64) {
	m := s.Add(name, unit, value, tol)
	m.Expect, m.ExpectTol = &expect, expectTol
}

// us converts a duration to float µs.
func us(d time.Duration) float64 { return float64(d) / 1e3 }

// rateBetween measures REALTIME's rate against RAW, in ppm, between two
// REALTIME instants in the middle of their seconds.
func (s *Session) rateBetween(a, b time.Time) (float64, error) {
	ma, err := s.PhaseAt(a)
	if err != nil {
		return 0, err
	}
	mb, err := s.PhaseAt(b)
	if err != nil {
		return 0, err
	}
	// RAW advanced by REALTIME's advance minus the change of REALTIME−RAW.
	dm := float64(mb - ma)
	return dm / (float64(b.Sub(a)) - dm) * 1e6, nil
}

// ratePPM measures REALTIME's rate against RAW over d of MONOTONIC.
func (s *Session) ratePPM(d time.Duration) (float64, error) {
	a := s.Read()
	if err := s.Sleep(d); err != nil {
		return 0, err
	}
	b := s.Read()
	return float64(b.RealMinusRaw()-a.RealMinusRaw()) / float64(b.Raw-a.Raw) * 1e6, nil
}

// Until waits until REALTIME reaches at (on MONOTONIC, which runs at
// REALTIME's rate between steps).
func (s *Session) Until(at time.Time) error {
	if d := at.Sub(s.c.Now()); d > 0 {
		return s.Sleep(d)
	}
	return nil
}

// NextAt returns the next REALTIME instant, at least 100 ms from now, whose
// fraction of a second is frac.
func (s *Session) NextAt(frac time.Duration) time.Time {
	now := s.c.Now()
	t := now.Truncate(time.Second).Add(frac)
	for t.Sub(now) < 100*time.Millisecond {
		t = t.Add(time.Second)
	}
	return t
}
