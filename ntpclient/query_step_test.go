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
