package clock_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
)

const ms = time.Millisecond

func newDriver(t *testing.T) (*simclock.World, clock.Driver) {
	t.Helper()
	w := simclock.New(simclock.Config{Seed: 1})
	return w, clock.NewDriver(w)
}

// raw reads the struct timex as the kernel fills it, to see the units.
func raw(t *testing.T, w *simclock.World) clock.Timex {
	t.Helper()
	var tx clock.Timex
	if _, err := w.Adjtimex(&tx); err != nil {
		t.Fatal(err)
	}
	return tx
}

func TestDriverReadAtBoot(t *testing.T) {
	_, d := newDriver(t)
	k, err := d.Read()
	if err != nil {
		t.Fatal(err)
	}
	if k.Tick != clock.NominalTick || k.FrequencyPPM != 0 || k.PLLOffset != 0 || k.RatePPM() != 0 {
		t.Errorf("boot: tick %d freq %v PLL %v", k.Tick, k.FrequencyPPM, k.PLLOffset)
	}
	if !k.Status.Unsync || k.Status.PLL || k.Synchronized() || k.State != clock.TimeError {
		t.Errorf("boot: status %v state %v", k.Status.Names(), k.State)
	}
	if k.MaxError != 16*time.Second || k.EstError != 16*time.Second || k.TolerancePPM != 500 {
		t.Errorf("boot: maxerror %v esterror %v tolerance %v", k.MaxError, k.EstError, k.TolerancePPM)
	}
}

func TestDriverFrequencyTaken(t *testing.T) {
	for _, tc := range []struct {
		ppm, took float64
	}{
		{12.5, 12.5},
		{-3.25, -3.25},
		{1.0 / 3, float64(clock.PPMToFreq(1.0/3)) / clock.FreqScale}, // 2^-16 ppm steps
		{600, 500}, // the kernel clamps to ±500 ppm without an error
		{-700, -500},
		{0, 0},
	} {
		w, d := newDriver(t)
		took, err := d.SetFrequency(tc.ppm)
		if err != nil {
			t.Fatal(err)
		}
		if took != tc.took {
			t.Errorf("SetFrequency(%v) took %v, want %v", tc.ppm, took, tc.took)
		}
		if f := raw(t, w).Freq; f != clock.PPMToFreq(tc.took) {
			t.Errorf("SetFrequency(%v): kernel freq %d, want %d", tc.ppm, f, clock.PPMToFreq(tc.took))
		}
	}
}

func TestDriverTick(t *testing.T) {
	for _, tc := range []struct {
		tick    int64
		ok      bool
		ratePPM float64
	}{
		{9000, true, -100000},
		{11000, true, 100000},
		{10010, true, 1000},
		{8999, false, 0},
		{11001, false, 0},
	} {
		w, d := newDriver(t)
		k, err := d.SetTick(tc.tick)
		if !tc.ok {
			if err == nil || !errors.Is(err, syscall.EINVAL) || !strings.Contains(err.Error(), "8999") && !strings.Contains(err.Error(), "11001") {
				t.Errorf("SetTick(%d): error %v, want EINVAL naming the tick", tc.tick, err)
			}
			if tick := raw(t, w).Tick; tick != clock.NominalTick {
				t.Errorf("SetTick(%d) refused but tick is %d", tc.tick, tick)
			}
			continue
		}
		if err != nil || k.Tick != tc.tick || k.RatePPM() != tc.ratePPM {
			t.Errorf("SetTick(%d) = tick %d rate %v, %v", tc.tick, k.Tick, k.RatePPM(), err)
		}
	}
	_, d := newDriver(t)
	k, err := d.SetTickFrequency(9180, -250)
	if err != nil || k.Tick != 9180 || k.FrequencyPPM != -250 || k.RatePPM() != -82250 || k.TickPPM() != -82000 {
		t.Errorf("SetTickFrequency: %+v, %v", k, err)
	}
}

