package clock

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestCompareOffsets(t *testing.T) {
	const s = time.Second
	base := Offsets{Raw: 100 * s, Mono: 100 * s, RealMinusMono: 1_700_000_000 * s, BootMinusMono: 3 * s, HasBoot: true, Width: 200}
	with := func(f func(o *Offsets)) Offsets { o := base; f(&o); return o }
	for _, tc := range []struct {
		name           string
		after          Offsets
		step, suspend  time.Duration
		stepped, slept bool
	}{
		{"nothing (10 s of slewing at 10 %)", with(func(o *Offsets) { o.Raw += 10 * s; o.Mono += 11 * s }), 0, 0, false, false},
		{"step forward 1 ns", with(func(o *Offsets) { o.RealMinusMono++ }), 1, 0, false, false},
		{"step forward 1 µs", with(func(o *Offsets) { o.RealMinusMono += time.Microsecond }), time.Microsecond, 0, true, false},
		{"step back 1.5 s", with(func(o *Offsets) { o.RealMinusMono -= 1500 * time.Millisecond }), -1500 * time.Millisecond, 0, true, false},
		{"leap second inserted", with(func(o *Offsets) { o.RealMinusMono -= s }), -s, 0, true, false},
		{"suspend 1 h", with(func(o *Offsets) { o.RealMinusMono += time.Hour; o.BootMinusMono += time.Hour }), 0, time.Hour, false, true},
		{"suspend 1 h, RTC 0.7 s off", with(func(o *Offsets) { o.RealMinusMono += time.Hour + 700*time.Millisecond; o.BootMinusMono += time.Hour }),
			700 * time.Millisecond, time.Hour, true, true},
		{"no BOOTTIME: a resume looks like a step", with(func(o *Offsets) { o.HasBoot = false; o.BootMinusMono = 0; o.RealMinusMono += time.Hour }),
			time.Hour, 0, true, false},
	} {
		ch := CompareOffsets(base, tc.after)
		if ch.Step != tc.step || ch.Suspend != tc.suspend || ch.Stepped() != tc.stepped || ch.Suspended() != tc.slept {
			t.Errorf("%s: %+v (%v), want step %v suspend %v (stepped %v, suspended %v)",
				tc.name, ch, ch, tc.step, tc.suspend, tc.stepped, tc.slept)
		}
		if ch.None() != (!tc.stepped && !tc.slept) {
			t.Errorf("%s: None = %v", tc.name, ch.None())
		}
	}
	if ch := CompareOffsets(base, with(func(o *Offsets) { o.Raw += 10 * s; o.Mono += 11 * s })); ch.Slewed != s || ch.Elapsed != 10*s {
		t.Errorf("slewed %v over %v, want 1 s over 10 s", ch.Slewed, ch.Elapsed)
	}
}

// TestCompareOffsetsProperty: whatever slewing and read noise within the
// brackets do, a step and a suspend are recovered within Tol.
func TestCompareOffsetsProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 10000; i++ {
		w0, w1 := time.Duration(r.IntN(100000)), time.Duration(r.IntN(100000))
		noise := func(w time.Duration) time.Duration { return time.Duration(r.Int64N(int64(w)+1)) - w/2 }
		step := time.Duration(r.Int64N(2e10) - 1e10)
		sleep := time.Duration(0)
		if r.IntN(2) == 0 {
			sleep = time.Duration(r.Int64N(1e13))
		}
		elapsed := time.Duration(r.Int64N(1e12))
		slew := time.Duration(float64(elapsed) * (r.Float64()*0.2 - 0.1))
		before := Offsets{Raw: 5e9, Mono: 6e9, RealMinusMono: 1.7e18 + noise(w0), BootMinusMono: 1e9 + noise(w0), HasBoot: true, Width: w0}
		after := Offsets{Raw: before.Raw + elapsed, Mono: before.Mono + elapsed + slew,
			RealMinusMono: 1.7e18 + step + sleep + noise(w1), BootMinusMono: 1e9 + sleep + noise(w1), HasBoot: true, Width: w1}
		ch := CompareOffsets(before, after)
		if d := ch.Step - step; d > ch.Tol || d < -ch.Tol {
			t.Fatalf("step %v measured %v (tol %v)", step, ch.Step, ch.Tol)
		}
		if d := ch.Suspend - sleep; d > ch.Tol || d < -ch.Tol {
			t.Fatalf("suspend %v measured %v (tol %v)", sleep, ch.Suspend, ch.Tol)
		}
		if ch.Slewed != slew {
			t.Fatalf("slewed %v measured %v", slew, ch.Slewed)
		}
	}
}
