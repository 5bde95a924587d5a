package ntpclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// farNoisy is a guest's path to the internet: 20 ms each way plus
// exponential queueing with a mean of 5 ms, 1 ms longer back.
func farNoisy(cfg ntptest.ServerConfig) ntptest.ServerConfig {
	cfg.Delay, cfg.Jitter, cfg.Asymmetry = 20*time.Millisecond, 5*time.Millisecond, time.Millisecond
	return cfg
}

// kvmPHC is a hypervisor's clock read through ptp_kvm: the host's time,
// 2 µs off the truth, read with a 3 µs bracket and 0.5 µs of noise.
var kvmPHC = ntptest.PHCConfig{ClockName: "ptp_kvm", Offset: 2 * time.Microsecond, Noise: 500 * time.Nanosecond, Width: 3 * time.Microsecond}

func TestSimPHCAlone(t *testing.T) {
	r := newSim(t, simSetup{
		seed:   1,
		kernel: simclock.KernelConfig{ClockError: 30 * time.Millisecond, Oscillator: simclock.Oscillator{DriftPPM: 70, Wander: 1e-9}},
		phcs:   map[string]ntptest.PHCConfig{"/dev/ptp0": kvmPHC},
		cfg:    ntpclient.Config{PHCs: []string{"/dev/ptp0"}},
	})
	r.w.Run(10 * time.Minute)
	worst := checkAccuracy(t, r, time.Minute, 8*time.Microsecond)
	// The estimate is the PHC's time: its 2 µs offset shows, its noise
	// is filtered.
	if last := r.ests[len(r.ests)-1]; (last.err() - kvmPHC.Offset).Abs() > 2*time.Microsecond {
		t.Errorf("last estimate off by %v, want the PHC's own %v ± 2µs", last.err(), kvmPHC.Offset)
	}
	rep := r.report(t, "PHC0 (ptp_kvm)")
	if !rep.PHC || !rep.Selected || rep.Addr != "/dev/ptp0" || rep.Stratum != 0 || rep.Poll != time.Second {
		t.Errorf("report %+v: want a selected PHC at /dev/ptp0, stratum 0, polled every 1s", rep)
	}
	if got := ntpclient.RefIDString(rep.Stratum, rep.RefID); got != "PHC" {
		t.Errorf("refid %q, want PHC", got)
	}
	last := r.ests[len(r.ests)-1].est
	if last.Stratum != 1 || last.Error > 10*time.Microsecond {
		t.Errorf("estimate stratum %d error bound %v: want 1 and a few µs", last.Stratum, last.Error)
	}
	// One reading a second after the burst: ~600 in 10 minutes.
	if n := r.phcs["/dev/ptp0"].Reads(); n < 550 || n > 650 {
		t.Errorf("%d PHC reads in 10 min, want about 600 (every second)", n)
	}
	t.Logf("worst %v", worst)
}

// TestSimPHCWinsOverFarServers: a guest whose servers are far and noisy
// and whose PHC is near. The PHC is selected and the estimate follows it,
// far closer than the servers alone get.
func TestSimPHCWinsOverFarServers(t *testing.T) {
	run := func(withPHC bool) (worst time.Duration, r *simRun) {
		srv, names := servers(farNoisy(ntptest.ServerConfig{}), farNoisy(ntptest.ServerConfig{}), farNoisy(ntptest.ServerConfig{}))
		cfg := ntpclient.Config{Servers: names}
		if withPHC {
			cfg.PHCs = []string{"/dev/ptp0"}
		}
		r = newSim(t, simSetup{
			seed:    7,
			kernel:  simclock.KernelConfig{Oscillator: simclock.Oscillator{DriftPPM: 40, Wander: 1e-9}},
			servers: srv,
			phcs:    map[string]ntptest.PHCConfig{"/dev/ptp0": kvmPHC},
			cfg:     cfg,
		})
		r.w.Run(2 * time.Hour)
		for _, e := range r.after(30 * time.Minute) {
			worst = max(worst, e.err().Abs())
		}
		return worst, r
	}
	ntpWorst, _ := run(false)
	phcWorst, r := run(true)
	t.Logf("worst estimate error after 30 min: NTP only %v, with the PHC %v", ntpWorst, phcWorst)
	if phcWorst > 10*time.Microsecond || phcWorst*50 > ntpWorst {
		t.Errorf("with the PHC the estimate is off by up to %v, NTP alone %v: want the PHC's µs, 50× better", phcWorst, ntpWorst)
	}
	if rep := r.report(t, "PHC0 (ptp_kvm)"); !rep.Selected {
		t.Errorf("PHC not selected: %q", rep.Reason)
	}
}

