package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/boot"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
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

func (f *fakeClient) Reports() []ntpclient.SourceReport { return nil }

func (f *fakeClient) SetPollLimit(time.Duration) {}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestDaemonSteadyStateWithIdealSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates days")
	}
	for seed := uint64(1); seed <= 10; seed++ {
		w := simclock.New(simclock.Config{Seed: seed, Kernel: simclock.KernelConfig{
			ClockError: 3 * time.Millisecond, Oscillator: simclock.Oscillator{DriftPPM: 20, Wander: 1e-9}}})
		m := newSimMetrics(1e-3)
		w.Observe(m)
		w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
			fc := &fakeClient{w: w, p: p, poll: 64 * time.Second, delay: 200 * time.Microsecond,
				jitter: 20 * time.Microsecond, rng: w.Rand("fake")}
			d := newDaemon(daemonConfig{}, daemonEnv{Clock: p, Loop: p, Client: fc,
				State: &adjtime.MemStore{}, Run: &adjtime.MemStore{}, BootID: func() string { return "1" }, Log: discard()})
			return d.run(ctx)
		})
		w.Run(24 * time.Hour)
		rms, mx, _ := m.since(3600)
		t.Logf("seed %d: RMS %.2f µs, max %.2f µs after 1 h", seed, rms*1e6, mx*1e6)
	}
}

func TestRunRefusesWithoutCapSysTime(t *testing.T) {
	w := simclock.New(simclock.Config{})
	p := w.Spawn("slewd", false, func(ctx context.Context, p *simclock.Process) error {
		fc := &fakeClient{w: w, p: p, poll: 64 * time.Second, rng: w.Rand("f")}
		d := newDaemon(daemonConfig{}, daemonEnv{Clock: p, Loop: p, Client: fc, State: &adjtime.MemStore{}, Log: discard()})
		return d.run(ctx)
	})
	w.Run(time.Minute)
	done, err := p.Exited()
	if !done || err == nil || !strings.Contains(err.Error(), "CAP_SYS_TIME") {
		t.Errorf("exited %v with %v; want a refusal naming CAP_SYS_TIME", done, err)
	}
}

func TestNotifySystemd(t *testing.T) {
	dir := t.TempDir()
	sock := dir + "/notify"
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 20 * time.Millisecond}})
	w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		fc := &fakeClient{w: w, p: p, poll: 64 * time.Second, delay: 100 * time.Microsecond, rng: w.Rand("f")}
		d := newDaemon(daemonConfig{}, daemonEnv{Clock: p, Loop: p, Client: fc, State: &adjtime.MemStore{},
			Notify: func(s string) { sdNotify(s) }, Watchdog: 10 * time.Second, Log: discard()})
		return d.run(ctx)
	})
	// Read as systemd does, while the daemon runs.
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	w.Run(time.Minute)
	conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	got := map[string]bool{}
	for msg := range msgs {
		k, _, _ := strings.Cut(msg, "=")
		got[k] = true
		if k == "STATUS" && !strings.Contains(msg, "left to slew") {
			t.Errorf("status %q", msg)
		}
	}
	for _, k := range []string{"READY", "STATUS", "WATCHDOG"} {
		if !got[k] {
			t.Errorf("no %s= notification; got %v", k, got)
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "30000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := watchdogInterval(); d != 15*time.Second {
		t.Errorf("WatchdogSec=30 gives %v, want 15s", d)
	}
	t.Setenv("WATCHDOG_PID", "1")
	if d := watchdogInterval(); d != 0 {
		t.Errorf("watchdog meant for another pid: %v", d)
	}
}

// Once synchronized, the daemon leaves a high-water mark for `slewd boot
// --restore-from-high-water`: a time that has certainly passed.
func TestDaemonSavesHighWater(t *testing.T) {
	w := simclock.New(simclock.Config{Kernel: simclock.KernelConfig{ClockError: 30 * time.Millisecond}})
	state := &adjtime.MemStore{}
	w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		fc := &fakeClient{w: w, p: p, poll: 64 * time.Second, delay: 100 * time.Microsecond, jitter: 10 * time.Microsecond, rng: w.Rand("f")}
		d := newDaemon(daemonConfig{DriftInterval: 10 * time.Minute}, daemonEnv{Clock: p, Loop: p, Client: fc, State: state, Log: discard()})
		return d.run(ctx)
	})
	w.Run(15 * time.Minute)
	mark, ok, err := boot.ReadHighWater(state)
	if err != nil || !ok {
		t.Fatalf("no high-water mark: %v %v", ok, err)
	}
	if now := w.TrueTime(); mark.After(now) || now.Sub(mark) > 10*time.Minute+time.Second {
		t.Errorf("high-water mark %v, true time %v: it must have passed, recently", mark, now)
	}
}

// The real binary without clock rights (a user namespace, where the kernel
// refuses every clock change): slewd run refuses at start, naming the
// capability, with EX_NOPERM; --dry-run measures and keeps running.
func TestRunBinaryWithoutCapSysTime(t *testing.T) {
	srv := loopbackServers(t, 1, ntptest.ServerConfig{Stratum: 2})
	state := t.TempDir()
	_, stderr, code, _ := unprivileged(t, "", "run", "--state-dir", state, "--run-dir", state, srv[0])
	if code != 77 || !strings.Contains(stderr, "CAP_SYS_TIME") {
		t.Errorf("exit %d, stderr %q: want 77 and a message naming CAP_SYS_TIME", code, stderr)
	}
	// --dry-run: runs (until the test's timeout kills it) and logs its plan.
	unshare, _ := exec.LookPath("unshare")
	bin, err := buildSlewd()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(unshare, "--user", "--map-root-user", bin, "run", "--dry-run", "--state-dir", state, "--run-dir", state, srv[0])
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if !strings.Contains(out.String(), "dry_run=true") || !strings.Contains(out.String(), "slewd stopped") {
		t.Errorf("dry run log:\n%s", out.String())
	}
}

// silentClient never produces an estimate (no server answers).
type silentClient struct{ fakeClient }

func (silentClient) Handle(any) (*ntpclient.Estimate, bool) { return nil, true }

// Without a drift file, slewd adopts the kernel's frequency (another
// daemon's, or its own from before) and leaves it there when it stops
// without having learnt a better one.
func TestKeepsTheKernelFrequencyWithoutADriftFile(t *testing.T) {
	w := simclock.New(simclock.Config{})
	drv := clock.NewDriver(w)
	drv.SetFrequency(20)
	p := w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
		fc := &silentClient{fakeClient{w: w, p: p, poll: 64 * time.Second, rng: w.Rand("f")}}
		d := newDaemon(daemonConfig{}, daemonEnv{Clock: p, Loop: p, Client: fc, State: &adjtime.MemStore{}, Log: discard()})
		return d.run(ctx)
	})
	w.At(10*time.Second, p.Terminate)
	w.Run(20 * time.Second)
	if k, err := drv.Read(); err != nil || math.Abs(k.FrequencyPPM-20) > 0.001 {
		t.Errorf("kernel frequency %v ppm (%v) after a start and stop without estimates, want the 20 ppm it had", k.FrequencyPPM, err)
	}
}
