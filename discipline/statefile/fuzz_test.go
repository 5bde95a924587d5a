package statefile

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"slewd/adjtime"
)

// The status file: any content either is refused or reads as a status
// with a time, and a status read, written and read again encodes the
// same (readers and the writer agree on every field).
func FuzzStatus(f *testing.F) {
	good, _ := json.Marshal(Status{Time: time.Unix(1_780_000_000, 5).UTC(), Synchronized: true, RemainingS: -0.25, OffsetS: 0.001, ErrorS: 1e-4, FrequencyPPM: -12.5, Sources: 3, Slewing: true})
	f.Add(good)
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","foreign":{"steps":2,"last":{"kind":"step","by_s":-54}}}`))
	f.Add([]byte(`{"time":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"synchronized":true}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		st := &adjtime.MemStore{}
		st.WriteFile(StatusFile, b)
		s, ok, err := ReadStatus(st)
		if err != nil || !ok {
			if ok || err == nil {
				t.Fatalf("%q: ok %v err %v", b, ok, err)
			}
			return
		}
		if s.Time.IsZero() {
			t.Fatalf("%q read as a status without a time", b)
		}
		first, _ := json.Marshal(s)
		if err := WriteStatus(st, s); err != nil {
			t.Fatalf("%+v cannot be written: %v", s, err)
		}
		again, ok, err := ReadStatus(st)
		if err != nil || !ok {
			t.Fatalf("%+v written, then: %v", s, err)
		}
		if second, _ := json.Marshal(again); !bytes.Equal(first, second) {
			t.Fatalf("round trip %s → %s", first, second)
		}
	})
}

// The high-water mark: any content is refused or is a time that saved
// again reads back equal.
func FuzzHighWater(f *testing.F) {
	for _, s := range []string{"2026-12-01T23:59:59.123456789Z\n", "2026-12-01T23:59:59+02:00", "1970-01-01T00:00:00Z", "yesterday", "", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st := &adjtime.MemStore{}
		st.WriteFile(HighWaterFile, b)
		hw, ok, err := ReadHighWater(st)
		if err != nil || !ok {
			if ok || err == nil {
				t.Fatalf("%q: ok %v err %v", b, ok, err)
			}
			return
		}
		if err := SaveHighWater(st, hw); err != nil {
			t.Fatal(err)
		}
		again, ok, err := ReadHighWater(st)
		if err != nil || !ok || !again.Equal(hw) {
			t.Fatalf("%v saved and read back as %v (%v)", hw, again, err)
		}
	})
}

// The step note: whatever the file holds, OwnStep claims a clock change
// only for a noted non-zero step, seen within OwnStepWindow after it was
// noted and within tol of its size; a noted step is claimed by its own
// change.
func FuzzStepNote(f *testing.F) {
	good, _ := json.Marshal(Step{Raw: 5 * time.Second, Step: 54 * time.Second, By: "slewd boot"})
	f.Add(good, int64(6*time.Second), int64(54*time.Second), int64(time.Millisecond))
	f.Add([]byte(`{"raw_ns":0,"step_ns":0}`), int64(0), int64(0), int64(time.Second))
	f.Add([]byte(`{"raw_ns":-9223372036854775808,"step_ns":1}`), int64(9223372036854775807), int64(1), int64(0))
	f.Add([]byte(`garbage`), int64(1), int64(1), int64(1))
	f.Fuzz(func(t *testing.T, b []byte, raw, step, tol int64) {
		st := &adjtime.MemStore{}
		st.WriteFile(StepFile, b)
		s, own := OwnStep(st, time.Duration(raw), time.Duration(step), time.Duration(tol))
		if own {
			age := time.Duration(raw) - s.Raw
			if s.Step == 0 || age < 0 || age > OwnStepWindow || (time.Duration(step)-s.Step).Abs() > time.Duration(tol) {
				t.Fatalf("%q claims a change of %v at %v (tol %v): %+v", b, time.Duration(step), time.Duration(raw), time.Duration(tol), s)
			}
		}
		var noted Step
		if json.Unmarshal(b, &noted) == nil && noted.Step != 0 && noted.Raw < 1<<62 {
			if err := NoteStep(st, noted); err != nil {
				t.Fatal(err)
			}
			if _, own := OwnStep(st, noted.Raw+time.Second, noted.Step, 0); !own {
				t.Fatalf("noted %+v, not claimed by its own change a second later", noted)
			}
		}
	})
}
