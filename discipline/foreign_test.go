package discipline_test

import (
	"bytes"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/discipline/simulation"
	"slewd/discipline/statefile"
	"slewd/hostinfo"
)

// syncBuffer is a log sink the simulated process and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// windows watches REALTIME's backward windows in the simulated world.
type windows struct{ *simulation.Metrics }

var foreignOn = discipline.Config{UndoForeignSteps: true, StepForwardOver: time.Second}

// foreignMachine is a synchronized daemon that others will move the clock
// under, with its log and REALTIME's backward windows watched.
func foreignMachine(t *testing.T, kcfg simclock.KernelConfig, cfg discipline.Config, attr func(hostinfo.Observation) hostinfo.Suspect) (*machine, *syncBuffer, *windows) {
	t.Helper()
	log := &syncBuffer{}
	m := newMachine(t, kcfg, 1, true, cfg, func(fc *fakeClient, env *discipline.Env) {
		env.Log = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelInfo}))
		env.Attribute = attr
	})
	win := &windows{simulation.NewMetrics(1e-3)}
	m.w.Observe(win)
	return m, log, win
}

// Another program sets the clock back 5 s while slewd is synchronized:
// slewd hears it at once, steps forward by the same 5 s, so REALTIME is
// below the highest time it had shown for no longer than the handling
// takes, logs one WARN naming the culprit, and counts it.
func TestForeignBackwardStepUndone(t *testing.T) {
	culprit := func(obs hostinfo.Observation) hostinfo.Suspect {
		if obs.Kind != hostinfo.Step || obs.Offset != -5*time.Second {
			t.Errorf("asked about %+v, want a step of -5s", obs)
		}
		return hostinfo.Suspect{Who: "VirtualBox Guest Additions", Why: "VBoxService runs", Fix: "VBoxService --disable-timesync"}
	}
	m, log, win := foreignMachine(t, simclock.KernelConfig{}, foreignOn, culprit)
	m.w.At(600*time.Second, func() { m.w.StepRealtime(-5 * time.Second) })
	m.w.Run(599 * time.Second)
	if s := m.d.Snapshot(); !s.Synced {
		t.Fatalf("not synchronized before the step: %+v", s)
	}
	m.w.Run(600*time.Second + 10*time.Millisecond)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("10 ms after the step the clock is %v off; want it undone", e)
	}
	if win.Backward.Count != 1 || win.Backward.Longest > 1e-3 {
		t.Errorf("backward windows %v (longest %.6f s), want one under 1 ms", win.Backward.Windows, win.Backward.Longest)
	}
	m.w.Run(700 * time.Second)
	if e := m.w.ClockError(); e.Abs() > 100*time.Microsecond {
		t.Errorf("100 s later the clock is %v off", e)
	}
	out := log.String()
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, "another program set the clock back by 5s") ||
		!strings.Contains(out, `culprit="VirtualBox Guest Additions (VBoxService runs)"`) || !strings.Contains(out, "VBoxService --disable-timesync") {
		t.Errorf("want one WARN line with the step, the culprit and the fix; log:\n%s", out)
	}
	f := m.d.Snapshot().Foreign
	if f.Steps != 1 || f.Backward != 1 || f.Undone != 1 || f.Last == nil || f.Last.Step != -5*time.Second || !f.Last.Undone {
		t.Errorf("tally %+v last %+v", f, f.Last)
	}
	st, ok, err := statefile.ReadStatus(m.run)
	if !ok || err != nil || st.Foreign == nil || st.Foreign.Undone != 1 {
		t.Errorf("status file: %+v %v %v", st, ok, err)
	}
}

