// Package suspend runs in the rig guest: it suspends the guest's
// timekeeping for a few seconds and records what a clock.WatchChanges
// watcher saw on resume. Its test binary is the
// guest's /init; on a host every test here skips itself.
package suspend

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/test/kernel/guest"
)

func TestMain(m *testing.M) { guest.Main(m) }

// Resume is what the watcher saw across one suspend.
type Resume struct {
	Notifications int     `json:"notifications"`
	StepUs        float64 `json:"step_us"`    // Δ(REALTIME−BOOTTIME)
	SuspendUs     float64 `json:"suspend_us"` // Δ(BOOTTIME−MONOTONIC)
	RawElapsedUs  float64 `json:"raw_elapsed_us"`
	AlarmS        int     `json:"alarm_s"` // how long the kernel stayed suspended
	WallS         float64 `json:"wall_s"`  // REALTIME across the suspend
}

// alarmS is how long the guest sleeps: an RTC wake alarm ends it.
const alarmS = 3

// TestSuspendToRAM suspends the guest to RAM (ACPI S3) with an RTC wake
// alarm: timekeeping_suspend and timekeeping_resume run, and the kernel
// injects the sleep it measured from the RTC. (Suspend-to-idle with the
// same alarm never woke up in this rig.)
func TestSuspendToRAM(t *testing.T) {
	c := guest.Clock(t)
	states, err := os.ReadFile("/sys/power/state")
	if err != nil || !strings.Contains(string(states), "mem") {
		t.Fatalf("no suspend to RAM: /sys/power/state %q, %v", states, err)
	}
	const wake = "/sys/class/rtc/rtc0/wakealarm"
	if err := os.WriteFile(wake, []byte("0"), 0); err != nil {
		t.Fatalf("no RTC wake alarm: %v", err)
	}
	if err := os.WriteFile(wake, []byte(fmt.Sprintf("+%d", alarmS)), 0); err != nil {
		t.Fatal(err)
	}
	l := clock.NewSystemLoop(8)
	stop, err := clock.WatchChanges(c, l)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	before := clock.ReadOffsets(c, 8)
	real0 := c.Now()
	// Blocks until the guest has resumed.
	// (Everything of the guest stops: RAW and MONOTONIC too.)
	if err := os.WriteFile("/sys/power/state", []byte("mem"), 0); err != nil {
		t.Fatalf("suspend: %v", err)
	}
	wall := c.Now().Sub(real0)
	after := clock.ReadOffsets(c, 8)
	var r Resume
	r.AlarmS, r.WallS = alarmS, wall.Seconds()
	ctx := context.Background()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		ev, err := l.Wait(ctx, time.Until(end))
		if err != nil {
			t.Fatal(err)
		}
		if ch, ok := ev.(clock.ClockChanged); ok {
			r.Notifications++
			r.StepUs += float64(ch.Change.Step) / 1e3
			r.SuspendUs += float64(ch.Change.Suspend) / 1e3
		}
	}
	r.RawElapsedUs = float64(after.Raw-before.Raw) / 1e3
	guest.Emit(t, "resume", r)
	t.Logf("across the suspend: %+v; offsets %v", r, clock.CompareOffsets(before, after))
}