// The PLL offset is read and written in ns with STA_NANO and in µs
// without; the driver's durations are the same either way.
func TestDriverPLLOffsetUnits(t *testing.T) {
	w, d := newDriver(t)
	st := clock.PLLMode(false)
	k, err := d.Apply(clock.Change{Status: &st, SetTimeConstant: true, SetPLLOffset: true, PLLOffset: 300 * ms})
	if err != nil {
		t.Fatal(err)
	}
	if !k.Status.PLL || !k.Status.FreqHold || !k.Status.Nano || !k.Status.Unsync || k.TimeConstant != 0 {
		t.Errorf("PLL mode: status %v constant %d", k.Status.Names(), k.TimeConstant)
	}
	if k.PLLOffset != 300*ms {
		t.Errorf("armed %v, want 300ms", k.PLLOffset)
	}
	if tx := raw(t, w); tx.Offset != 3e8 || tx.Status&clock.StaNano == 0 {
		t.Errorf("kernel offset %d status %v, want 3e8 ns", tx.Offset, clock.StatusNames(tx.Status))
	}
	// Switch to µs: the same offset, now reported in µs.
	st.Nano = false
	k, err = d.Apply(clock.Change{Status: &st})
	if err != nil {
		t.Fatal(err)
	}
	if k.Status.Nano || k.PLLOffset != 300*ms {
		t.Errorf("µs mode: nano %v offset %v", k.Status.Nano, k.PLLOffset)
	}
	if tx := raw(t, w); tx.Offset != 300000 {
		t.Errorf("kernel offset %d, want 300000 µs", tx.Offset)
	}
	// Armed in µs mode: rounded to µs, kept in µs mode.
	k, err = d.Apply(clock.Change{Status: &st, SetPLLOffset: true, PLLOffset: -2*ms - 400})
	if err != nil || k.Status.Nano || k.PLLOffset != -2*ms {
		t.Errorf("µs arm: %v nano %v, %v", k.PLLOffset, k.Status.Nano, err)
	}
	if tx := raw(t, w); tx.Offset != -2000 {
		t.Errorf("kernel offset %d, want -2000 µs", tx.Offset)
	}
	// ArmPLLOffset alone goes to ns mode; the kernel keeps the offset
	// scaled by HZ and reads it back within a nanosecond.
	armed, sec, err := d.ArmPLLOffset(123456789)
	if err != nil || (armed-123456789).Abs() > 1 || sec != raw(t, w).Time.Sec || raw(t, w).Status&clock.StaNano == 0 {
		t.Errorf("ArmPLLOffset = %v at %d, %v", armed, sec, err)
	}
	// The kernel clamps to ±0.5 s and says what it took.
	if armed, _, err := d.ArmPLLOffset(-2 * time.Second); err != nil || armed != -clock.MaxPhase {
		t.Errorf("ArmPLLOffset(-2s) armed %v, %v; want -500ms", armed, err)
	}
	if k, err := d.CancelPLLOffset(); err != nil || k.PLLOffset != 0 {
		t.Errorf("CancelPLLOffset left %v, %v", k.PLLOffset, err)
	}
}

func TestDriverTimeUnits(t *testing.T) {
	w, d := newDriver(t)
	for _, nano := range []bool{false, true} {
		st := clock.NTPStatus{Unsync: true, Nano: nano}
		if _, err := d.Apply(clock.Change{Status: &st}); err != nil {
			t.Fatal(err)
		}
		tx := raw(t, w)
		k, err := d.Read()
		if err != nil {
			t.Fatal(err)
		}
		want := time.Unix(tx.Time.Sec, tx.Time.Usec*1000)
		if nano {
			want = time.Unix(tx.Time.Sec, tx.Time.Usec)
		}
		// Virtual time stands still between the two reads.
		if !k.Time.Equal(want) {
			t.Errorf("nano %v: Time %v, want %v", nano, k.Time, want)
		}
	}
}

func TestDriverSingleshot(t *testing.T) {
	_, d := newDriver(t)
	steps := []struct {
		name string
		f    func() (time.Duration, error)
		want time.Duration
	}{
		{"arm 2 ms", func() (time.Duration, error) { return d.ArmSingleshot(2 * ms) }, 0},
		{"remaining", d.SingleshotRemaining, 2 * ms},
		{"replace with -1.0004 ms (rounded)", func() (time.Duration, error) { return d.ArmSingleshot(-ms - 400) }, 2 * ms},
		{"cancel", d.CancelSingleshot, -ms},
		{"nothing left", d.SingleshotRemaining, 0},
	}
	for _, s := range steps {
		got, err := s.f()
		if err != nil || got != s.want {
			t.Errorf("%s: %v, %v; want %v", s.name, got, err, s.want)
		}
	}
}

func TestDriverStep(t *testing.T) {
	for _, off := range []time.Duration{-300 * ms, 54 * time.Second, -54*time.Second - 1, time.Nanosecond} {
		w, d := newDriver(t)
		before := w.ClockError()
		st := clock.NTPStatus{Unsync: false}
		if _, err := d.Apply(clock.Change{Status: &st, SetErrors: true, MaxError: ms}); err != nil {
			t.Fatal(err)
		}
		k, err := d.Step(off)
		if err != nil {
			t.Fatal(err)
		}
		if got := w.ClockError() - before; got != off {
			t.Errorf("Step(%v) moved the clock by %v", off, got)
		}
		// Pitfall 8: a step leaves the clock unsynchronized, maxerror 16 s, ns units.
		if !k.Status.Unsync || k.MaxError != 16*time.Second || !k.Status.Nano {
			t.Errorf("after Step(%v): status %v maxerror %v", off, k.Status.Names(), k.MaxError)
		}
	}
}