// With undoing off (and no forward steps), the step stays and is slewed
// out, and the log says it was not undone.
func TestForeignBackwardStepNotUndoneWhenOff(t *testing.T) {
	m, log, win := foreignMachine(t, simclock.KernelConfig{}, discipline.Config{}, nil)
	m.w.At(600*time.Second, func() { m.w.StepRealtime(-time.Second) })
	m.w.Run(601 * time.Second)
	if e := m.w.ClockError(); e > -900*time.Millisecond {
		t.Errorf("1 s after a 1 s step back with undo off: %v off; want it still mostly there", e)
	}
	m.w.Run(640 * time.Second)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("the step was not slewed out: %v", e)
	}
	if !strings.Contains(log.String(), "--undo-foreign-steps=false") || win.Backward.Count != 1 || win.Backward.Longest < 0.5 {
		t.Errorf("windows %v; log:\n%s", win.Backward.Windows, log.String())
	}
}

// A forward step by someone else is not stepped back: slewd slews the
// clock back to true time, and REALTIME never goes back.
func TestForeignForwardStepSlewedBack(t *testing.T) {
	m, log, win := foreignMachine(t, simclock.KernelConfig{}, foreignOn, nil)
	m.w.At(600*time.Second, func() { m.w.StepRealtime(2 * time.Second) })
	m.w.Run(640 * time.Second)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("40 s after a 2 s step forward the clock is %v off (the kernel slews 2 s in 20 s)", e)
	}
	if win.Backward.Count != 0 {
		t.Errorf("REALTIME went back: %v", win.Backward.Windows)
	}
	if !strings.Contains(log.String(), "another program set the clock forward by 2s") || !strings.Contains(log.String(), `culprit=unknown`) {
		t.Errorf("log:\n%s", log.String())
	}
}

// A guest that starts 30 s behind (a resumed VM) is stepped forward at the
// first estimate, and slews the rest: within 1 ms in a few seconds, and
// slewd's own step is not taken for a foreign one.
func TestStepsForwardWhenBehind(t *testing.T) {
	m, log, win := foreignMachine(t, simclock.KernelConfig{ClockError: -30 * time.Second}, foreignOn, nil)
	m.w.Run(3 * time.Second)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("3 s after starting 30 s behind the clock is %v off", e)
	}
	if win.Backward.Count != 0 {
		t.Errorf("REALTIME went back: %v", win.Backward.Windows)
	}
	out := log.String()
	if !strings.Contains(out, "the clock was behind: stepped it forward") || strings.Contains(out, "level=WARN") {
		t.Errorf("want the forward step logged, and no foreign step; log:\n%s", out)
	}
	if f := m.d.Snapshot().Foreign; f.Steps != 0 {
		t.Errorf("slewd's own step was counted as foreign: %+v", f)
	}
	// Ahead is never stepped: slewed.
	m2, _, win2 := foreignMachine(t, simclock.KernelConfig{ClockError: 3 * time.Second}, foreignOn, nil)
	m2.w.Run(3 * time.Second)
	if e := m2.w.ClockError(); e < 2*time.Second {
		t.Errorf("a clock 3 s ahead was not slewed but moved to %v", e)
	}
	if win2.Backward.Count != 0 {
		t.Errorf("REALTIME went back: %v", win2.Backward.Windows)
	}
}

