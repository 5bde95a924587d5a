package discipline_test

import (
	"testing"
	"time"

	"slewd/clock/simclock"
	"slewd/discipline"
)

// What `slewd tracking` and `slewd sources` read beyond the status file:
// the sources' state even when no estimate comes (every reply, timeout or
// lookup refreshes it), the maxerror and esterror the kernel was given,
// and when systemd was told the clock is synchronized.
func TestSnapshotForTheControlSocket(t *testing.T) {
	silent := newMachine(t, simclock.KernelConfig{}, 1, true, discipline.Config{}, func(fc *fakeClient, _ *discipline.Env) { fc.silent = true })
	silent.w.Run(5 * time.Minute)
	if s := silent.d.Snapshot(); s.Estimate != nil || len(s.Reports) != 1 || s.KernelMaxError != 0 || !s.MarkedSynced.IsZero() {
		t.Errorf("no estimate: %+v; want the source's report, no bounds, systemd not told", s)
	}

	m := newMachine(t, simclock.KernelConfig{ClockError: 5 * time.Second}, 1, true, discipline.Config{}, nil)
	m.w.Run(10 * time.Second)
	s := m.d.Snapshot()
	// 5 s take 50 s to slew: at 10 s: the kernel's bound covers it.
	if s.Synced || !s.MarkedSynced.IsZero() || s.KernelMaxError < s.Remaining.Abs() || s.KernelEstError > s.KernelMaxError || s.DryRun {
		t.Errorf("while slewing: %+v", s)
	}
	m.w.Run(time.Hour)
	s = m.d.Snapshot()
	if !s.Synced || s.MarkedSynced.IsZero() || s.KernelMaxError <= 0 || s.KernelMaxError > time.Millisecond || s.KernelEstError > s.KernelMaxError {
		t.Errorf("after an hour: synced %v, marked %v, maxerror %v, esterror %v", s.Synced, s.MarkedSynced, s.KernelMaxError, s.KernelEstError)
	}
	if d := m.w.TrueTime().Sub(s.MarkedSynced); d < 0 || d > time.Hour {
		t.Errorf("marked synchronized %v before the end", d)
	}
}
