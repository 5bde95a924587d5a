package discipline_test

import (
	"math"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/discipline"
)

func TestBaseFrequency(t *testing.T) {
	for _, tc := range []struct {
		servo, sigma, start, want float64
	}{
		{12, 0.01, 3, 12}, // well known: the servo's
		{12, 0.5, 3, 12},  // at the threshold: trusted
		{12, 0.51, 3, 3},  // not yet: the one slewd started with
		{12, math.Inf(1), 3, 3},
	} {
		if got := discipline.BaseFrequency(tc.servo, tc.sigma, tc.start); got != tc.want {
			t.Errorf("BaseFrequency(%v ± %v, start %v) = %v, want %v", tc.servo, tc.sigma, tc.start, got, tc.want)
		}
		if discipline.FrequencyTrusted(tc.sigma) != (tc.want == tc.servo) {
			t.Errorf("FrequencyTrusted(%v) disagrees with BaseFrequency", tc.sigma)
		}
	}
}

func TestStartFrequency(t *testing.T) {
	kernel := func(tick int64, ppm float64) *clock.KernelState {
		return &clock.KernelState{Tick: tick, FrequencyPPM: ppm}
	}
	file := adjtime.Drift{FreqPPM: -7}
	for _, tc := range []struct {
		name    string
		known   bool
		kernel  *clock.KernelState
		journal bool
		want    float64
	}{
		{"the drift file wins", true, kernel(clock.NominalTick, 20), false, -7},
		{"no file: the kernel's compensation", false, kernel(clock.NominalTick, 20), false, 20},
		{"no file, a biased tick: not a compensation", false, kernel(clock.NominalTick+1000, 20), false, 0},
		{"no file, a slew of ours under way", false, kernel(clock.NominalTick, 20), true, 0},
		{"no file, the kernel unreadable", false, nil, false, 0},
	} {
		d := file
		if !tc.known {
			d = adjtime.Drift{}
		}
		if got := discipline.StartFrequency(d, tc.known, tc.kernel, tc.journal); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("%s: %v ppm, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOutOfBounds(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		out    bool
	}{{999 * time.Second, false}, {1000 * time.Second, false}, {1001 * time.Second, true}, {-1001 * time.Second, true}, {0, false}} {
		if got := discipline.OutOfBounds(tc.offset, 1000*time.Second); got != tc.out {
			t.Errorf("OutOfBounds(%v) = %v", tc.offset, got)
		}
	}
}

func TestPollLimit(t *testing.T) {
	if d := discipline.PollLimit(0); d != 0 {
		t.Errorf("no wander known: limit %v, want none", d)
	}
	// √(q·τ³/3) = 2.5 µs at the limit; more wander, shorter polls.
	prev := time.Duration(math.MaxInt64)
	for _, w := range []float64{1e-11, 1e-10, 1e-9, 1e-8} {
		d := discipline.PollLimit(w)
		tau := d.Seconds()
		if drift := w * math.Sqrt(tau*tau*tau/3); math.Abs(drift-discipline.PollDrift) > 1e-9 {
			t.Errorf("wander %g: limit %v lets the clock drift %g s unseen", w, d, drift)
		}
		if d >= prev {
			t.Errorf("wander %g: limit %v not below %v", w, d, prev)
		}
		prev = d
	}
}

func TestSlewTime(t *testing.T) {
	if d := discipline.SlewTime(-54*time.Second, 100500); math.Abs(d.Seconds()-537.3) > 0.1 {
		t.Errorf("54 s at the kernel's limit: %v", d)
	}
	if d := discipline.SlewTime(time.Second, 500); d != 2000*time.Second {
		t.Errorf("1 s at 500 ppm: %v", d)
	}
}

func TestHighWaterMark(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// The clock reads now, 2 s behind (NTP sign +), error 1 ms: true time
	// is past now + 2 s - 1 ms.
	if got := discipline.HighWaterMark(now, 2*time.Second, time.Millisecond); !got.Equal(now.Add(1999 * time.Millisecond)) {
		t.Errorf("mark %v", got)
	}
}

func TestAnnounceSlew(t *testing.T) {
	for _, tc := range []struct {
		was, is bool
		rem     time.Duration
		want    bool
	}{
		{false, true, time.Second, true},
		{false, true, -time.Second, true},
		{false, true, 5 * time.Millisecond, false}, // a small trim is not news
		{true, true, time.Second, false},           // already said
		{false, false, time.Second, false},
	} {
		if got := discipline.AnnounceSlew(tc.was, tc.is, tc.rem); got != tc.want {
			t.Errorf("AnnounceSlew(%v, %v, %v) = %v", tc.was, tc.is, tc.rem, got)
		}
	}
}
