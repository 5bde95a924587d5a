package ntpclient

import (
	"testing"
	"time"
)

func TestLeapShift(t *testing.T) {
	m := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) // ends 2026-12-31
	at := func(d time.Duration) time.Time { return m.Add(d) }
	for _, tc := range []struct {
		name          string
		leap          Leap
		before, after time.Time
		want          time.Duration
	}{
		{"insert: not yet", LeapInsert, at(-time.Hour), at(-time.Millisecond), 0},
		{"insert: at 23:59:60", LeapInsert, at(-time.Hour), m, -time.Second},
		{"insert: after", LeapInsert, at(-time.Hour), at(time.Hour), -time.Second},
		{"insert: both after (already past)", LeapInsert, at(time.Hour), at(2 * time.Hour), 0},
		{"insert: a midnight that ends no month", LeapInsert, at(-48 * time.Hour), at(-23 * time.Hour), 0},
		{"insert: announced all month", LeapInsert, at(-20 * 24 * time.Hour), at(time.Second), -time.Second},
		{"insert: other time zone, same instant", LeapInsert, at(-time.Hour).In(time.FixedZone("X", 5*3600)), at(time.Second).In(time.FixedZone("Y", -8*3600)), -time.Second},
		{"delete: before 23:59:59", LeapDelete, at(-time.Hour), at(-1001 * time.Millisecond), 0},
		{"delete: at 23:59:59", LeapDelete, at(-time.Hour), at(-time.Second), time.Second},
		{"delete: after", LeapDelete, at(-time.Hour), at(time.Minute), time.Second},
		{"delete: past", LeapDelete, at(time.Second), at(time.Minute), 0},
		{"none announced", LeapNone, at(-time.Hour), at(time.Hour), 0},
		{"unsynchronized", LeapNotInSync, at(-time.Hour), at(time.Hour), 0},
	} {
		if got := LeapShift(tc.leap, tc.before, tc.after); got != tc.want {
			t.Errorf("%s: LeapShift(%v, %v, %v) = %v, want %v", tc.name, tc.leap, tc.before, tc.after, got, tc.want)
		}
	}
}

// A server's samples after the leap it announced continue its filter's
// prediction, moved by the leap: no spike, no jump in the fit.
func TestFilterLeap(t *testing.T) {
	m := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		leap  Leap
		shift time.Duration
	}{{LeapInsert, -time.Second}, {LeapDelete, time.Second}} {
		// True time − RAW, with RAW 5 days old at the leap and a 20 ppm error.
		l := truthLine{phase0: time.Duration(m.UnixNano()) - 5*24*time.Hour, freq: 20e-6}
		rawLeap := 5*24*time.Hour - time.Duration(20e-6*float64(5*24*time.Hour))
		var f filter
		for i := -10; i <= 10; i++ {
			raw := rawLeap + time.Duration(i)*64*time.Second + 7*time.Second
			s := l.sample(raw, 10*time.Millisecond, time.Duration(i%3)*10*time.Microsecond, 0)
			if raw < rawLeap {
				s.Leap = tc.leap
			} else {
				s.Offset += tc.shift // the server serves UTC
			}
			f.leap(raw)
			if r := f.add(s); r == spike || r == addedOff {
				t.Fatalf("%v: sample %d at leap%+v: %v", tc.leap, i, raw-rawLeap, r)
			}
			out := f.output(raw)
			want := l.at(raw)
			if raw >= rawLeap {
				want += tc.shift
			}
			if err := out.Phase - want; err.Abs() > 100*time.Microsecond {
				t.Fatalf("%v: sample %d: filtered phase off by %v", tc.leap, i, err)
			}
			if i > -6 && (out.Freq*1e6 < 19 || out.Freq*1e6 > 21) {
				t.Fatalf("%v: sample %d: fitted %.2f ppm, want 20", tc.leap, i, out.Freq*1e6)
			}
		}
		if f.leap(rawLeap+time.Hour) != 0 {
			t.Errorf("%v: the leap applied twice", tc.leap)
		}
	}
}
