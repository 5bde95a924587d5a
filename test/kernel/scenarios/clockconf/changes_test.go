package clockconf

import (
	"context"
	"slices"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/conformance"
	"slewd/test/kernel/guest"
)

// Latency is how long the kernel took to wake a cancel-on-set timerfd
// after an operation set the clock, and how long the call itself took, µs.
type Latency struct {
	Op        string    `json:"op"`
	WakeUs    []float64 `json:"wake_us"`    // RAW from just before the call to the read returning
	SyscallUs []float64 `json:"syscall_us"` // RAW from just before the call to its return
	Missed    int       `json:"missed"`     // operations that never woke the watcher within 1 s
}

// TestClockSetLatency steps the clock many times by ±1 ms and measures
// the notification latency distribution on the real kernel; the host
// prints it under the conformance table. The wall clock ends where it was.
func TestClockSetLatency(t *testing.T) {
	c := guest.Clock(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := clock.NewSystemLoop(16)
	t.Cleanup(func() {
		if err := conformance.Restore(context.Background(), c, clock.NewSystemLoop(1)); err != nil {
			t.Error(err)
		}
	})
	orig := clock.ReadOffsets(c, 8)
	stop, err := clock.WatchChanges(c, l)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ops := []struct {
		name string
		do   func(i int) error
	}{
		{"ADJ_SETOFFSET ±1 ms", func(i int) error {
			tx := clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: 0, Usec: 1e6}}
			if i%2 == 1 {
				tx.Time = clock.Timeval{Sec: -1, Usec: 999e6}
			}
			_, err := c.Adjtimex(&tx)
			return err
		}},
		{"clock_settime +1 ms", func(int) error { return c.ClockSettime(c.Now().Add(time.Millisecond)) }},
		{"settimeofday +1 ms", func(int) error { return c.Settimeofday(c.Now().Add(time.Millisecond)) }},
	}
	for _, op := range ops {
		lat := Latency{Op: op.name}
		for i := range 40 {
			raw0 := c.Raw()
			if err := op.do(i); err != nil {
				t.Fatal(err)
			}
			raw1 := c.Raw()
			ev, err := l.Wait(ctx, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			ch, ok := ev.(clock.ClockChanged)
			if !ok {
				if ev != nil {
					t.Fatalf("%s: %#v", op.name, ev)
				}
				lat.Missed++
				continue
			}
			lat.WakeUs = append(lat.WakeUs, float64(ch.Woke-raw0)/1e3)
			lat.SyscallUs = append(lat.SyscallUs, float64(raw1-raw0)/1e3)
			time.Sleep(20 * time.Millisecond)
		}
		guest.Emit(t, "clockset-latency", lat)
		if lat.Missed > 0 {
			t.Errorf("%s: %d of 40 missed", op.name, lat.Missed)
		}
		w := slices.Clone(lat.WakeUs)
		slices.Sort(w)
		if len(w) > 0 {
			t.Logf("%s: wake latency median %.0f µs, max %.0f µs", op.name, w[len(w)/2], w[len(w)-1])
		}
	}
	stop()
	d := orig.RealMinusMono - clock.ReadOffsets(c, 8).RealMinusMono
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	if _, err := c.Adjtimex(&clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: sec, Usec: ns}}); err != nil {
		t.Error(err)
	}
}
