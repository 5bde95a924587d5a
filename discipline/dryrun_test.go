package discipline_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/discipline/statefile"
)

// A dry run of the daemon, with the clock 2 s off, until it would be
// synchronized and then stopped: nothing another program or a later slewd
// reads is written (no systemd flag, no status file, drift file, high-water
// mark or journal), and no log line claims what was not done.
func TestDryRunIsPure(t *testing.T) {
	for _, tc := range []struct {
		method adjtime.Method
		off    time.Duration
	}{{adjtime.MethodPLL, 2 * time.Second}, {adjtime.MethodTick, 2 * time.Second}, {adjtime.MethodPLL, 100 * time.Microsecond}} {
		method := tc.method
		var logs bytes.Buffer
		marked := 0
		m := newMachine(t, simclock.KernelConfig{ClockError: tc.off}, 1, false,
			discipline.Config{DryRun: true, Method: method, DriftInterval: time.Minute}, func(_ *fakeClient, env *discipline.Env) {
				env.MarkSynced = func() error { marked++; return nil }
				env.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
		m.w.At(3*time.Hour, m.p.Terminate)
		m.w.Run(3*time.Hour + time.Minute)
		if marked != 0 {
			t.Errorf("%v: dry run marked the clock synchronized for systemd %d times", method, marked)
		}
		for _, f := range []string{statefile.StatusFile} {
			if _, err := m.run.ReadFile(f); err == nil {
				t.Errorf("%v: dry run wrote %s in the run directory", method, f)
			}
		}
		for _, f := range []string{adjtime.DriftFile, adjtime.JournalFile, statefile.HighWaterFile} {
			if _, err := m.state.ReadFile(f); err == nil {
				t.Errorf("%v: dry run wrote %s in the state directory", method, f)
			}
		}
		if e := m.w.ClockError(); (e - tc.off).Abs() > time.Millisecond {
			t.Errorf("%v: dry run moved the clock: error %v", method, e)
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			for _, claim := range []string{"handed the remaining correction", "removed the tick bias", "msg=\"clock synchronized\"",
				"slewing with the tick", "setting it", "cancelled"} {
				if strings.Contains(line, claim) && !strings.Contains(line, "dry run") {
					t.Errorf("%v: dry run claims an action: %s", method, line)
				}
			}
		}
		if tc.off < time.Millisecond && !strings.Contains(logs.String(), "dry run: the clock would now count as synchronized") {
			t.Errorf("%v: the dry run never said it would be synchronized:\n%.2000s", method, logs.String())
		}
	}
}

// failStore refuses every write.
type failStore struct{ adjtime.MemStore }

func (*failStore) WriteFile(string, []byte) error { return errors.New("read-only file system") }

// A status file that cannot be written is said at WARN, once.
func TestStatusWriteFailureWarnsOnce(t *testing.T) {
	var logs bytes.Buffer
	m := newMachine(t, simclock.KernelConfig{ClockError: 2 * time.Second}, 1, true, discipline.Config{}, func(_ *fakeClient, env *discipline.Env) {
		env.Run = &failStore{}
		env.Log = slog.New(slog.NewTextHandler(&logs, nil))
	})
	m.w.Run(time.Hour)
	if n := strings.Count(logs.String(), "level=WARN msg=\"could not write the status file"); n != 1 {
		t.Errorf("%d WARN lines about the status file, want 1:\n%.3000s", n, logs.String())
	}
}
