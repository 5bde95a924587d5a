package discipline_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/discipline/simulation"
	"slewd/discipline/statefile"
	"slewd/ntpclient"
)

// fakeClient stands in for ntpclient.Client: every poll it measures the
// simulated clock against true time the way one NTP exchange would, with
// a one-way delay plus exponential jitter in each direction, and reports
// the sample as an estimate with a delay-based noise.
type fakeClient struct {
	w        *simclock.World
	p        *simclock.Process
	poll     time.Duration
	delay    time.Duration
	jitter   time.Duration
	rng      *rand.Rand
	next     time.Duration
	minDelay time.Duration
	silent   bool // never produces an estimate (no server answers)

	pollLimits []time.Duration // what SetPollLimit was told
	pollNows   int
}

type fakeTick struct{}

func (f *fakeClient) Start() { f.next = f.p.Raw() }

func (f *fakeClient) Tick() time.Duration {
	now := f.p.Raw()
	if now >= f.next {
		f.next = now + f.poll
		f.p.Post(fakeTick{})
	}
	return f.next - now
}

func (f *fakeClient) Handle(ev any) (*ntpclient.Estimate, bool) {
	if _, ok := ev.(fakeTick); !ok {
		return nil, false
	}
	if f.silent {
		return nil, true
	}
	d1 := f.delay + time.Duration(f.rng.ExpFloat64()*float64(f.jitter))
	d2 := f.delay + time.Duration(f.rng.ExpFloat64()*float64(f.jitter))
	rd := clock.Read(f.p, 1)
	trueOffset := -f.w.ClockError()
	// ((t2−t1)+(t3−t4))/2 with t2=t3 at the server: true offset + (d1−d2)/2.
	offset := trueOffset + (d1-d2)/2
	delay := d1 + d2
	if f.minDelay == 0 || delay < f.minDelay {
		f.minDelay = delay
	}
	sigma := max(time.Duration(float64(delay-f.minDelay)/math.Sqrt(12)), time.Microsecond)
	smp := ntpclient.Sample{Raw: rd.Raw, Offset: offset, RealMinusRaw: rd.RealMinusRaw(), Delay: delay}
	return &ntpclient.Estimate{Raw: rd.Raw, Offset: offset, RealMinusRaw: rd.RealMinusRaw(),
		Error: delay / 2, Jitter: sigma, Sources: 1, Sample: smp, SampleBound: (delay - f.minDelay) / 2}, true
}

func (f *fakeClient) Reports() []ntpclient.SourceReport {
	return []ntpclient.SourceReport{{Source: "fake", Selected: true}}
}

func (f *fakeClient) SetPollLimit(d time.Duration) { f.pollLimits = append(f.pollLimits, d) }

func (f *fakeClient) PollNow() { f.pollNows++; f.next = f.p.Raw() }

// machine is a simulated kernel with one discipline on it, fed by a
// fakeClient.
type machine struct {
	w      *simclock.World
	p      *simclock.Process
	fc     *fakeClient
	d      *discipline.Discipline
	state  *adjtime.MemStore
	run    *adjtime.MemStore
	notify []string
}

func newMachine(t *testing.T, kcfg simclock.KernelConfig, seed uint64, privileged bool, cfg discipline.Config, tune func(*fakeClient, *discipline.Env)) *machine {
	t.Helper()
	m := &machine{w: simclock.New(simclock.Config{Seed: seed, Kernel: kcfg}), state: &adjtime.MemStore{}, run: &adjtime.MemStore{}}
	m.p = m.w.Spawn("slewd", privileged, func(ctx context.Context, p *simclock.Process) error {
		m.fc = &fakeClient{w: m.w, p: p, poll: 64 * time.Second, delay: 200 * time.Microsecond,
			jitter: 20 * time.Microsecond, rng: m.w.Rand("fake")}
		env := discipline.Env{Clock: p, Loop: p, Client: m.fc, State: m.state, Run: m.run,
			BootID: func() string { return "1" }, Notify: func(s string) { m.notify = append(m.notify, s) }}
		if tune != nil {
			tune(m.fc, &env)
		}
		m.d = discipline.New(cfg, env)
		return m.d.Run(ctx)
	})
	return m
}

