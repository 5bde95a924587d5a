package statefile

import (
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
)

func TestStatusRoundTrip(t *testing.T) {
	st := &adjtime.MemStore{}
	if _, ok, err := ReadStatus(st); ok || err != nil {
		t.Fatalf("no file: %v %v", ok, err)
	}
	want := Status{Time: time.Date(2026, 11, 23, 19, 40, 12, 5e8, time.UTC), Synchronized: true,
		RemainingS: -0.0125, OffsetS: 0.1, ErrorS: 0.001, FrequencyPPM: 3, Sources: 3, Slewing: true}
	if err := WriteStatus(st, want); err != nil {
		t.Fatal(err)
	}
	b, _ := st.ReadFile(StatusFile)
	// The schema scripts read: field names are stable.
	const wire = `{"time":"2026-11-23T19:40:12.5Z","synchronized":true,"remaining_s":-0.0125,"offset_s":0.1,"error_s":0.001,"frequency_ppm":3,"sources":3,"slewing":true}` + "\n"
	if string(b) != wire {
		t.Errorf("status file\n%s want\n%s", b, wire)
	}
	s, ok, err := ReadStatus(st)
	if err != nil || !ok || s != want || s.Remaining() != -12500*time.Microsecond {
		t.Fatalf("read %+v %v %v", s, ok, err)
	}
	at := s.Time
	for _, tc := range []struct {
		now   time.Time
		fresh bool
	}{{at, true}, {at.Add(19 * time.Minute), true}, {at.Add(21 * time.Minute), false}, {at.Add(-4 * time.Second), true}, {at.Add(-time.Minute), false}} {
		if got := s.Fresh(tc.now, DefaultStatusMaxAge); got != tc.fresh {
			t.Errorf("written %v, now %v: fresh %v", at, tc.now, got)
		}
	}
	for _, bad := range []string{"garbage", `{"synchronized":true}`} {
		st.WriteFile(StatusFile, []byte(bad))
		if _, _, err := ReadStatus(st); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestHighWater(t *testing.T) {
	st := &adjtime.MemStore{}
	if _, ok, err := ReadHighWater(st); ok || err != nil {
		t.Fatalf("empty store: %v %v", ok, err)
	}
	at := time.Date(2026, 11, 23, 19, 40, 12, 123456789, time.UTC)
	if err := SaveHighWater(st, at); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadHighWater(st)
	if err != nil || !ok || !got.Equal(at) {
		t.Fatalf("read back %v %v %v", got, ok, err)
	}
	// An earlier mark replaces a later one.
	if err := SaveHighWater(st, at.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := ReadHighWater(st); !got.Equal(at.Add(-time.Hour)) {
		t.Errorf("mark %v after saving an earlier one", got)
	}
	st.WriteFile(HighWaterFile, []byte("yesterday\n"))
	if _, _, err := ReadHighWater(st); err == nil {
		t.Error("a malformed mark was accepted")
	}
}

// A status file out of its plausible range is ignored with an error that
// names the file and says what to do; the high-water mark is bounded by
// the build time.
func TestPlausibleRanges(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		json string
		ok   bool
	}{
		{`{"time":"2026-12-01T00:00:00Z","synchronized":true,"remaining_s":0.001,"sources":2}`, true},
		{`{"time":"2026-12-01T00:00:00Z","remaining_s":1e300}`, false},
		{`{"time":"2026-12-01T00:00:00Z","error_s":-1}`, false},
		{`{"time":"2026-12-01T00:00:00Z","frequency_ppm":1e9}`, false},
		{`{"time":"2026-12-01T00:00:00Z","sources":-3}`, false},
		{`{"time":"2026-12-01T00:00:00Z","synchronized":true,"sources":0}`, false},
	} {
		st := &adjtime.MemStore{}
		st.WriteFile(StatusFile, []byte(tc.json))
		_, ok, err := ReadStatus(st)
		if ok != tc.ok || (!tc.ok && (err == nil || !strings.Contains(err.Error(), StatusFile) || !strings.Contains(err.Error(), "delete it"))) {
			t.Errorf("%s: ok %v, err %v", tc.json, ok, err)
		}
	}
	if err := CheckHighWater(now.AddDate(173, 0, 0), now); err == nil || !strings.Contains(err.Error(), HighWaterFile) {
		t.Errorf("a mark 173 years after the build: %v", err)
	}
	if err := CheckHighWater(now.AddDate(9, 0, 0), now); err != nil {
		t.Errorf("a mark 9 years after the build: %v", err)
	}
	if err := CheckHighWater(now.AddDate(500, 0, 0), time.Time{}); err != nil {
		t.Errorf("no build time: %v", err)
	}
}
