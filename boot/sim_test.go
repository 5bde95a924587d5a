package boot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/discipline/statefile"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// sim is a simulated machine with NTP servers on a simulated network.
type sim struct {
	w       *simclock.World
	net     *ntptest.Network
	rec     *simclock.Recorder
	servers []string
	state   *adjtime.MemStore
	run     *adjtime.MemStore
	log     io.Writer
}

type simSetup struct {
	clockError time.Duration
	driftPPM   float64
	servers    []ntptest.ServerConfig
}

// lan is a server on a LAN: 200 µs each way plus a little queueing.
func lan(cfg ntptest.ServerConfig) ntptest.ServerConfig {
	cfg.Delay, cfg.Jitter = 200*time.Microsecond, 20*time.Microsecond
	if cfg.Stratum == 0 {
		cfg.Stratum = 2
	}
	return cfg
}

func lans(n int) []ntptest.ServerConfig {
	var out []ntptest.ServerConfig
	for range n {
		out = append(out, lan(ntptest.ServerConfig{}))
	}
	return out
}

func newSim(t *testing.T, s simSetup) *sim {
	t.Helper()
	w := simclock.New(simclock.Config{Seed: 7, Kernel: simclock.KernelConfig{
		ClockError: s.clockError, Oscillator: simclock.Oscillator{DriftPPM: s.driftPPM},
	}})
	r := &sim{w: w, net: ntptest.NewNetwork(w), rec: simclock.NewRecorder(w),
		state: &adjtime.MemStore{}, run: &adjtime.MemStore{}, log: io.Discard}
	if testing.Verbose() {
		r.log = tlog{t}
	}
	for i, cfg := range s.servers {
		addr := fmt.Sprintf("192.0.2.%d:123", i+1)
		r.net.AddServer(addr, cfg)
		r.servers = append(r.servers, addr)
	}
	return r
}

type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) { l.t.Log(string(b)); return len(b), nil }

// env is the one-shot environment of simulated process p.
func (s *sim) env(p *simclock.Process) Env {
	return Env{
		Net: ntpclient.Env{Clock: p, Loop: p, Dialer: s.net.Dialer(p), Resolver: s.net.Resolver(),
			Logger: slog.New(slog.NewTextHandler(s.log, nil)), Rand: rand.New(rand.NewPCG(1, 2)), SimulatedTime: true},
		State: s.state, Run: s.run,
		Log: slog.New(slog.NewTextHandler(s.log, nil)),
	}
}

// runBoot runs boot.Run as a process (with CAP_SYS_TIME if privileged)
// and lets the world go on until world time until.
func (s *sim) runBoot(t *testing.T, cfg Config, privileged bool, until time.Duration) (Report, error, time.Duration) {
	t.Helper()
	if cfg.Client.Servers == nil {
		cfg.Client.Servers = s.servers
	}
	var rep Report
	var runErr error
	var done time.Duration
	p := s.w.Spawn("slewd-boot", privileged, func(ctx context.Context, p *simclock.Process) error {
		rep, runErr = Run(ctx, cfg, s.env(p))
		done = s.w.Now()
		return nil
	})
	s.w.Run(until)
	if ok, _ := p.Exited(); !ok {
		t.Fatalf("slewd boot still running at %v", until)
	}
	return rep, runErr, done
}