// Ideal samples (one exchange a poll, 200 µs + exp. 20 µs each way), an
// oscillator 20 ppm fast wandering 1 ppb/√s: after an hour the clock stays
// within 35 µs of true time (chrony, on this model: 25-37 µs), and never
// went back.
func TestSteadyStateWithIdealSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates days")
	}
	for seed := uint64(1); seed <= 10; seed++ {
		m := newMachine(t, simclock.KernelConfig{ClockError: 3 * time.Millisecond,
			Oscillator: simclock.Oscillator{DriftPPM: 20, Wander: 1e-9}}, seed, true, discipline.Config{}, nil)
		met := simulation.NewMetrics(1e-3)
		m.w.Observe(met)
		rec := simclock.NewRecorder(m.w)
		m.w.Run(24 * time.Hour)
		rms, mx, ok := met.Since(3600)
		if !ok {
			t.Fatalf("seed %d: no figures after 1 h", seed)
		}
		t.Logf("seed %d: RMS %.2f µs, max %.2f µs after 1 h", seed, rms*1e6, mx*1e6)
		if rms > 7e-6 || mx > 35e-6 {
			t.Errorf("seed %d: RMS %.2f µs, max %.2f µs after 1 h; want ≤ 7 and ≤ 35", seed, rms*1e6, mx*1e6)
		}
		if n, _ := rec.Backward(); n != 0 {
			t.Errorf("seed %d: REALTIME went back %d times", seed, n)
		}
		if conv := met.ConvergedAfter(); conv < 0 || conv > 300 {
			t.Errorf("seed %d: 3 ms not corrected for good within 5 min (converged %v)", seed, conv)
		}
	}
}

func TestRunRefusesWithoutCapSysTime(t *testing.T) {
	m := newMachine(t, simclock.KernelConfig{}, 1, false, discipline.Config{}, nil)
	m.w.Run(time.Minute)
	done, err := m.p.Exited()
	if !done || err == nil || !strings.Contains(err.Error(), "CAP_SYS_TIME") {
		t.Errorf("exited %v with %v; want a refusal naming CAP_SYS_TIME", done, err)
	}
	if m.d.Snapshot().Started {
		t.Error("the snapshot says started")
	}
}

// What systemd is told: ready at once, the status as it goes, the
// watchdog every interval, stopping at the end.
func TestNotifications(t *testing.T) {
	m := newMachine(t, simclock.KernelConfig{ClockError: 20 * time.Millisecond}, 1, true, discipline.Config{},
		func(_ *fakeClient, env *discipline.Env) { env.Watchdog = 10 * time.Second })
	m.w.At(time.Minute, m.p.Terminate)
	m.w.Run(2 * time.Minute)
	count := map[string]int{}
	for _, msg := range m.notify {
		k, _, _ := strings.Cut(msg, "=")
		count[k]++
		if k == "STATUS" && !strings.Contains(msg, "left to slew") && !strings.Contains(msg, "waiting for the first estimate") {
			t.Errorf("status %q", msg)
		}
	}
	if len(m.notify) == 0 || !strings.HasPrefix(m.notify[0], "READY=1") || m.notify[len(m.notify)-1] != "STOPPING=1" {
		t.Errorf("want READY first and STOPPING last, got %q", m.notify)
	}
	if count["STATUS"] == 0 || count["WATCHDOG"] < 6 {
		t.Errorf("notifications %v: want STATUS, and WATCHDOG about every 10 s for a minute", count)
	}
}

// Once synchronized, the daemon leaves a high-water mark for `slewd boot
// --restore-from-high-water`: a time that has certainly passed.
func TestSavesHighWater(t *testing.T) {
	m := newMachine(t, simclock.KernelConfig{ClockError: 30 * time.Millisecond}, 1, true, discipline.Config{DriftInterval: 10 * time.Minute}, nil)
	m.w.Run(15 * time.Minute)
	mark, ok, err := statefile.ReadHighWater(m.state)
	if err != nil || !ok {
		t.Fatalf("no high-water mark: %v %v", ok, err)
	}
	if now := m.w.TrueTime(); mark.After(now) || now.Sub(mark) > 10*time.Minute+time.Second {
		t.Errorf("high-water mark %v, true time %v: it must have passed, recently", mark, now)
	}
}

// Without a drift file, slewd adopts the kernel's frequency (another
// daemon's, or its own from before) and leaves it there when it stops
// without having learnt a better one.
func TestKeepsTheKernelFrequencyWithoutADriftFile(t *testing.T) {
	m := newMachine(t, simclock.KernelConfig{}, 1, true, discipline.Config{}, func(fc *fakeClient, env *discipline.Env) {
		fc.silent = true
		// Left by another daemon before slewd starts.
		clock.NewDriver(env.Clock).SetFrequency(20)
	})
	drv := clock.NewDriver(m.w)
	m.w.At(10*time.Second, m.p.Terminate)
	m.w.Run(20 * time.Second)
	if k, err := drv.Read(); err != nil || math.Abs(k.FrequencyPPM-20) > 0.001 {
		t.Errorf("kernel frequency %v ppm (%v) after a start and stop without estimates, want the 20 ppm it had", k.FrequencyPPM, err)
	}
	if done, err := m.p.Exited(); !done || err != nil {
		t.Errorf("SIGTERM: exited %v, %v; want a clean exit", done, err)
	}
	if s := m.d.Snapshot(); !s.Started || !s.Stopped || s.Estimate != nil {
		t.Errorf("snapshot %+v: want started, stopped, no estimate", s)
	}
}

