package boot

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/discipline/statefile"
)

// runSync runs Sync as a privileged process and the world until until.
func (s *sim) runSync(t *testing.T, cfg SyncConfig, until time.Duration) (Report, error) {
	t.Helper()
	if cfg.Client.Servers == nil {
		cfg.Client.Servers = s.servers
	}
	var rep Report
	var runErr error
	p := s.w.Spawn("slewd-sync", true, func(ctx context.Context, p *simclock.Process) error {
		rep, runErr = Sync(ctx, cfg, s.env(p))
		return nil
	})
	s.w.Run(until)
	if ok, _ := p.Exited(); !ok {
		t.Fatalf("slewd sync still running at %v", until)
	}
	return rep, runErr
}

// The cron job: the clock 0.3 s ahead; sync leaves a singleshot of the
// right size and sign, never steps, and the kernel finishes the slew after
// the process has exited.
func TestSyncLeavesSingleshot(t *testing.T) {
	for _, clockErr := range []time.Duration{300 * time.Millisecond, -421900 * time.Microsecond} {
		t.Run(clockErr.String(), func(t *testing.T) {
			s := newSim(t, simSetup{clockError: clockErr, servers: lans(3)})
			// A stale singleshot from an earlier run is replaced, not added to.
			if _, err := clock.NewDriver(s.w).ArmSingleshot(7 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			rep, err := s.runSync(t, SyncConfig{Client: cfgSamples(s, 4)}, 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != ExitOK || rep.Action != ActionSlew {
				t.Fatalf("exit %d action %s: %s", rep.ExitCode, rep.Action, rep.Reason)
			}
			if rep.PreviousSingleshot <= 0 || rep.PreviousSingleshot > 7*time.Millisecond {
				t.Errorf("previous singleshot %v, want what was left of 7 ms", rep.PreviousSingleshot)
			}
			if len(s.jumps()) != 0 {
				t.Fatalf("sync stepped: %+v", s.jumps())
			}
			k := s.kernel(t)
			// The pending singleshot is the NTP-sign correction still to
			// make, less the chunk of the current second (≤ 500 µs) and
			// 0.05 % (the compensation for the slower or faster second).
			if got, left := k.Singleshot, -s.w.ClockError(); (got-left).Abs() > 700*time.Microsecond || math.Signbit(got.Seconds()) != math.Signbit(-clockErr.Seconds()) {
				t.Errorf("pending singleshot %v; the clock is off by %v", got, s.w.ClockError())
			}
			s.w.Run(20*time.Second + SlewDuration(clockErr) + 5*time.Second)
			if e := s.w.ClockError(); e.Abs() > 200*time.Microsecond {
				t.Errorf("after the kernel's slew the clock is off by %v", e)
			}
			if n, _ := s.rec.Backward(); n != 0 {
				t.Error("the clock went back")
			}
		})
	}
}

func cfgSamples(s *sim, n int) (c ntpclientConfig) {
	c.Servers, c.Burst = s.servers, n
	return c
}

// An offset beyond the singleshot is refused and nothing is touched; with
// ntpdate -b it is stepped if the clock is behind, and slewed (refused if
// too large) if ahead unless stepping back is allowed.
func TestSyncLargeOffsets(t *testing.T) {
	for _, tc := range []struct {
		name     string
		clockErr time.Duration
		cfg      SyncConfig
		exit     int
		action   Action
		backward bool
		after    time.Duration // clock error after
	}{
		{"an hour behind: refused", -time.Hour, SyncConfig{}, ExitRefused, ActionNone, false, -time.Hour},
		{"an hour ahead: refused", time.Hour, SyncConfig{}, ExitRefused, ActionNone, false, time.Hour},
		{"-b an hour behind: stepped forward", -time.Hour, SyncConfig{Step: true}, ExitOK, ActionStep, false, 0},
		{"-b an hour ahead: refused", time.Hour, SyncConfig{Step: true}, ExitRefused, ActionNone, true, time.Hour},
		{"-b 2 s ahead: slewed instead", 2 * time.Second, SyncConfig{Step: true}, ExitOK, ActionSlew, true, 2 * time.Second},
		{"query: nothing touched", 2 * time.Second, SyncConfig{Query: true, Step: true}, ExitOK, ActionSlew, true, 2 * time.Second},
		{"query behind: nothing touched", -2 * time.Second, SyncConfig{Query: true, Step: true}, ExitOK, ActionStep, false, -2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, simSetup{clockError: tc.clockErr, servers: lans(3)})
			tc.cfg.Client = cfgSamples(s, 1)
			rep, err := s.runSync(t, tc.cfg, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tc.exit || rep.Action != tc.action || rep.BackwardRefused != tc.backward {
				t.Fatalf("exit %d action %s backward-refused %v: %s", rep.ExitCode, rep.Action, rep.BackwardRefused, rep.Reason)
			}
			if e := s.w.ClockError(); (e - tc.after).Abs() > 10*time.Millisecond {
				t.Errorf("clock error %v, want about %v", e, tc.after)
			}
			if n, _ := s.rec.Backward(); n != 0 {
				t.Error("the clock went back")
			}
		})
	}
}

// With `slewd run` keeping the clock (a fresh status file), sync stands aside.
func TestSyncStandsAsideForTheDaemon(t *testing.T) {
	s := newSim(t, simSetup{clockError: 300 * time.Millisecond, servers: lans(3)})
	b, _ := json.Marshal(statefile.Status{Time: s.w.TrueTime().Add(300*time.Millisecond - time.Minute), Sources: 3})
	s.run.WriteFile(statefile.StatusFile, b)
	rep, err := s.runSync(t, SyncConfig{Client: cfgSamples(s, 1)}, 10*time.Second)
	if err != nil || rep.ExitCode != ExitOK || rep.Action != ActionNone {
		t.Fatalf("err %v exit %d action %s", err, rep.ExitCode, rep.Action)
	}
	if k := s.kernel(t); k.Singleshot != 0 {
		t.Errorf("singleshot %v handed while the daemon runs", k.Singleshot)
	}
	// --force goes ahead.
	rep, err = s.runSync(t, SyncConfig{Client: cfgSamples(s, 1), Force: true}, 20*time.Second)
	if err != nil || rep.Action != ActionSlew {
		t.Fatalf("--force: err %v action %s", err, rep.Action)
	}
}

// No answer: ExitNoSync, nothing changed.
func TestSyncNoServer(t *testing.T) {
	s := newSim(t, simSetup{clockError: time.Second, servers: lans(0)})
	s.net.AddServer("192.0.2.9:123", lan(ntptestDrop()))
	rep, err := s.runSync(t, SyncConfig{Client: ntpclientConfig{Servers: []string{"192.0.2.9:123"}, Burst: 2}}, time.Minute)
	if err != nil || rep.ExitCode != ExitNoSync || rep.NoSync == nil {
		t.Fatalf("err %v exit %d nosync %v", err, rep.ExitCode, rep.NoSync)
	}
	if k := s.kernel(t); k.Singleshot != 0 || len(s.jumps()) != 0 {
		t.Error("the clock was touched")
	}
}