// A step another slewd made (`slewd boot` while the daemon runs), noted in
// the run directory, is slewd's own whatever its direction, the undo
// policy or the mode: not undone, not warned of, not counted as foreign.
func TestOwnBootStepNotForeign(t *testing.T) {
	noUndo := foreignOn
	noUndo.UndoForeignSteps = false
	monitor := foreignOn
	monitor.MonitorOnly = true
	dry := foreignOn
	dry.DryRun = true
	for _, tc := range []struct {
		name       string
		cfg        discipline.Config
		clockError time.Duration // before boot steps it to true time
	}{
		{"back, while slewing a clock ahead", foreignOn, 5 * time.Second},
		{"back, undoing turned off", noUndo, 5 * time.Second},
		{"back, monitor only", monitor, 5 * time.Second},
		{"back, dry run", dry, 5 * time.Second},
		{"forward, under --step-forward-over", foreignOn, -500 * time.Millisecond},
		{"forward, monitor only", monitor, -3 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, log, _ := foreignMachine(t, simclock.KernelConfig{ClockError: tc.clockError}, tc.cfg, nil)
			var step time.Duration
			m.w.At(2*time.Second, func() {
				step = -m.w.ClockError()
				statefile.NoteStep(m.run, statefile.Step{Raw: m.p.Raw(), Step: step, By: "slewd boot"})
				m.w.StepRealtime(step)
			})
			m.w.Run(2*time.Second + 100*time.Millisecond)
			if e := m.w.ClockError(); e.Abs() > time.Millisecond {
				t.Errorf("slewd boot's step was not left as it was: the clock is %v off", e)
			}
			out := log.String()
			if !strings.Contains(out, "stepped by slewd boot") || strings.Contains(out, "level=WARN") {
				t.Errorf("log:\n%s", out)
			}
			if f := m.d.Snapshot().Foreign; f.Steps != 0 || f.Undone != 0 {
				t.Errorf("slewd boot's step was counted as foreign: %+v", f)
			}
			// A daemon that corrects clears the note it used; a dry run or
			// a monitor writes nothing, and remembers it used it.
			_, kept := statefile.OwnStep(m.run, m.p.Raw(), step, time.Millisecond)
			if want := tc.cfg.DryRun || tc.cfg.MonitorOnly; kept != want {
				t.Errorf("the step note is still there: %v, want %v", kept, want)
			}
			// The same step again, within the note's window, is another
			// program's: a note is used once.
			m.w.At(3*time.Second, func() { m.w.StepRealtime(step) })
			m.w.Run(3*time.Second + 100*time.Millisecond)
			if f := m.d.Snapshot().Foreign; f.Steps != 1 {
				t.Errorf("a second step like slewd boot's was not counted as foreign: %+v", f)
			}
		})
	}
}

// Slews by others fire no notification: the once-a-second look finds a
// tick change (VMware Tools), an adjtime() slew (ntpdate, VirtualBox) and
// a leap second armed for midnight, takes each back and says so.
func TestForeignSlewsTakenBack(t *testing.T) {
	m, log, _ := foreignMachine(t, simclock.KernelConfig{}, foreignOn, nil)
	drv := clock.NewDriver(m.w)
	m.w.At(600*time.Second, func() { drv.SetTick(clock.NominalTick + 5) })
	m.w.At(700*time.Second, func() { drv.ArmSingleshot(300 * time.Millisecond) })
	m.w.At(800*time.Second, func() {
		k, _ := drv.Read()
		st := k.Status
		st.LeapInsert = true
		drv.Apply(clock.Change{Status: &st})
	})
	m.w.Run(900 * time.Second)
	k, err := drv.Read()
	if err != nil {
		t.Fatal(err)
	}
	left, _ := drv.SingleshotRemaining()
	if k.Tick != clock.NominalTick || left != 0 || k.Status.LeapInsert {
		t.Errorf("kernel after the foreign changes: tick %d, singleshot %v, leap %v", k.Tick, left, k.Status.LeapInsert)
	}
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("the clock is %v off after the foreign slews", e)
	}
	out := log.String()
	for _, want := range []string{"changed the kernel's tick", "started an adjtime() slew", "armed a leap second"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if f := m.d.Snapshot().Foreign; f.Slews != 3 {
		t.Errorf("tally %+v: want 3 slews", f)
	}
}

