package ntpclient

import (
	"testing"
	"time"

	"slewd/clock"
)

func TestSteppedDuring(t *testing.T) {
	at := func(raw time.Duration, rmr time.Duration) clock.Reading {
		return clock.Reading{Raw: raw, Real: time.Unix(0, int64(raw+rmr)), Width: time.Microsecond}
	}
	base := 1_700_000_000 * time.Second
	ms := time.Millisecond
	for _, tt := range []struct {
		name string
		a, b clock.Reading
		want bool
	}{
		{"nothing", at(0, base), at(10*ms, base), false},
		{"slewing at 10 %", at(0, base), at(10*ms, base+ms), false},
		{"slewing at -10 %", at(0, base), at(10*ms, base-ms), false},
		{"a 5 s step back", at(0, base), at(10*ms, base-5*time.Second), true},
		{"a 2 ms step forward in 10 ms", at(0, base), at(10*ms, base+2*ms), true},
		{"RAW went back", at(10*ms, base), at(0, base), true},
	} {
		if got := steppedDuring(tt.a, tt.b); got != tt.want {
			t.Errorf("%s: steppedDuring = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestStampsWithin(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	a := clock.Reading{Real: base, Width: time.Microsecond}
	b := clock.Reading{Real: base.Add(10 * time.Millisecond), Width: time.Microsecond}
	ms := time.Millisecond
	for _, tt := range []struct {
		name   string
		t1, t4 time.Time
		want   bool
	}{
		{"inside", base.Add(ms), base.Add(9 * ms), true},
		{"t4 stamped while the clock was back 5 s", base.Add(ms), base.Add(9*ms - 5*time.Second), false},
		{"t1 stamped while the clock was back", base.Add(ms - 5*time.Second), base.Add(9 * ms), false},
		{"t4 after the reading after", base.Add(ms), base.Add(20 * ms), false},
		{"t4 before t1", base.Add(5 * ms), base.Add(4 * ms), false},
	} {
		if got := stampsWithin(tt.t1, tt.t4, a, b); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
