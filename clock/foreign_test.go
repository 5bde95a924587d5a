package clock

import (
	"testing"
	"time"
)

func TestForeignChanges(t *testing.T) {
	// What slewd left: a 10 % slow tick, 12 ppm, synchronized, a 30 ms
	// singleshot, maxerror 1 ms.
	last := KernelSnapshot{
		Timex: Timex{Tick: 9000, Freq: 12 << 16, Status: 0, MaxError: 1000, EstError: 100, Constant: 2,
			Tolerance: 32768000, Precision: 1},
		Singleshot: 30000, Raw: 100 * time.Second,
	}
	// What the kernel alone makes of it 10 s later.
	kernelOnly := func(d time.Duration) KernelSnapshot {
		s := last
		s.Raw += d
		n := int64(d / time.Second)
		s.Singleshot = max(last.Singleshot-SingleshotRate*n, 0)
		s.Timex.MaxError = min(last.Timex.MaxError+MaxErrorGrowth*n, MaxErrorLimit)
		if s.Timex.MaxError == MaxErrorLimit {
			s.Timex.Status |= StaUnsync
		}
		return s
	}
	change := func(d time.Duration, f func(s *KernelSnapshot)) KernelSnapshot {
		s := kernelOnly(d)
		f(&s)
		return s
	}
	const s10 = 10 * time.Second
	for _, tc := range []struct {
		name string
		now  KernelSnapshot
		want Foreign
	}{
		{"nothing, 10 s later", kernelOnly(s10), 0},
		{"nothing, at once", kernelOnly(0), 0},
		{"nothing, 9 h later: maxerror capped, UNSYNC by the kernel", kernelOnly(9 * time.Hour), 0},
		{"VMware Tools writes tick 10000", change(s10, func(s *KernelSnapshot) { s.Timex.Tick = 10000 }), ForeignTick},
		{"another daemon's frequency", change(s10, func(s *KernelSnapshot) { s.Timex.Freq = -3 << 16 }), ForeignFreq},
		{"ntpdate adjtime(0.2 s) replaces the singleshot", change(s10, func(s *KernelSnapshot) { s.Singleshot = 200000 }), ForeignSingleshot},
		{"adjtime(-1 ms): sign flipped", change(s10, func(s *KernelSnapshot) { s.Singleshot = -1000 }), ForeignSingleshot},
		{"adjtime(0) cancels it early", change(s10, func(s *KernelSnapshot) { s.Singleshot = 0 }), ForeignSingleshot},
		{"a daemon sets STA_PLL and an offset", change(s10, func(s *KernelSnapshot) {
			s.Timex.Status |= StaPLL
			s.Timex.Offset = 4000
		}), ForeignStatus | ForeignPLL},
		{"time constant", change(s10, func(s *KernelSnapshot) { s.Timex.Constant = 6 }), ForeignPLL},
		{"leap second announced", change(s10, func(s *KernelSnapshot) { s.Timex.Status |= StaIns }), ForeignLeap},
		{"maxerror refreshed by someone", change(s10, func(s *KernelSnapshot) { s.Timex.MaxError = 0 }), ForeignMaxError},
		{"TAI offset", change(s10, func(s *KernelSnapshot) { s.Timex.TAI = 37 }), ForeignTAI},
		{"a step: ntp_clear", change(s10, func(s *KernelSnapshot) {
			s.Timex.Status |= StaUnsync
			s.Timex.MaxError, s.Timex.EstError = MaxErrorLimit, MaxErrorLimit
			s.Singleshot = 0
		}), NTPCleared},
		{"a step, and VMware's tick", change(s10, func(s *KernelSnapshot) {
			s.Timex.Status |= StaUnsync
			s.Timex.MaxError, s.Timex.EstError = MaxErrorLimit, MaxErrorLimit
			s.Singleshot = 0
			s.Timex.Tick = 10000
		}), NTPCleared | ForeignTick},
	} {
		if got := ForeignChanges(last, tc.now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if s := (ForeignTick | NTPCleared).String(); s != "tick|ntp-cleared" {
		t.Errorf("String = %q", s)
	}
}

// TestForeignChangesDrainWindow: a singleshot read any time within a
// second boundary either side of the drain is not foreign; one 500 µs
// chunk more than the window allows is.
func TestForeignChangesDrainWindow(t *testing.T) {
	last := KernelSnapshot{Timex: Timex{Tick: NominalTick, Status: StaUnsync, MaxError: MaxErrorLimit, EstError: MaxErrorLimit},
		Singleshot: -100000, Raw: time.Second}
	for ms := 0; ms < 20000; ms += 137 {
		d := time.Duration(ms) * time.Millisecond
		now := last
		now.Raw += d
		for _, n := range []int64{int64(d / time.Second), int64(d/time.Second) + 1} {
			now.Singleshot = min(last.Singleshot+SingleshotRate*n, 0)
			if f := ForeignChanges(last, now); f != 0 {
				t.Errorf("after %v, %d chunks: %v", d, n, f)
			}
		}
		_, hi := secondsCrossed(d)
		now.Singleshot = last.Singleshot + SingleshotRate*(hi+1)
		if f := ForeignChanges(last, now); f != ForeignSingleshot {
			t.Errorf("after %v, %d chunks: %v, want singleshot", d, hi+1, f)
		}
	}
}