// The tick method owns tick and frequency while its bulk runs, and its own
// singleshot tail after: a foreign tick or frequency change mid-bulk is
// seen and the bias written again, and an adjtime() slew once it is done
// is cancelled; the clock still lands.
func TestForeignSlewsTakenBackWithTickMethod(t *testing.T) {
	cfg := foreignOn
	cfg.Method = adjtime.MethodTick
	m, log, win := foreignMachine(t, simclock.KernelConfig{ClockError: 2 * time.Second}, cfg, nil)
	drv := clock.NewDriver(m.w)
	var bulkTick int
	m.w.At(5*time.Second, func() {
		k, _ := drv.Read()
		bulkTick = int(k.Tick)
		drv.SetTick(clock.NominalTick + 5) // VMware Tools, mid-bulk
	})
	m.w.At(10*time.Second, func() { drv.SetFrequency(30) }) // another daemon, mid-bulk
	m.w.At(600*time.Second, func() { drv.ArmSingleshot(300 * time.Millisecond) })
	m.w.Run(7 * time.Second)
	if k, _ := drv.Read(); int(k.Tick) != bulkTick || bulkTick == clock.NominalTick {
		t.Errorf("2 s after a foreign tick change mid-bulk the tick is %d; want the bulk's %d back", k.Tick, bulkTick)
	}
	m.w.Run(900 * time.Second)
	k, err := drv.Read()
	if err != nil {
		t.Fatal(err)
	}
	left, _ := drv.SingleshotRemaining()
	// The oscillator is exact: the frequency left is the drift estimate's
	// error, not the other daemon's 30 ppm.
	if k.Tick != clock.NominalTick || math.Abs(k.FrequencyPPM) > 1 || left != 0 {
		t.Errorf("kernel after the foreign changes: tick %d, frequency %.3f ppm, singleshot %v", k.Tick, k.FrequencyPPM, left)
	}
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("the clock is %v off after the foreign slews", e)
	}
	if win.Backward.Count != 0 {
		t.Errorf("REALTIME went back: %v", win.Backward.Windows)
	}
	out := log.String()
	for _, want := range []string{"changed the kernel's tick", "changed the kernel clock's mode or frequency", "started an adjtime() slew"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if f := m.d.Snapshot().Foreign; f.Slews != 3 {
		t.Errorf("tally %+v: want 3 slews", f)
	}
}

// After the tick method's bias, its last milliseconds drain in the
// singleshot: an adjtime() that replaces that tail is told from it by its
// sign or its size, cancelled and counted; the tail is armed again and
// the clock lands.
func TestForeignSingleshotReplacingTheTickTail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		foreign func(tail time.Duration) time.Duration
	}{
		{"the other sign, smaller", func(tail time.Duration) time.Duration { return -tail / 2 }},
		{"the same sign, larger", func(tail time.Duration) time.Duration { return 3 * tail }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := foreignOn
			cfg.Method = adjtime.MethodTick
			m, log, win := foreignMachine(t, simclock.KernelConfig{ClockError: 2 * time.Second}, cfg, nil)
			drv := clock.NewDriver(m.w)
			var tail time.Duration
			for at := 15 * time.Second; at < 40*time.Second; at += 100 * time.Millisecond {
				m.w.At(at, func() {
					if left, _ := drv.SingleshotRemaining(); tail == 0 && left != 0 {
						tail = left
						drv.ArmSingleshot(tc.foreign(left))
					}
				})
			}
			m.w.Run(120 * time.Second)
			if tail == 0 {
				t.Fatal("no singleshot tail after the tick bias: nothing was tested")
			}
			if f := m.d.Snapshot().Foreign; f.Slews != 1 {
				t.Errorf("tail %v replaced by %v: tally %+v, want 1 slew", tail, tc.foreign(tail), f)
			}
			if !strings.Contains(log.String(), "started an adjtime() slew") {
				t.Errorf("log:\n%s", log)
			}
			if e := m.w.ClockError(); e.Abs() > time.Millisecond {
				t.Errorf("the clock is %v off", e)
			}
			if win.Backward.Count != 0 {
				t.Errorf("REALTIME went back: %v", win.Backward.Windows)
			}
		})
	}
}

// A suspend of an hour: RAW stood still, true time went on. slewd moves
// its frame by the time asleep, re-measures at once, and the clock is
// right again within seconds, never having gone back.
func TestResumeFromSuspend(t *testing.T) {
	m, log, win := foreignMachine(t, simclock.KernelConfig{}, foreignOn, nil)
	m.w.Run(600 * time.Second)
	m.w.SuspendMismeasured(time.Hour, time.Hour-300*time.Millisecond)
	m.w.Run(m.w.Now() + 5*time.Second)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("5 s after resuming (the kernel measured the hour 0.3 s short) the clock is %v off", e)
	}
	if win.Backward.Count != 0 {
		t.Errorf("REALTIME went back: %v", win.Backward.Windows)
	}
	if out := log.String(); !strings.Contains(out, "resumed after") {
		t.Errorf("log:\n%s", out)
	}
	if m.fc.pollNows == 0 {
		t.Error("no re-measurement after the resume")
	}
}

