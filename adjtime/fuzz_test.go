package adjtime

import (
	"encoding/json"
	"math"
	"testing"

	"slewd/clock"
)

// The drift file: whatever it holds, reading it never panics, gives a
// finite frequency within the range it checks, or an error; what it
// accepts, written back and read again, is the same to the precision
// written (1e-6 ppm).
func FuzzDrift(f *testing.F) {
	for _, s := range []string{"12.345678 0.250000\n", "-500 1", "0", "", "NaN 1", "1 NaN", "1 -Inf", "1e400 0", "  7.5  ", "1 2 3", "100500.0 0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st := &MemStore{}
		st.WriteFile(DriftFile, b)
		d, ok, err := ReadDrift(st)
		if err != nil || !ok {
			if ok || (err == nil && len(b) > 0) {
				t.Fatalf("%q: ok %v err %v", b, ok, err)
			}
			return
		}
		if math.IsNaN(d.FreqPPM) || math.IsInf(d.FreqPPM, 0) || math.Abs(d.FreqPPM) > 100500 {
			t.Fatalf("%q accepted as frequency %v", b, d.FreqPPM)
		}
		if !(d.SigmaPPM >= 0 && d.SigmaPPM <= MaxDriftPPM) {
			t.Fatalf("%q accepted with sigma %v", b, d.SigmaPPM)
		}
		if err := WriteDrift(st, d); err != nil {
			t.Fatal(err)
		}
		again, ok, err := ReadDrift(st)
		if err != nil || !ok || math.Abs(again.FreqPPM-d.FreqPPM) > 1e-6 || math.Abs(again.SigmaPPM-d.SigmaPPM) > 1e-6 {
			t.Fatalf("%+v written and read back as %+v (%v)", d, again, err)
		}
	})
}

// The slew journal: reading any content never panics; an active entry it
// accepts has ticks and frequencies the kernel takes (recovery sets them);
// an entry accepted, written again, reads back the same; a journal from
// another boot is never active.
func FuzzJournal(f *testing.F) {
	good, _ := json.Marshal(journalEntry{BootID: "boot-a", Active: true, BaseTick: 10000, BaseFreq: 1 << 16, BulkTick: 10050, BulkFreq: -3 << 16, RawStart: 123456789})
	f.Add(good, true)
	f.Add([]byte(`{"boot_id":"boot-a","active":true,"base_tick":9000,"bulk_tick":11001}`), true)
	f.Add([]byte(`{"boot_id":"boot-b","active":true,"base_tick":10000,"bulk_tick":10000}`), true)
	f.Add([]byte(`{"active":false}`), false)
	f.Add([]byte(`not json`), false)
	f.Add([]byte(`{"active":true,"base_freq":99999999999}`), true)
	f.Fuzz(func(t *testing.T, b []byte, sameBoot bool) {
		boot := "boot-a"
		if !sameBoot {
			boot = "boot-c"
		}
		st := &MemStore{}
		st.WriteFile(JournalFile, b)
		j := &Journal{Store: st, BootID: func() string { return boot }}
		e, ok, err := j.read()
		if err != nil || !ok {
			if j.Active() {
				t.Fatalf("%q: unreadable yet active", b)
			}
			return
		}
		if e.Active && !(e.BaseTick >= clock.MinTick && e.BaseTick <= clock.MaxTick && e.BulkTick >= clock.MinTick && e.BulkTick <= clock.MaxTick &&
			math.Abs(clock.FreqToPPM(e.BaseFreq)) <= clock.MaxFreqPPM && math.Abs(clock.FreqToPPM(e.BulkFreq)) <= clock.MaxFreqPPM) {
			t.Fatalf("%q accepted as active with tick %d/%d freq %d/%d", b, e.BaseTick, e.BulkTick, e.BaseFreq, e.BulkFreq)
		}
		if j.Active() != (e.Active && e.BootID == boot) {
			t.Fatalf("%q: Active() %v for entry %+v at boot %s", b, j.Active(), e, boot)
		}
		if err := j.write(e); err != nil {
			t.Fatal(err)
		}
		again, ok, err := j.read()
		e.BootID = boot
		if err != nil || !ok || again != e {
			t.Fatalf("%+v written and read back as %+v (%v)", e, again, err)
		}
	})
}