func (s *sim) kernel(t *testing.T) KernelClock {
	t.Helper()
	k, err := ReadKernel(s.w)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (s *sim) jumps() []simclock.Jump {
	s.rec.Backward() // takes the lock
	return append([]simclock.Jump(nil), s.rec.Jumps...)
}

// The clock 54 s ahead at boot: one step back, and the clock is right.
func TestBootStepsOnce(t *testing.T) {
	s := newSim(t, simSetup{clockError: 54 * time.Second, driftPPM: 30, servers: lans(4)})
	// Look right after boot: the oscillator is 30 ppm off and maxerror
	// grows 500 µs/s.
	rep, err, done := s.runBoot(t, Config{}, true, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode != ExitOK || rep.Action != ActionStep || rep.Estimate == nil || rep.Estimate.Sources < 3 {
		t.Fatalf("report: exit %d action %s sources %v reason %q", rep.ExitCode, rep.Action, rep.Estimate, rep.Reason)
	}
	if math.Abs(rep.Step.Seconds()+54) > 0.001 {
		t.Errorf("stepped by %v, want about -54 s", rep.Step)
	}
	if done > time.Second {
		t.Errorf("boot took %v of virtual time on a LAN", done)
	}
	j := s.jumps()
	if len(j) != 1 || j[0].Why != "ADJ_SETOFFSET" {
		t.Fatalf("jumps %+v, want exactly one ADJ_SETOFFSET", j)
	}
	if e := s.w.ClockError(); e.Abs() > 500*time.Microsecond {
		t.Errorf("clock off by %v after the step", e)
	}
	k := s.kernel(t)
	// Tick and frequency are left alone (a step keeps them), no slew is
	// pending, and the kernel is told the truth: synchronized, maxerror small.
	if k.Tick != clock.NominalTick || k.FrequencyPPM != 0 || k.Singleshot != 0 || k.PLLOffset != 0 {
		t.Errorf("kernel left with tick %d freq %v ppm singleshot %v PLL %v", k.Tick, k.FrequencyPPM, k.Singleshot, k.PLLOffset)
	}
	if k.State == clock.TimeError || k.Status.Unsync || k.MaxError > 10*time.Millisecond || !rep.Synced {
		t.Errorf("kernel after boot: state %v status %v maxerror %v (synced %v)", k.State, k.Status.Names(), k.MaxError, rep.Synced)
	}
	if k.Status.Nano {
		t.Error("STA_NANO left set by ADJ_SETOFFSET|ADJ_NANO; boot should put the kernel's units back")
	}
	// The step was noted for a running daemon, so that it is not undone.
	var note statefile.Step
	if b, err := s.run.ReadFile(statefile.StepFile); err != nil || json.Unmarshal(b, &note) != nil || note.Step != rep.Step || note.By != "slewd boot" {
		t.Errorf("the step was not noted in the run directory: %+v (%v)", note, err)
	}
	// The high-water mark is a lower bound of true time.
	mark, ok, err := statefile.ReadHighWater(s.state)
	if err != nil || !ok {
		t.Fatalf("high-water mark: %v %v", ok, err)
	}
	if trueAt := s.w.TrueTime(); mark.After(trueAt) || trueAt.Sub(mark) > time.Minute {
		t.Errorf("high-water mark %v, true time now %v", mark, trueAt)
	}
}

// --forward-only with the clock ahead: no step; the singleshot slews it.
func TestBootForwardOnlyAhead(t *testing.T) {
	s := newSim(t, simSetup{clockError: 54 * time.Second, servers: lans(3)})
	rep, err, _ := s.runBoot(t, Config{ForwardOnly: true}, true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode != ExitOK || rep.Action != ActionSlew || !rep.BackwardRefused || rep.Step != 0 {
		t.Fatalf("report: exit %d action %s backward-refused %v step %v", rep.ExitCode, rep.Action, rep.BackwardRefused, rep.Step)
	}
	if n, _ := s.rec.Backward(); n != 0 || len(s.jumps()) != 0 {
		t.Fatalf("the clock went back %d times, jumps %+v", n, s.jumps())
	}
	k := s.kernel(t)
	// After a minute the singleshot has slewed about 30 ms of the 54 s.
	if got := k.Singleshot.Seconds(); got > -53.9 || got < -54.03 {
		t.Errorf("pending singleshot %v, want about -54 s less a minute of 500 ppm", k.Singleshot)
	}
	if e := s.w.ClockError(); e > 54*time.Second-25*time.Millisecond || e < 54*time.Second-35*time.Millisecond {
		t.Errorf("clock error %v after a minute of slewing back at 500 ppm from 54 s", e)
	}
	if !k.Status.Unsync {
		t.Error("kernel told synchronized while 54 s ahead")
	}
}

// A small offset is slewed by the singleshot and lands within
// microseconds: the compensation for the slower REALTIME second is right.
func TestBootSlewsSmallOffset(t *testing.T) {
	for _, off := range []time.Duration{-50 * time.Millisecond, 50 * time.Millisecond} {
		t.Run(off.String(), func(t *testing.T) {
			s := newSim(t, simSetup{clockError: -off, servers: lans(3)})
			rep, err, _ := s.runBoot(t, Config{}, true, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Action != ActionSlew || math.Abs((rep.Slew-off).Seconds()) > 200e-6 {
				t.Fatalf("action %s slew %v, want slew of about %v", rep.Action, rep.Slew, off)
			}
			if len(s.jumps()) != 0 {
				t.Fatalf("jumps: %+v", s.jumps())
			}
			s.w.Run(5*time.Second + SlewDuration(off) + 5*time.Second)
			if e := s.w.ClockError(); e.Abs() > 300*time.Microsecond {
				t.Errorf("after the slew the clock is off by %v", e)
			}
			if k := s.kernel(t); k.Singleshot != 0 {
				t.Errorf("singleshot still pending: %v", k.Singleshot)
			}
		})
	}
}

// One falseticker an hour off does not move the clock.
func TestBootFalseticker(t *testing.T) {
	servers := lans(4)
	servers[2].Offset = time.Hour
	s := newSim(t, simSetup{clockError: -20 * time.Second, servers: servers})
	rep, err, _ := s.runBoot(t, Config{}, true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Action != ActionStep || math.Abs(rep.Step.Seconds()-20) > 0.001 {
		t.Fatalf("action %s step %v, want +20 s", rep.Action, rep.Step)
	}
	if e := s.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("clock off by %v", e)
	}
}

// No server answers: boot gives up at the deadline with the documented
// exit code and leaves the clock alone; the high-water mark moves it
// forward only.
func TestBootNoServer(t *testing.T) {
	dead := []ntptest.ServerConfig{{Drop: true}, {Drop: true}}
	for _, tc := range []struct {
		name     string
		cfg      Config
		mark     time.Duration // high-water mark relative to true time; 0: none
		exit     int
		restored bool
	}{
		{"default", Config{Deadline: 10 * time.Second}, 0, ExitNoSync, false},
		{"require sync", Config{Deadline: 10 * time.Second, RequireSync: true}, 0, ExitNoSyncRequired, false},
		{"high-water ahead of the clock", Config{Deadline: 10 * time.Second, RestoreHighWater: true}, -time.Hour, ExitNoSync, true},
		{"high-water behind the clock", Config{Deadline: 10 * time.Second, RestoreHighWater: true}, -4 * 24 * time.Hour, ExitNoSync, false},
		{"high-water, dry run", Config{Deadline: 10 * time.Second, RestoreHighWater: true, DryRun: true}, -time.Hour, ExitNoSync, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The RTC lost three days.
			s := newSim(t, simSetup{clockError: -72 * time.Hour, servers: dead})
			if tc.mark != 0 {
				if err := statefile.SaveHighWater(s.state, s.w.TrueTime().Add(tc.mark)); err != nil {
					t.Fatal(err)
				}
			}
			rep, err, done := s.runBoot(t, tc.cfg, true, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if rep.ExitCode != tc.exit || rep.NoSync == nil || rep.HighWater.Restored != tc.restored {
				t.Fatalf("exit %d (want %d) nosync %v restored %v reason %q", rep.ExitCode, tc.exit, rep.NoSync, rep.HighWater.Restored, rep.Reason)
			}
			if done < 10*time.Second || done > 11*time.Second {
				t.Errorf("gave up at %v, deadline 10 s", done)
			}
			if n, _ := s.rec.Backward(); n != 0 {
				t.Errorf("the clock went back")
			}
			want := -72 * time.Hour
			if tc.restored {
				want = tc.mark - done // the mark is a fixed time; the clock was stepped to it at done
				if j := s.jumps(); len(j) != 1 || j[0].Delta <= 0 {
					t.Errorf("jumps %+v, want one forward", j)
				}
				if k := s.kernel(t); !k.Status.Unsync || k.Status.Nano {
					t.Errorf("after restoring the mark: status %v", k.Status.Names())
				}
			}
			if e := s.w.ClockError(); (e - want).Abs() > time.Millisecond {
				t.Errorf("clock error %v, want %v", e, want)
			}
		})
	}
}

// The network comes up 5 s late: boot keeps asking and is done soon after,
// well before its deadline.
func TestBootNetworkLate(t *testing.T) {
	s := newSim(t, simSetup{clockError: 3 * time.Second, servers: []ntptest.ServerConfig{{Drop: true}, {Drop: true}, {Drop: true}}})
	s.w.At(5*time.Second, func() {
		for _, a := range s.servers {
			s.net.Server(a).SetConfig(lan(ntptest.ServerConfig{}))
		}
	})
	rep, err, done := s.runBoot(t, Config{}, true, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ExitCode != ExitOK || rep.Action != ActionStep {
		t.Fatalf("exit %d action %s: %s", rep.ExitCode, rep.Action, rep.Reason)
	}
	if done < 5*time.Second || done > 8*time.Second {
		t.Errorf("done at %v; the network came up at 5 s and queries are retried every 2 s", done)
	}
	if e := s.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("clock off by %v", e)
	}
}

// A dry run measures and plans but never writes the kernel: it runs
// without CAP_SYS_TIME, where any write would fail.
func TestBootDryRun(t *testing.T) {
	s := newSim(t, simSetup{clockError: 54 * time.Second, servers: lans(3)})
	rep, err, _ := s.runBoot(t, Config{DryRun: true}, false, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Action != ActionStep || !rep.DryRun || math.Abs(rep.Step.Seconds()+54) > 0.001 {
		t.Fatalf("dry run planned %s %v", rep.Action, rep.Step)
	}
	if len(s.jumps()) != 0 || (s.w.ClockError()-54*time.Second).Abs() > time.Microsecond {
		t.Fatalf("dry run changed the clock")
	}
	if _, ok, _ := statefile.ReadHighWater(s.state); ok {
		t.Error("dry run saved a high-water mark")
	}
}

// Without CAP_SYS_TIME boot fails at once with a permission error.
func TestBootUnprivileged(t *testing.T) {
	s := newSim(t, simSetup{servers: lans(3)})
	_, err, done := s.runBoot(t, Config{}, false, time.Minute)
	if err == nil || !clock.ErrPermission(err) {
		t.Fatalf("err %v, want a permission error", err)
	}
	if done != 0 {
		t.Errorf("failed after %v; it should not measure first", done)
	}
}

func TestHighWaterStep(t *testing.T) {
	at := time.Date(2026, 11, 23, 19, 40, 12, 123456789, time.UTC)
	if d := HighWaterStep(at.Add(-time.Hour), at); d != time.Hour {
		t.Errorf("behind by an hour: step %v", d)
	}
	for _, now := range []time.Time{at, at.Add(time.Nanosecond), at.Add(24 * time.Hour)} {
		if d := HighWaterStep(now, at); d != 0 {
			t.Errorf("clock at %v, mark %v: step %v, want none (never back)", now, at, d)
		}
	}
}

var _ = errors.New

// SingleshotMicros on the simulated kernel: with the clock running at a
// base rate, the singleshot it asks for moves REALTIME against its base
// trajectory by the offset to within a microsecond (uncompensated, 1 s at
// +200 ppm base and 500 ppm would be off by 700 µs).
func TestSingleshotMicrosOnKernel(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		base   float64
	}{{time.Second, 200}, {-time.Second, 200}, {-time.Second, -450}, {300 * time.Millisecond, 0}} {
		t.Run(fmt.Sprintf("%v@%+vppm", tc.offset, tc.base), func(t *testing.T) {
			w := simclock.New(simclock.Config{})
			var gain time.Duration
			p := w.Spawn("ss", true, func(ctx context.Context, p *simclock.Process) error {
				d := clock.NewDriver(p)
				if _, err := d.SetFrequency(tc.base); err != nil {
					return err
				}
				before := clock.Read(p, 1)
				if _, err := d.ArmSingleshot(time.Duration(SingleshotMicros(tc.offset, tc.base)) * time.Microsecond); err != nil {
					return err
				}
				if err := clock.Sleep(ctx, p, SlewDuration(tc.offset)*11/10+5*time.Second); err != nil {
					return err
				}
				if k, err := ReadKernel(p); err != nil || k.Singleshot != 0 {
					return fmt.Errorf("singleshot not done: %+v %v", k, err)
				}
				after := clock.Read(p, 1)
				base := time.Duration(tc.base * 1e-6 * float64(after.Raw-before.Raw))
				gain = after.RealMinusRaw() - before.RealMinusRaw() - base
				return nil
			})
			w.Run(SlewDuration(tc.offset)*2 + 10*time.Second)
			if ok, err := p.Exited(); !ok || err != nil {
				t.Fatalf("exited %v: %v", ok, err)
			}
			if (gain - tc.offset).Abs() > time.Microsecond {
				t.Errorf("REALTIME moved %v against its base trajectory, want %v", gain, tc.offset)
			}
		})
	}
}

type ntpclientConfig = ntpclient.Config

func ntptestDrop() ntptest.ServerConfig { return ntptest.ServerConfig{Drop: true} }

// PLLFuture on the simulated kernel: what a pending PLL offset (left by a
// daemon that stopped) will still move REALTIME, read at any point of a
// second, is what it then does, to within the kernel's rounding.
func TestPLLFutureOnKernel(t *testing.T) {
	for _, tc := range []struct {
		offset   time.Duration
		constant int64
		after    time.Duration // when to read, after arming
	}{{300 * time.Millisecond, 0, 1300 * time.Millisecond}, {-200 * time.Millisecond, 0, 2700 * time.Millisecond}, {40 * time.Millisecond, 2, 5100 * time.Millisecond}} {
		t.Run(fmt.Sprintf("%v-tc%d", tc.offset, tc.constant), func(t *testing.T) {
			w := simclock.New(simclock.Config{})
			var predicted, gain time.Duration
			p := w.Spawn("pll", true, func(ctx context.Context, p *simclock.Process) error {
				st := clock.PLLMode(true)
				if _, err := clock.NewDriver(p).Apply(clock.Change{Status: &st, SetTimeConstant: true, TimeConstant: tc.constant,
					SetPLLOffset: true, PLLOffset: tc.offset}); err != nil {
					return err
				}
				if err := clock.Sleep(ctx, p, tc.after); err != nil {
					return err
				}
				k, err := ReadKernel(p)
				if err != nil {
					return err
				}
				before := clock.Read(p, 1)
				predicted = PLLFuture(k.PLLOffset, k.TimeConstant, secondFraction(before.Real), k.RatePPM())
				if err := clock.Sleep(ctx, p, 200*time.Second); err != nil {
					return err
				}
				gain = clock.Read(p, 1).RealMinusRaw() - before.RealMinusRaw()
				return nil
			})
			w.Run(300 * time.Second)
			if ok, err := p.Exited(); !ok || err != nil {
				t.Fatalf("exited %v: %v", ok, err)
			}
			if (predicted - gain).Abs() > 2*time.Microsecond {
				t.Errorf("predicted %v, the PLL delivered %v", predicted, gain)
			}
		})
	}
}

// A daemon stopped a moment ago and left a PLL offset draining: sync slews
// only the rest, and the clock lands.
func TestSyncWithPendingPLL(t *testing.T) {
	s := newSim(t, simSetup{clockError: 400 * time.Millisecond, servers: lans(3)})
	st := clock.PLLMode(false)
	if _, err := clock.NewDriver(s.w).Apply(clock.Change{Status: &st, SetTimeConstant: true,
		SetPLLOffset: true, PLLOffset: -300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.runSync(t, SyncConfig{Client: cfgSamples(s, 2)}, 10*time.Second)
	if err != nil || rep.Action != ActionSlew {
		t.Fatalf("err %v action %s", err, rep.Action)
	}
	if rep.PLLFuture >= 0 {
		t.Errorf("PLL future %v, want negative (the PLL was slowing the clock)", rep.PLLFuture)
	}
	s.w.Run(10*time.Second + 1000*time.Second)
	if e := s.w.ClockError(); e.Abs() > 200*time.Microsecond {
		t.Errorf("the clock is off by %v after the PLL and the singleshot", e)
	}
}

// A high-water mark in the year 2200 (173 years past the build) is not
// restored: boot would step the clock 173 years, and --forward-only could
// never bring it back. The reason says why; a mark within the bound is
// restored as before.
func TestBootRefusesImplausibleHighWater(t *testing.T) {
	dead := []ntptest.ServerConfig{{Drop: true}}
	for _, tc := range []struct {
		ahead    time.Duration
		restored bool
	}{{173 * 365 * 24 * time.Hour, false}, {time.Hour, true}} {
		s := newSim(t, simSetup{clockError: 0, servers: dead})
		if err := statefile.SaveHighWater(s.state, s.w.TrueTime().Add(tc.ahead)); err != nil {
			t.Fatal(err)
		}
		cfg := Config{Deadline: 5 * time.Second, RestoreHighWater: true, ForwardOnly: true, Built: s.w.TrueTime()}
		rep, err, _ := s.runBoot(t, cfg, true, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if rep.HighWater.Restored != tc.restored || len(s.jumps()) != map[bool]int{true: 1, false: 0}[tc.restored] {
			t.Errorf("mark %v ahead: restored %v, jumps %+v; want restored %v", tc.ahead, rep.HighWater.Restored, s.jumps(), tc.restored)
		}
		if !tc.restored && !strings.Contains(rep.Reason, "later than this slewd's build") {
			t.Errorf("reason %q does not say why the mark was ignored", rep.Reason)
		}
	}
}
