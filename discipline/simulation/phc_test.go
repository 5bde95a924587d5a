package simulation

import (
	"context"
	"testing"
	"time"

	"slewd/ntpclient/ntptest"
)

// guestSim is a VM guest whose NTP servers are far and noisy: 20 ms each
// way plus exponential queueing of mean 5 ms, 1 ms longer back.
func guestSim(phc *ntptest.PHCConfig) Config {
	cfg := baseSim()
	cfg.ClockError, cfg.DriftPPM, cfg.Wander = 80*time.Millisecond, 35, 1e-9
	cfg.Servers, cfg.Delay, cfg.Jitter, cfg.Asymmetry = 3, 20*time.Millisecond, 5*time.Millisecond, time.Millisecond
	cfg.Duration, cfg.Seed, cfg.PHC = 3*time.Hour, 5, phc
	return cfg
}

// The daemon with a near PHC (ptp_kvm: the host's clock, read with a
// 3 µs bracket) beside the far servers keeps the clock within µs of the
// PHC; with the servers alone it is off by their asymmetry and noise.
func TestSimulatePHCWins(t *testing.T) {
	phc := &ntptest.PHCConfig{ClockName: "ptp_kvm", Offset: time.Microsecond, Noise: 500 * time.Nanosecond, Width: 3 * time.Microsecond}
	ntp, err := Run(context.Background(), guestSim(nil))
	if err != nil {
		t.Fatal(err)
	}
	with, err := Run(context.Background(), guestSim(phc))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Result{ntp, with} {
		if r.RMSErrorAfter1hS == nil || r.BackwardSteps != 0 {
			t.Fatalf("no figures after 1 h or %d backward steps", r.BackwardSteps)
		}
	}
	ntpRMS, ntpMax := *ntp.RMSErrorAfter1hS, *ntp.MaxAbsErrorAfter1hS
	phcRMS, phcMax := *with.RMSErrorAfter1hS, *with.MaxAbsErrorAfter1hS
	// (Within 1 ms the far servers alone need not converge at all: their
	// asymmetry is 0.5 ms and their noise ms.)
	t.Logf("after 1 h: NTP only RMS %.1f µs max %.1f µs; with the PHC RMS %.2f µs max %.2f µs (converged within 1 ms after %s vs %s)",
		ntpRMS*1e6, ntpMax*1e6, phcRMS*1e6, phcMax*1e6, fmtS(with.ConvergedAfterS), fmtS(ntp.ConvergedAfterS))
	if phcMax > 10e-6 || phcRMS*20 > ntpRMS {
		t.Errorf("with the PHC: RMS %.2f µs, max %.2f µs; want max ≤ 10 µs and RMS 20× below NTP's %.1f µs", phcRMS*1e6, phcMax*1e6, ntpRMS*1e6)
	}
}

// A PHC alone (no servers at all) is enough.
func TestSimulatePHCOnly(t *testing.T) {
	cfg := guestSim(&ntptest.PHCConfig{ClockName: "ptp_kvm", Noise: 200 * time.Nanosecond, Width: time.Microsecond})
	cfg.Servers, cfg.Duration = 0, 90*time.Minute
	r, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.MaxAbsErrorAfter1hS == nil || *r.MaxAbsErrorAfter1hS > 5e-6 || r.Queries != 0 {
		t.Errorf("PHC only: max error after 1 h %v, %d NTP queries; want ≤ 5 µs and none", r.MaxAbsErrorAfter1hS, r.Queries)
	}
}