// The snapshot and the status file say the same, and what the clock does:
// a 2 s correction under way at 10 s, done and synchronized by 5 min; the
// poll limit follows the servo's wander; the sources are reported.
func TestSnapshotAndStatusFile(t *testing.T) {
	m := newMachine(t, simclock.KernelConfig{ClockError: 2 * time.Second,
		Oscillator: simclock.Oscillator{DriftPPM: 5, Wander: 1e-9}}, 1, true, discipline.Config{}, nil)
	m.w.Run(10 * time.Second)
	s := m.d.Snapshot()
	// Ahead by 2 s: the correction is negative (NTP sign), under way.
	if !s.Started || !s.Slewing || s.Synced || s.Remaining > -time.Second || s.Estimate == nil || s.SlewRatePPM != adjtime.KernelMaxRatePPM {
		t.Errorf("at 10 s: %+v; want slewing about -1 s left, not synced", s)
	}
	m.w.Run(2 * time.Hour)
	s = m.d.Snapshot()
	if s.Slewing || !s.Synced || s.Remaining.Abs() > 100*time.Microsecond || s.Sources != 1 || math.Abs(s.FreqPPM+5) > 0.5 {
		t.Errorf("after 2 h: %+v; want synced, nothing left, about -5 ppm of compensation", s)
	}
	if len(s.Reports) != 1 || s.Reports[0].Source != "fake" {
		t.Errorf("source reports %+v", s.Reports)
	}
	st, ok, err := statefile.ReadStatus(m.run)
	if err != nil || !ok {
		t.Fatalf("status file: %v %v", ok, err)
	}
	want := s.Status(st.Time)
	if st != want {
		t.Errorf("status file %+v, snapshot says %+v", st, want)
	}
	if age := m.w.TrueTime().Sub(st.Time); age < 0 || age > 1100*time.Second {
		t.Errorf("status file %v old", age)
	}
	var limited bool
	for _, l := range m.fc.pollLimits {
		limited = limited || l > 0
	}
	if !limited {
		t.Errorf("the client never got a poll limit: %v", m.fc.pollLimits)
	}
}

// An estimate beyond --max-offset is not slewed, and the snapshot says so.
func TestPanicGuardSnapshot(t *testing.T) {
	m := newMachine(t, simclock.KernelConfig{ClockError: 20 * time.Second}, 1, true, discipline.Config{MaxOffset: 10 * time.Second}, nil)
	m.w.Run(5 * time.Minute)
	s := m.d.Snapshot()
	if !s.Panicked || s.Slewing || s.Synced {
		t.Errorf("%+v: want panicked, not slewing", s)
	}
	if e := m.w.ClockError(); e != 20*time.Second {
		t.Errorf("clock error %v: the panic guard let it slew", e)
	}
}

type stepEvent struct{ by time.Duration }

// Events the client does not know go to the handlers, in order, on the
// loop's goroutine; a handler may ask for a measurement now, and its error
// stops the loop after handing the clock back.
func TestHandlers(t *testing.T) {
	var seen []string
	errStop := errors.New("stop")
	m := newMachine(t, simclock.KernelConfig{}, 1, true, discipline.Config{}, func(fc *fakeClient, env *discipline.Env) {
		env.Handlers = []discipline.Handler{
			discipline.HandlerFunc(func(d *discipline.Discipline, ev any) (bool, error) {
				seen = append(seen, "first")
				if _, ok := ev.(stepEvent); !ok {
					return false, nil
				}
				d.Remeasure()
				return true, nil
			}),
			discipline.HandlerFunc(func(d *discipline.Discipline, ev any) (bool, error) {
				seen = append(seen, "second")
				return true, errStop
			}),
		}
	})
	m.w.At(time.Minute, func() { m.p.Post(stepEvent{}) })
	m.w.At(2*time.Minute, func() { m.p.Post("something else") })
	m.w.Run(3 * time.Minute)
	if m.fc.pollNows != 1 {
		t.Errorf("PollNow called %d times, want once", m.fc.pollNows)
	}
	if strings.Join(seen, " ") != "first first second" {
		t.Errorf("handlers saw %v", seen)
	}
	done, err := m.p.Exited()
	if !done || !errors.Is(err, errStop) {
		t.Errorf("exited %v with %v; want the handler's error", done, err)
	}
	if !m.d.Snapshot().Stopped {
		t.Error("not handed back after the handler's error")
	}
}
