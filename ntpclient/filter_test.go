package ntpclient

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// truthLine is a server seen from an oscillator with a frequency error:
// its phase (server − RAW) at RAW time raw.
type truthLine struct {
	phase0 time.Duration
	freq   float64 // s/s
}

func (l truthLine) at(raw time.Duration) time.Duration {
	return l.phase0 + time.Duration(l.freq*float64(raw))
}

// sample makes a sample of l at raw with the given delay, split into an
// Offset and a REALTIME − RAW that a slew keeps changing (only the sum
// matters to the filter).
func (l truthLine) sample(raw, delay, err time.Duration, rmr time.Duration) Sample {
	return Sample{Raw: raw, Delay: delay, RealMinusRaw: rmr, Offset: l.at(raw) + err - rmr, Precision: time.Microsecond}
}

// The filter must follow a phase that drifts by hundreds of ppm, and must
// not care how the offset and REALTIME − RAW split it (slewing).
func TestFilterFollowsDrift(t *testing.T) {
	for _, ppm := range []float64{-400, -50, 0, 120, 480} {
		l := truthLine{phase0: 1_780_000_000 * time.Second, freq: ppm * 1e-6}
		rng := rand.New(rand.NewPCG(1, uint64(ppm+1000)))
		var f filter
		raw := 1000 * time.Second
		var rmr time.Duration = 1_780_000_000*time.Second + 3*time.Second
		for i := 0; i < 40; i++ {
			if i < 6 {
				raw += 2 * time.Second
			} else {
				raw += 64 * time.Second
			}
			rmr -= 40 * time.Millisecond // slewing REALTIME back 40 ms per step
			extra := time.Duration(rng.ExpFloat64() * float64(2*time.Millisecond))
			// Queueing on the way out biases the offset by +extra/2.
			s := l.sample(raw, 20*time.Millisecond+extra, extra/2, rmr)
			f.add(s)
			if i < 3 {
				continue
			}
			at := raw + 30*time.Second // project forward, as the selection does
			out := f.output(at)
			err := out.Phase - l.at(at)
			bound := out.Delay/2 + out.Dispersion + out.Jitter
			if err.Abs() > bound {
				t.Fatalf("%v ppm, sample %d: error %v exceeds the filter's bound %v (freq %.1f ± %.1f ppm)",
					ppm, i, err, bound, out.Freq*1e6, out.FreqErr*1e6)
			}
			if i > 20 && err.Abs() > time.Millisecond {
				t.Errorf("%v ppm, sample %d: error %v after the fit settled", ppm, i, err)
			}
		}
		if out := f.output(raw); math.Abs(out.Freq*1e6-ppm) > 1 {
			t.Errorf("fitted %.3f ppm, want %v", out.Freq*1e6, ppm)
		}
	}
}

// A lone sample far off is a popcorn spike; two in a row are a change.
func TestFilterPopcorn(t *testing.T) {
	l := truthLine{freq: 10e-6}
	var f filter
	raw := time.Duration(0)
	next := func(err time.Duration) addResult {
		raw += 64 * time.Second
		return f.add(l.sample(raw, 10*time.Millisecond, err, 0))
	}
	for i := 0; i < 6; i++ {
		if r := next(time.Duration(i%2) * 20 * time.Microsecond); r == spike || r > addedOff {
			t.Fatalf("good sample %d: %v", i, r)
		}
	}
	if r := next(50 * time.Millisecond); r != spike {
		t.Fatalf("spike: %v", r)
	}
	if r := next(0); r != addedFit {
		t.Fatalf("after a spike a good sample is %v", r)
	}
	if r := next(50 * time.Millisecond); r != spike {
		t.Fatalf("second spike: %v", r)
	}
	if r := next(50 * time.Millisecond); r == spike {
		t.Fatal("a step (two far samples in a row) must be accepted")
	}
	if f.spikes != 2 {
		t.Errorf("%d spikes counted", f.spikes)
	}
	// Not newer than the newest stage: used once only.
	if r := f.add(l.sample(raw, 10*time.Millisecond, 0, 0)); r != stale {
		t.Errorf("repeated sample: %v", r)
	}
}

// The chosen sample is the one with the least delay when ages are alike,
// and its offset error is within its delay.
func TestFilterPrefersLowDelay(t *testing.T) {
	l := truthLine{phase0: 5 * time.Second}
	var f filter
	delays := []time.Duration{30, 12, 50, 45, 31, 29} // ms
	for i, d := range delays {
		d *= time.Millisecond
		// Worst case: all the extra delay on one side.
		f.add(l.sample(time.Duration(i+1)*time.Second, d, (d-10*time.Millisecond)/2, 0))
	}
	out := f.output(7 * time.Second)
	if out.Delay != 12*time.Millisecond {
		t.Errorf("chose delay %v, want 12ms", out.Delay)
	}
	if err := out.Phase - l.at(7*time.Second); err.Abs() > 2*time.Millisecond {
		t.Errorf("error %v", err)
	}
}

func TestFilterRejectsNonsense(t *testing.T) {
	var f filter
	for _, s := range []Sample{
		{Raw: -1},
		{Raw: time.Second, Delay: -time.Millisecond},
		{Raw: time.Second, Delay: 17 * time.Second},
		{Raw: time.Second, Offset: math.MaxInt64},
		{Raw: time.Second, Precision: -1},
	} {
		if r := f.add(s); r != invalid {
			t.Errorf("%+v: %v", s, r)
		}
	}
}
