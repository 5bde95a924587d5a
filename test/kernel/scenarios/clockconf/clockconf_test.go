// Package clockconf runs in the rig guest: the conformance table on the
// real kernel clock, and checks of the rig itself. Its test binary is the
// guest's /init; on a host every test here skips itself.
package clockconf

import (
	"context"
	"flag"
	"os"
	"regexp"
	"testing"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/test/kernel/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

var (
	only = flag.String("scenarios", "", "run only the conformance scenarios matching this regexp")
	idle = flag.Bool("idle", false, "let the guest CPU idle (NO_HZ stops the tick) instead of keeping the tick running")
)

// TestRigGuest checks what every measurement here relies on.
func TestRigGuest(t *testing.T) {
	guest.Require(t)
	if os.Getpid() != 1 {
		t.Fatal("not PID 1")
	}
	if cs := guest.Clocksource(); cs != "hpet" {
		t.Errorf("clocksource %q, want hpet (clocksource=hpet on the command line)", cs)
	}
	if err := clock.CanAdjust(clock.System{}); err != nil {
		t.Errorf("the guest cannot adjust its clock: %v", err)
	}
}

// TestConformance runs the whole table on the real kernel and emits one
// "conformance" record per scenario; the host compares them with the
// simulator (test/kernel/conformance_test.go).
func TestConformance(t *testing.T) {
	c := guest.Clock(t)
	re, err := regexp.Compile(*only)
	if err != nil {
		t.Fatal(err)
	}
	var scenarios []conformance.Scenario
	for _, s := range conformance.Scenarios() {
		if re.MatchString(s.Name) {
			scenarios = append(scenarios, s)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if !*idle {
		guest.KeepTicking(ctx)
	}
	results, err := conformance.RunAll(ctx, c, clock.NewSystemLoop(16), scenarios)
	for _, r := range results {
		guest.Emit(t, "conformance", r)
		if r.Err != "" {
			t.Errorf("%s: %s", r.Scenario, r.Err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}
