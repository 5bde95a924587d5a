package conformance_test

import (
	"math"
	"strings"
	"testing"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/clock/conformance/simrun"
)

// TestSimulatorMeetsKernelArithmetic runs the table on the simulator and
// checks every figure that has a closed form (kernel/time/ntp.c
// arithmetic) against it. The rig compares the same table with a real
// kernel.
func TestSimulatorMeetsKernelArithmetic(t *testing.T) {
	results, err := simrun.Run(simrun.Config, conformance.Scenarios())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(conformance.Scenarios()) {
		t.Fatalf("%d results for %d scenarios", len(results), len(conformance.Scenarios()))
	}
	checked := 0
	for _, r := range results {
		if r.Err != "" {
			t.Errorf("%s: %s", r.Scenario, r.Err)
		}
		if len(r.Metrics) == 0 {
			t.Errorf("%s: measured nothing", r.Scenario)
		}
		for _, m := range r.Metrics {
			t.Logf("%-32s %-28s %14.4f %s", r.Scenario, m.Name, m.Value, m.Unit)
			if m.Expect == nil {
				continue
			}
			checked++
			if d := math.Abs(m.Value - *m.Expect); d > m.ExpectTol+1e-9 {
				t.Errorf("%s: %s = %v %s, kernel arithmetic says %v ± %v", r.Scenario, m.Name, m.Value, m.Unit, *m.Expect, m.ExpectTol)
			}
		}
	}
	if checked < 30 {
		t.Errorf("only %d metrics have an expectation", checked)
	}
}

// TestRunAllRestoresTheClock: whatever a scenario leaves behind, the next
// one starts from the boot defaults.
func TestRunAllRestoresTheClock(t *testing.T) {
	messy := conformance.Scenario{Name: "messy", Run: func(s *conformance.Session) error {
		_, _, err := s.Adj(clock.Timex{Modes: clock.AdjTick | clock.AdjFrequency | clock.AdjStatus | clock.AdjNano,
			Tick: 9100, Freq: 77 << 16, Status: clock.StaPLL})
		if err != nil {
			return err
		}
		_, _, err = s.Adj(clock.Timex{Modes: clock.AdjOffset, Offset: 2e8})
		if err != nil {
			return err
		}
		_, _, err = s.Adj(clock.Timex{Modes: clock.AdjOffsetSingleshot, Offset: 123456})
		return err
	}}
	var seen clock.Timex
	check := conformance.Scenario{Name: "check", Run: func(s *conformance.Session) error {
		seen, _ = s.State()
		return nil
	}}
	results, err := simrun.Run(simrun.Config, []conformance.Scenario{messy, check})
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Err != "" {
		t.Fatal(results[0].Err)
	}
	if seen.Tick != clock.NominalTick || seen.Freq != 0 || seen.Status != clock.StaUnsync || seen.Offset != 0 || seen.Constant != 2 {
		t.Errorf("state after restore: %+v", seen)
	}
}

func TestCompare(t *testing.T) {
	sim := []conformance.Result{
		{Scenario: "a", Metrics: []conformance.Metric{{Name: "rate", Unit: "ppm", Value: 500, Tol: 1}, {Name: "st", Unit: "flags", Value: 64}}},
		{Scenario: "b", Metrics: []conformance.Metric{{Name: "phase", Unit: "µs", Value: 1999, Tol: 10}}},
		{Scenario: "c", Metrics: []conformance.Metric{{Name: "phase", Unit: "µs", Value: 1, Tol: 10}}},
	}
	kernel := []conformance.Result{
		{Scenario: "a", Metrics: []conformance.Metric{{Name: "rate", Unit: "ppm", Value: 500.6, Tol: 1}, {Name: "st", Unit: "flags", Value: 65}}},
		{Scenario: "b", Metrics: []conformance.Metric{{Name: "phase", Unit: "µs", Value: 2011, Tol: 10}}},
		{Scenario: "c", Err: "reads missed the second"},
		{Scenario: "d"},
	}
	rows := conformance.Compare(sim, kernel)
	var got []string
	for _, r := range rows {
		got = append(got, r.Scenario+"/"+r.Metric+"="+map[bool]string{true: "pass", false: "FAIL"}[r.Pass])
	}
	want := "a/rate=pass a/st=FAIL b/phase=FAIL c/=FAIL c/phase=FAIL d/=FAIL"
	if s := strings.Join(got, " "); s != want {
		t.Errorf("rows %s\nwant %s", s, want)
	}
	if n := conformance.Failed(rows); n != 5 {
		t.Errorf("%d failed", n)
	}
	md := conformance.Markdown(rows)
	for _, s := range []string{"| a | rate | ppm | 500.000 | 500.600 | 0.600 | 1.000 | pass |", "STA_PLL\\|STA_UNSYNC", "differs by 12"} {
		if !strings.Contains(md, s) {
			t.Errorf("table lacks %q:\n%s", s, md)
		}
	}
}
