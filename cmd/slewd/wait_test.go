package main

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"slewd/adjtime"
	"slewd/boot"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// startDaemon runs the real `slewd run` loop on the simulated machine,
// writing its status file into m.run.
func (m *simMachine) startDaemon(t *testing.T) *simclock.Process {
	t.Helper()
	return m.w.Spawn("slewd run", true, func(ctx context.Context, p *simclock.Process) error {
		log := slog.New(slog.DiscardHandler)
		client, err := ntpclient.NewClient(ntpclient.Config{Servers: m.servers}, ntpclient.Env{
			Clock: p, Loop: p, Dialer: m.net.Dialer(p), Resolver: m.net.Resolver(), Logger: log,
			Rand: rand.New(rand.NewPCG(8, 9)), SimulatedTime: true,
		})
		if err != nil {
			return err
		}
		d := discipline.New(discipline.Config{}, discipline.Env{Clock: p, Loop: p, Client: client, State: &adjtime.MemStore{}, Run: m.run,
			BootID: func() string { return "1" }, Log: log})
		return d.Run(ctx)
	})
}

// `slewd wait` returns once a running `slewd run` has brought the clock
// within --max-correction, and times out otherwise.
func TestWaitForTheDaemon(t *testing.T) {
	three := []ntptest.ServerConfig{{}, {}, {}}
	m := newSimMachine(t, -2*time.Second, three...)
	m.startDaemon(t)
	p, res := m.start(t, false, "wait", "--timeout", "30m", "--max-correction", "5ms", "--verbose")
	var errAt time.Duration
	done := false
	for step := time.Second; step <= 10*time.Minute && !done; step += time.Second {
		m.w.Run(step)
		if e := m.w.ClockError(); e.Abs() > 5*time.Millisecond {
			errAt = step // last time the clock was still off
		}
		done, _ = p.Exited()
	}
	if !done || res.code != 0 {
		t.Fatalf("slewd wait: exited %v, code %d: %s", done, res.code, res.stderr)
	}
	if res.at < errAt {
		t.Errorf("wait returned at %v, but the clock was more than 5 ms off until %v", res.at, errAt)
	}
	if res.at > errAt+2*time.Minute {
		t.Errorf("wait returned at %v, long after the clock was right (%v)", res.at, errAt)
	}
	if !strings.HasPrefix(res.stdout, "synchronized: maxerror") || !strings.Contains(res.stdout, "(slewd run)") {
		t.Errorf("stdout %q", res.stdout)
	}
	if !strings.Contains(res.stderr, "slewd wait: waiting: the kernel says unsynchronized") {
		t.Errorf("no progress report on stderr: %q", res.stderr)
	}
	t.Logf("clock within 5 ms at %v, wait returned at %v", errAt, res.at)

	// Without a daemon the kernel stays unsynchronized: status 3 at the timeout.
	m2 := newSimMachine(t, -2*time.Second, three...)
	res2 := m2.runCmd(t, time.Minute, false, "wait", "--timeout", "5s")
	if res2.code != boot.ExitNoSync || res2.at < 5*time.Second || res2.at > 6*time.Second ||
		!strings.Contains(res2.stderr, "wait: not synchronized after 5s: the kernel says unsynchronized") {
		t.Errorf("no daemon: exit %d at %v: %s", res2.code, res2.at, res2.stderr)
	}
}

// Direction: with --daemon-only --max-ahead 0 a service may start while
// the clock is behind, as soon as the daemon has an estimate; while it is
// ahead it waits until the slew has brought it back.
func TestWaitDirection(t *testing.T) {
	for _, tc := range []struct {
		clockErr time.Duration
		early    bool
	}{{-30 * time.Second, true}, {30 * time.Second, false}} {
		m := newSimMachine(t, tc.clockErr, ntptest.ServerConfig{}, ntptest.ServerConfig{}, ntptest.ServerConfig{})
		m.startDaemon(t)
		p, res := m.start(t, false, "wait", "--daemon-only", "--max-ahead", "1ms", "--max-behind", "1h", "--timeout", "30m")
		for step := time.Second; step <= 30*time.Minute; step += time.Second {
			m.w.Run(step)
			if done, _ := p.Exited(); done {
				break
			}
		}
		if res.code != 0 {
			t.Fatalf("clock error %v: exit %d: %s", tc.clockErr, res.code, res.stderr)
		}
		e := m.w.ClockError()
		if tc.early && (res.at > 20*time.Second || e > -20*time.Second) {
			t.Errorf("clock behind: wait returned at %v with the clock %v off; want at the first estimate, still far behind", res.at, e)
		}
		if !tc.early && e > time.Millisecond+500*time.Microsecond {
			t.Errorf("clock ahead: wait returned at %v with the clock %v ahead", res.at, e)
		}
		t.Logf("clock error %v at start: wait returned at %v, clock %v off", tc.clockErr, res.at, e)
	}
}

func TestWaitUsage(t *testing.T) {
	m := newSimMachine(t, 0)
	for _, args := range [][]string{{"wait", "--interval", "1ms"}, {"wait", "--max-ahead", "-1s"}} {
		if res := m.runCmd(t, time.Minute, false, args...); res.code != boot.ExitUsage {
			t.Errorf("%v: exit %d: %s", args, res.code, res.stderr)
		}
	}
}

// The real binary, unprivileged, reading the host's clock: it is
// unsynchronized here (no time daemon), so wait times out with status 3.
func TestWaitBinaryUnprivileged(t *testing.T) {
	_, errOut, code, took := unprivileged(t, "", "wait", "--timeout", "1s", "--interval", "200ms", "--run-dir", t.TempDir())
	k, err := boot.ReadKernel(readOnlyClock{t: t})
	if err != nil {
		t.Fatal(err)
	}
	if k.State != 5 { // TIME_ERROR
		t.Skipf("the host clock is synchronized (state %v): nothing to time out on", k.State)
	}
	if code != boot.ExitNoSync || took < time.Second || took > 5*time.Second || !strings.Contains(errOut, "not synchronized after 1s") {
		t.Errorf("exit %d after %v: %s", code, took, errOut)
	}
}