func TestSimPHCFailureAndRecovery(t *testing.T) {
	r := newSim(t, simSetup{
		seed: 2,
		phcs: map[string]ntptest.PHCConfig{"/dev/ptp0": kvmPHC},
		cfg:  ntpclient.Config{PHCs: []string{"/dev/ptp0"}},
	})
	r.w.Run(time.Minute)
	phc := r.phcs["/dev/ptp0"]
	phc.Fail(errors.New("EIO"))
	r.w.Run(time.Minute + 20*time.Second)
	rep := r.report(t, "PHC0 (ptp_kvm)")
	if rep.Selected || !strings.Contains(rep.Reason, "EIO") {
		t.Errorf("after 20 s of failed reads: selected %v reason %q, want unusable naming EIO", rep.Selected, rep.Reason)
	}
	n := len(r.ests)
	phc.Fail(nil)
	r.w.Run(time.Minute + 40*time.Second)
	if rep := r.report(t, "PHC0 (ptp_kvm)"); !rep.Selected {
		t.Errorf("after the reads work again: %q", rep.Reason)
	}
	if len(r.ests) <= n {
		t.Error("no estimate after the PHC recovered")
	}
}

func TestMeasureWithPHC(t *testing.T) {
	w := simclock.New(simclock.Config{Seed: 3, Kernel: simclock.KernelConfig{ClockError: -5 * time.Millisecond}})
	var est ntpclient.Estimate
	var err error
	w.Spawn("sync", false, func(ctx context.Context, p *simclock.Process) error {
		est, err = ntpclient.Measure(ctx, ntpclient.Config{PHCs: []string{"/dev/ptp1"}}, ntpclient.Env{
			Clock: p, Loop: p,
			OpenPHC: func(dev string) (clock.PHC, error) { return ntptest.NewPHC(p, dev, kvmPHC), nil },
		}, 0)
		return nil
	})
	w.Run(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := est.Offset - 5*time.Millisecond; d.Abs() > 5*time.Microsecond {
		t.Errorf("measured %v, want 5ms ± 5µs", est.Offset)
	}
	if len(est.Details) != 1 || est.Details[0].Samples != ntpclient.DefaultMeasureBurst {
		t.Errorf("details %+v: want one PHC with %d samples", est.Details, ntpclient.DefaultMeasureBurst)
	}
}

func TestPHCConfig(t *testing.T) {
	for _, c := range []struct {
		cfg  ntpclient.Config
		want string // "" ok
	}{
		{ntpclient.Config{PHCs: []string{"/dev/ptp0"}}, ""},
		{ntpclient.Config{PHCs: []string{"/dev/ptp0"}, Servers: []string{"192.0.2.1"}}, ""},
		{ntpclient.Config{PHCs: []string{"/dev/ptp0", "/dev/ptp0"}}, "twice"},
		{ntpclient.Config{PHCs: []string{"/dev/ptp9"}}, "no such file"},
		{ntpclient.Config{PHCs: []string{"/dev/ptp0"}, PHCPoll: time.Microsecond}, "PHC poll"},
		{ntpclient.Config{PHCs: []string{"/dev/ptp0"}, PHCPoll: 250 * time.Millisecond}, ""},
	} {
		w := simclock.New(simclock.Config{})
		var err error
		w.Spawn("x", false, func(ctx context.Context, p *simclock.Process) error {
			_, err = ntpclient.NewClient(c.cfg, ntpclient.Env{Clock: p, Loop: p, OpenPHC: func(dev string) (clock.PHC, error) {
				if dev == "/dev/ptp9" {
					return nil, errors.New("PHC /dev/ptp9: no such file or directory")
				}
				return ntptest.NewPHC(p, dev, kvmPHC), nil
			}})
			return nil
		})
		w.Run(time.Second)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
	}
}
