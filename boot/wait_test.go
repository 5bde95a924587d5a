package boot

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/discipline/statefile"
)

// kc is a kernel in state with maxerror, a pending singleshot and PLL offset.
func kc(state clock.State, maxErr, singleshot, pll time.Duration) KernelClock {
	return KernelClock{KernelState: clock.KernelState{State: state, MaxError: maxErr, PLLOffset: pll}, Singleshot: singleshot}
}

func TestCheck(t *testing.T) {
	const ms = time.Millisecond
	synced := kc(clock.TimeOK, 2*ms, 0, 0)
	unsynced := kc(clock.TimeError, 16*time.Second, 0, 0)
	strict := WaitLimits{RequireKernelSync: true, MaxError: time.Second, MaxBehind: 100 * ms, MaxAhead: 100 * ms}
	// Start dovecot while the clock is behind, never while it is ahead.
	dovecot := WaitLimits{RequireKernelSync: true, MaxError: time.Second, MaxBehind: time.Hour, MaxAhead: 0}
	daemonOnly := WaitLimits{MaxError: time.Second, MaxBehind: time.Hour, MaxAhead: 0}
	d := func(rem time.Duration) *statefile.Status {
		return &statefile.Status{RemainingS: rem.Seconds(), Sources: 3}
	}
	for _, tc := range []struct {
		name   string
		k      KernelClock
		daemon *statefile.Status
		lim    WaitLimits
		synced bool
		rem    time.Duration
		why    string
	}{
		{"synchronized, nothing pending", synced, nil, strict, true, 0, ""},
		{"kernel unsynchronized", unsynced, nil, strict, false, 0, "unsynchronized"},
		{"maxerror too large", kc(clock.TimeOK, 3*time.Second, 0, 0), nil, strict, false, 0, "above --max-error"},
		{"singleshot pending 0.3 s ahead", kc(clock.TimeOK, ms, -300*ms, 0), nil, strict, false, -300 * ms, "ahead"},
		{"singleshot pending 50 ms", kc(clock.TimeOK, ms, 50*ms, 0), nil, strict, true, 50 * ms, ""},
		{"PLL pending counts without the daemon", kc(clock.TimeOK, ms, 0, 200*ms), nil, strict, false, 200 * ms, "behind"},
		{"the daemon's remaining replaces its PLL", kc(clock.TimeOK, ms, 0, 200*ms), d(30 * ms), strict, true, 30 * ms, ""},
		{"daemon and singleshot add", kc(clock.TimeOK, ms, 80*ms, 0), d(30 * ms), strict, false, 110 * ms, "behind"},
		{"behind is fine for dovecot", kc(clock.TimeOK, ms, 20*time.Second, 0), nil, dovecot, true, 20 * time.Second, ""},
		{"ahead is not", kc(clock.TimeOK, ms, -time.Microsecond, 0), nil, dovecot, false, -time.Microsecond, "ahead"},
		{"daemon only: behind while the kernel is unsynchronized", unsynced, d(54 * time.Second), daemonOnly, true, 54 * time.Second, ""},
		{"daemon only: ahead", unsynced, d(-54 * time.Second), daemonOnly, false, -54 * time.Second, "ahead"},
		{"daemon only: no status", synced, nil, daemonOnly, false, 0, "no fresh estimate"},
		{"daemon only: status without sources", synced, &statefile.Status{}, daemonOnly, false, 0, "no fresh estimate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := Check(tc.k, tc.daemon, tc.lim)
			if v.Synced != tc.synced || v.Remaining != tc.rem || !strings.Contains(v.Why, tc.why) {
				t.Errorf("Check = %+v; want synced %v remaining %v why ~%q", v, tc.synced, tc.rem, tc.why)
			}
			if v.Synced != (v.Why == "") {
				t.Errorf("synced %v but why %q", v.Synced, v.Why)
			}
		})
	}
}

// Wait in virtual time: the kernel becomes synchronized at 42 s (another
// process clears STA_UNSYNC); a waiter with a 60 s timeout returns then,
// one with a 30 s timeout gives up at 30 s.
func TestWaitOnSimulatedKernel(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		err     error
		at      time.Duration
	}{{60 * time.Second, nil, 42 * time.Second}, {30 * time.Second, ErrTimeout, 30 * time.Second}, {0, nil, 42 * time.Second}} {
		w := simclock.New(simclock.Config{})
		w.Spawn("ntpd", true, func(ctx context.Context, p *simclock.Process) error {
			if err := clock.Sleep(ctx, p, 42*time.Second); err != nil {
				return err
			}
			_, err := clock.NewDriver(p).Apply(clock.Change{Status: &clock.NTPStatus{}, SetErrors: true, MaxError: 5 * time.Millisecond})
			return err
		})
		var got error
		var at time.Duration
		var changes int
		p := w.Spawn("slewd-wait", false, func(ctx context.Context, p *simclock.Process) error {
			lim := WaitLimits{RequireKernelSync: true, MaxError: time.Second, MaxBehind: 100 * time.Millisecond, MaxAhead: 100 * time.Millisecond}
			probe := func() (Verdict, error) {
				k, err := ReadKernel(p)
				return Check(k, nil, lim), err
			}
			_, got = Wait(ctx, p, p, probe, tc.timeout, time.Second, func(Verdict) { changes++ })
			at = w.Now()
			return nil
		})
		w.Run(2 * time.Minute)
		if ok, _ := p.Exited(); !ok {
			t.Fatalf("timeout %v: still waiting", tc.timeout)
		}
		if !errors.Is(got, tc.err) || at < tc.at || at > tc.at+1100*time.Millisecond {
			t.Errorf("timeout %v: returned %v at %v, want %v at %v", tc.timeout, got, at, tc.err, tc.at)
		}
		if want := map[bool]int{true: 2, false: 1}[tc.err == nil]; changes != want {
			t.Errorf("timeout %v: %d progress reports, want %d", tc.timeout, changes, want)
		}
	}
}
