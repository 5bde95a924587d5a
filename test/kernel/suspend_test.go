package kernel_test

import (
	"context"
	"math"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/test/kernel/rig"
)

// resume is a record of scenarios/suspend.
type resume struct {
	Notifications int     `json:"notifications"`
	StepUs        float64 `json:"step_us"`
	SuspendUs     float64 `json:"suspend_us"`
	RawElapsedUs  float64 `json:"raw_elapsed_us"`
	AlarmS        int     `json:"alarm_s"`
	WallS         float64 `json:"wall_s"`
}

// TestResumeNotifies suspends the guest's timekeeping for 5 s (the
// kernel's pm_test "core" mode: scenarios/suspend) and checks that the
// kernel notified the cancel-on-set watcher once, with the sleep in
// BOOTTIME−MONOTONIC and no step, as the simulator's World.Suspend does.
// The RTC that measures the sleep counts whole seconds, so the kernel's
// sleep is the 5 s within a second.
func TestResumeNotifies(t *testing.T) {
	rig.Skip(t)
	res := rig.Boot(t, rig.Config{Package: "./test/kernel/scenarios/suspend", ICount: true,
		KernelArgs: []string{"no_console_suspend"}, Timeout: 60 * time.Second})
	got, err := rig.Decode[resume](res, "resume")
	if err != nil || len(got) != 1 {
		t.Fatalf("resume records %v, %v", got, err)
	}
	k := got[0]
	sim := simResume(t, 3*time.Second)
	t.Logf("kernel: %+v", k)
	t.Logf("simulator: %+v", sim)
	if k.Notifications != sim.Notifications {
		t.Errorf("notifications: kernel %d, simulator %d", k.Notifications, sim.Notifications)
	}
	if math.Abs(k.StepUs-sim.StepUs) > 10 {
		t.Errorf("step seen: kernel %.3f µs, simulator %.3f µs", k.StepUs, sim.StepUs)
	}
	// RAW and MONOTONIC stop while suspended, as in the simulator.
	if k.RawElapsedUs > 0.5e6 || math.Abs(k.WallS-float64(k.AlarmS)) > 1 {
		t.Errorf("RAW advanced %.0f µs and REALTIME %.3f s across a %d s suspend", k.RawElapsedUs, k.WallS, k.AlarmS)
	}
	if math.Abs(k.SuspendUs-sim.SuspendUs) > 1e6 {
		t.Errorf("suspend seen: kernel %.0f µs, simulator %.0f µs (RTC resolution 1 s)", k.SuspendUs, sim.SuspendUs)
	}
}

// simResume is the same measurement on the simulator.
func simResume(t *testing.T, d time.Duration) resume {
	w := simclock.New(simclock.Config{})
	var r resume
	p := w.Spawn("watcher", false, func(ctx context.Context, p *simclock.Process) error {
		stop, err := clock.WatchChanges(p, p)
		if err != nil {
			return err
		}
		defer stop()
		for {
			ev, err := p.Wait(ctx, time.Hour)
			if err != nil {
				return nil
			}
			if ch, ok := ev.(clock.ClockChanged); ok {
				r.Notifications++
				r.StepUs += float64(ch.Change.Step) / 1e3
				r.SuspendUs += float64(ch.Change.Suspend) / 1e3
			}
		}
	})
	w.At(time.Second, func() { w.Suspend(d) })
	w.Run(time.Minute)
	p.Terminate()
	w.Run(w.Now() + time.Second)
	if ok, err := p.Exited(); !ok || err != nil {
		t.Fatalf("simulated watcher: %v, %v", ok, err)
	}
	return r
}
