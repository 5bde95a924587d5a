package discipline_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/discipline/statefile"
)

// Monitor-only runs without clock rights, measures and publishes, and
// leaves the clock and everything that says "synchronized" alone.
func TestMonitorOnly(t *testing.T) {
	var log bytes.Buffer
	marked := 0
	m := newMachine(t, simclock.KernelConfig{ClockError: 80 * time.Millisecond}, 1, false,
		discipline.Config{MonitorOnly: true, DriftInterval: 10 * time.Minute, UndoForeignSteps: true, StepForwardOver: time.Millisecond},
		func(_ *fakeClient, env *discipline.Env) {
			env.Log = slog.New(slog.NewTextHandler(&log, nil))
			env.MarkSynced = func() error { marked++; return nil }
		})
	m.w.Run(time.Hour)
	if done, err := m.p.Exited(); done {
		t.Fatalf("exited: %v", err)
	}
	// The unprivileged process could not have written; the error moves
	// only by the oscillator's default wander.
	if e := m.w.ClockError(); (e - 80*time.Millisecond).Abs() > time.Microsecond {
		t.Errorf("clock error %v, want the 80ms it started with", e)
	}
	s := m.d.Snapshot()
	if !s.Started || !s.MonitorOnly || s.Synced || s.Estimate == nil || (s.Estimate.Offset+80*time.Millisecond).Abs() > time.Millisecond {
		t.Errorf("snapshot %+v: want started, monitor-only, not synced, measuring −80ms", s)
	}
	if _, ok, _ := statefile.ReadStatus(m.run); ok {
		t.Error("a status file was written: slewd wait would take it for a daemon's")
	}
	if _, ok, _ := statefile.ReadHighWater(m.state); ok {
		t.Error("a high-water mark was written")
	}
	if _, known, _ := adjtime.ReadDrift(m.state); known {
		t.Error("a drift file was written")
	}
	if marked != 0 {
		t.Errorf("marked synchronized %d times", marked)
	}
	out := log.String()
	if strings.Contains(out, "would") || strings.Count(out, "monitoring: the clock is off") < 2 || !strings.Contains(out, "monitor_only=true") {
		t.Errorf("log: want monitoring lines (first and every 10 min), no 'would':\n%s", out)
	}
	if n := strings.Count(out, "monitoring: the clock is off"); n > 8 {
		t.Errorf("%d monitoring lines in an hour, want about 7", n)
	}
}