// An agent that steps the clock to its own time whenever they differ by
// more than its threshold (VirtualBox, Hyper-V on some kernels) fights
// slewd while slewd's clock is off: each of its backward steps is undone
// at once, slewd slews toward the truth they agree on, and the agent soon
// stops crossing its threshold. The fight ends by itself.
func TestPeriodicAgentFightEnds(t *testing.T) {
	m, log, win := foreignMachine(t, simclock.KernelConfig{}, foreignOn, nil)
	var agentSteps []time.Duration
	const period, threshold = 3 * time.Second, 500 * time.Millisecond
	var agent func()
	agent = func() {
		if e := m.w.ClockError(); e.Abs() > threshold {
			m.w.StepRealtime(-e)
			agentSteps = append(agentSteps, m.w.Now())
		}
		m.w.After(period, agent)
	}
	// The guest comes back 5 s ahead (a resumed VM), and the agent runs.
	m.w.At(600*time.Second, func() { m.w.StepRealtime(5 * time.Second); m.w.After(period, agent) })
	m.w.Run(900 * time.Second)
	if len(agentSteps) == 0 {
		t.Fatal("the agent never stepped")
	}
	last := agentSteps[len(agentSteps)-1]
	if last > 600*time.Second+90*time.Second {
		t.Errorf("the agent still stepped at %v: the fight did not end (%d steps)", last, len(agentSteps))
	}
	if win.Backward.Count != len(agentSteps) || win.Backward.Longest > 1e-3 {
		t.Errorf("%d agent steps, windows %v: want one under 1 ms each", len(agentSteps), win.Backward.Windows)
	}
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("after the fight the clock is %v off", e)
	}
	if !strings.Contains(log.String(), "something keeps moving the clock") {
		t.Errorf("a repeat offender gives no louder line:\n%s", log.String())
	}
	t.Logf("agent stepped %d times, the last %v after the start; windows %v", len(agentSteps), last-600*time.Second, win.Backward.Windows)
}

// Another program sets the clock back and puts it right again before
// the loop gets to the notice of the first step, whose reading is then
// stale: slewd must not undo a step that is no longer there (it would put
// the clock a second ahead). The stale notice is posted by hand, as a
// busy loop would find it.
func TestForeignStepPutRightBeforeTheUndo(t *testing.T) {
	m, log, _ := foreignMachine(t, simclock.KernelConfig{}, foreignOn, nil)
	m.w.At(600*time.Second, func() {
		m.w.StepRealtime(-time.Second)
		stale := clock.ReadOffsets(m.p, 1)
		m.w.StepRealtime(time.Second)
		m.p.Post(clock.ClockChanged{After: stale, Woke: stale.Raw, Canceled: true})
	})
	m.w.Run(600*time.Second + 10*time.Millisecond)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("10 ms after, the clock is %v off; log:\n%s", e, log.String())
	}
}

// An NTP reply queued when another program steps the clock back: the
// step is heard of before the estimate is acted on, and corrected once.
func TestForeignStepBeforeAQueuedEstimate(t *testing.T) {
	m, log, _ := foreignMachine(t, simclock.KernelConfig{}, foreignOn, nil)
	m.w.At(600*time.Second, func() { m.p.Post(fakeTick{}); m.w.StepRealtime(-5 * time.Second) })
	m.w.Run(600*time.Second + 10*time.Millisecond)
	if e := m.w.ClockError(); e.Abs() > time.Millisecond {
		t.Errorf("10 ms after, the clock is %v off; log:\n%s", e, log.String())
	}
	if strings.Contains(log.String(), "stepped it forward") {
		t.Errorf("the step back was also taken for a clock behind:\n%s", log.String())
	}
}