func TestDriverErrorsRoundedUpAndCapped(t *testing.T) {
	for _, tc := range []struct {
		set, want time.Duration
	}{
		{1500 * time.Nanosecond, 2 * time.Microsecond},
		{ms, ms},
		{0, 0},
		{-ms, 0},
		{time.Hour, 16 * time.Second},
	} {
		_, d := newDriver(t)
		k, err := d.Apply(clock.Change{SetErrors: true, MaxError: tc.set, EstError: tc.set})
		if err != nil || k.MaxError != tc.want || k.EstError != tc.want {
			t.Errorf("errors %v: kernel holds %v/%v, want %v (%v)", tc.set, k.MaxError, k.EstError, tc.want, err)
		}
	}
}

// SetSync and ClearLeap change their bits only: bits the driver does not
// name (STA_FLL here) and the PLL stay.
func TestDriverSyncAndLeapKeepOtherBits(t *testing.T) {
	w, d := newDriver(t)
	if _, err := w.Adjtimex(&clock.Timex{Modes: clock.AdjStatus, Status: clock.StaPLL | clock.StaFLL | clock.StaIns | clock.StaUnsync}); err != nil {
		t.Fatal(err)
	}
	k, err := d.SetSync(true, 2*ms, ms)
	if err != nil {
		t.Fatal(err)
	}
	if k.Status.Unsync || !k.Synchronized() || k.MaxError != 2*ms || k.EstError != ms {
		t.Errorf("SetSync(true): status %v state %v maxerror %v", k.Status.Names(), k.State, k.MaxError)
	}
	if want := clock.StaPLL | clock.StaFLL | clock.StaIns; raw(t, w).Status != want {
		t.Errorf("SetSync: kernel status %v, want %v", clock.StatusNames(raw(t, w).Status), clock.StatusNames(want))
	}
	k, err = d.ClearLeap()
	if err != nil || k.Status.LeapInsert || k.Status.LeapDelete || k.State == clock.TimeIns {
		t.Errorf("ClearLeap: status %v state %v, %v", k.Status.Names(), k.State, err)
	}
	if want := clock.StaPLL | clock.StaFLL; raw(t, w).Status != want || k.Status.Bits() != want {
		t.Errorf("ClearLeap: kernel status %v, decoded %v, want %v", clock.StatusNames(raw(t, w).Status), k.Status.Names(), clock.StatusNames(want))
	}
	k, err = d.SetSync(false, time.Hour, time.Hour)
	if err != nil || !k.Status.Unsync || k.Synchronized() || k.MaxError != 16*time.Second || !k.Status.PLL {
		t.Errorf("SetSync(false): status %v maxerror %v, %v", k.Status.Names(), k.MaxError, err)
	}
}

func TestDriverNoPermission(t *testing.T) {
	w := simclock.New(simclock.Config{Seed: 1})
	var errs []error
	w.Spawn("user", false, func(ctx context.Context, p *simclock.Process) error {
		d := clock.NewDriver(p)
		if _, err := d.Read(); err != nil {
			t.Errorf("Read without CAP_SYS_TIME: %v", err)
		}
		if _, err := d.SingleshotRemaining(); err != nil {
			t.Errorf("SingleshotRemaining without CAP_SYS_TIME: %v", err)
		}
		_, err1 := d.SetFrequency(1)
		_, err2 := d.ArmSingleshot(ms)
		_, err3 := d.Step(ms)
		errs = append(errs, err1, err2, err3)
		return nil
	})
	w.Run(time.Second)
	if len(errs) != 3 {
		t.Fatalf("process did not run")
	}
	for i, err := range errs {
		if !clock.ErrPermission(err) {
			t.Errorf("write %d without CAP_SYS_TIME: %v, want a permission error", i, err)
		}
	}
}

// A Change is one adjtimex call: the Slewer arms the PLL offset with the
// sync status and error bounds together, so no reader sees one without
// the other.
func TestDriverApplyIsOneCall(t *testing.T) {
	w := simclock.New(simclock.Config{Seed: 1})
	var k clock.KernelState
	var calls int
	var err error
	w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		d := clock.NewDriver(p)
		st := clock.PLLMode(true)
		before := p.Syscalls()
		k, err = d.Apply(clock.Change{Status: &st, SetTimeConstant: true, SetPLLOffset: true, PLLOffset: 40 * ms,
			SetErrors: true, MaxError: 3 * ms, EstError: ms, Tick: 10010, SetFrequency: true, FrequencyPPM: -7})
		calls = p.Syscalls() - before
		return nil
	})
	w.Run(time.Second)
	if err != nil || calls != 1 {
		t.Fatalf("Apply: %d adjtimex calls, %v", calls, err)
	}
	if k.Status != clock.PLLMode(true) || k.PLLOffset != 40*ms || k.MaxError != 3*ms || k.EstError != ms ||
		k.Tick != 10010 || k.FrequencyPPM != -7 || k.TimeConstant != 0 || !k.Synchronized() {
		t.Errorf("after one Apply: %+v", k)
	}
}
