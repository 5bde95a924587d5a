package discipline_test

import (
	"testing"
	"time"

	"slewd/discipline"
	"slewd/ntpclient"
)

func TestPlanLeap(t *testing.T) {
	m := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	ins := discipline.LeapPlan{At: m, Shift: -time.Second}
	del := discipline.LeapPlan{At: m.Add(-time.Second), Shift: time.Second}
	for _, tc := range []struct {
		name string
		leap ntpclient.Leap
		now  time.Time
		done time.Time
		want discipline.LeapPlan
		ok   bool
	}{
		{"insert: a day ahead", ntpclient.LeapInsert, m.Add(-24 * time.Hour), time.Time{}, ins, true},
		{"insert: a second ahead", ntpclient.LeapInsert, m.Add(-time.Second), time.Time{}, ins, true},
		{"insert: more than a day ahead", ntpclient.LeapInsert, m.Add(-25 * time.Hour), time.Time{}, discipline.LeapPlan{}, false},
		{"insert: announced all month, not yet", ntpclient.LeapInsert, m.Add(-10 * 24 * time.Hour), time.Time{}, discipline.LeapPlan{}, false},
		{"insert: in the repeated second, taken", ntpclient.LeapInsert, m.Add(-500 * time.Millisecond), m, discipline.LeapPlan{}, false},
		{"insert: just after, still announced", ntpclient.LeapInsert, m.Add(time.Second), m, discipline.LeapPlan{}, false},
		{"insert: other zone", ntpclient.LeapInsert, m.Add(-time.Hour).In(time.FixedZone("X", 9*3600)), time.Time{}, ins, true},
		{"insert: last year's taken", ntpclient.LeapInsert, m.Add(-time.Hour), m.AddDate(-1, 0, 0), ins, true},
		{"delete", ntpclient.LeapDelete, m.Add(-time.Hour), time.Time{}, del, true},
		{"delete: taken", ntpclient.LeapDelete, m.Add(time.Millisecond), m.Add(-time.Second), discipline.LeapPlan{}, false},
		{"none", ntpclient.LeapNone, m.Add(-time.Hour), time.Time{}, discipline.LeapPlan{}, false},
		{"unsynchronized", ntpclient.LeapNotInSync, m.Add(-time.Hour), time.Time{}, discipline.LeapPlan{}, false},
	} {
		got, ok := discipline.PlanLeap(tc.leap, tc.now, tc.done)
		if ok != tc.ok || got != tc.want {
			t.Errorf("%s: PlanLeap = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if got, want := ins.Name(), "2026-12-31 23:59:60 UTC"; got != want {
		t.Errorf("insertion named %q, want %q", got, want)
	}
	if got, want := del.Name(), "2026-12-31 23:59:59 UTC (deleted)"; got != want {
		t.Errorf("deletion named %q, want %q", got, want)
	}
}

func TestLeapWait(t *testing.T) {
	m := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	p := discipline.LeapPlan{At: m, Shift: -time.Second}
	for _, tc := range []struct {
		now  time.Time
		ppm  float64
		want time.Duration
	}{
		{m.Add(-time.Hour), 0, time.Hour},
		// True time running 100 ppm fast against RAW: less RAW to wait.
		{m.Add(-time.Hour), 100, 3599640035996 * time.Nanosecond},
		{m.Add(-time.Millisecond), 0, 0},
		{m.Add(time.Second), 0, 0},
	} {
		if got := discipline.LeapWait(p, tc.now, tc.ppm); got != tc.want {
			t.Errorf("LeapWait(%v before, %v ppm) = %v, want %v", m.Sub(tc.now), tc.ppm, got, tc.want)
		}
	}
}
