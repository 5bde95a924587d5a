//go:build linux

package clock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// These tests arm and read real timerfds; none of them sets the clock (the
// rig's guest does that: clock/conformance "clock_was_set" scenarios).

func TestSystemBoot(t *testing.T) {
	o := ReadOffsets(System{}, 4)
	if !o.HasBoot {
		t.Fatal("System does not read CLOCK_BOOTTIME")
	}
	// BOOTTIME is MONOTONIC plus time suspended: never behind it.
	if o.BootMinusMono < -o.Width {
		t.Errorf("BOOTTIME − MONOTONIC = %v", o.BootMinusMono)
	}
	if d := time.Duration(time.Now().UnixNano()) - o.Mono - o.RealMinusMono; d < 0 || d > time.Second {
		t.Errorf("REALTIME − MONOTONIC %v is %v off the runtime's clocks", o.RealMinusMono, d)
	}
	// Nothing is stepping this machine's clock in the next millisecond.
	time.Sleep(time.Millisecond)
	if ch := CompareOffsets(o, ReadOffsets(System{}, 4)); !ch.None() || ch.Elapsed < time.Millisecond {
		t.Errorf("two snapshots 1 ms apart: %v (elapsed %v, tol %v)", ch, ch.Elapsed, ch.Tol)
	}
}

func TestTimerfdExpiresAndCloses(t *testing.T) {
	fd, err := System{}.OpenCancelOnSet()
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.Arm(time.Now().Add(10 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	canceled, err := fd.Wait()
	if err != nil || canceled {
		t.Fatalf("Wait = %v, %v; want an expiry", canceled, err)
	}
	if d := time.Since(start); d < 5*time.Millisecond {
		t.Errorf("expired after %v, armed for 10 ms", d)
	}
	// Armed far ahead: Close must wake the blocked Wait.
	if err := fd.Arm(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := fd.Wait(); errc <- err }()
	time.Sleep(5 * time.Millisecond)
	fd.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait after Close = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Wait")
	}
}

type countingClock struct {
	System
	arms *atomic.Int32
}

func (c countingClock) OpenCancelOnSet() (CancelOnSet, error) {
	fd, err := c.System.OpenCancelOnSet()
	return countingTimer{fd, c.arms}, err
}

type countingTimer struct {
	CancelOnSet
	arms *atomic.Int32
}

func (t countingTimer) Arm(at time.Time) error {
	t.arms.Add(1)
	return t.CancelOnSet.Arm(at)
}

// TestWatchChangesRearms: a timer that expires (here after 5 ms instead of
// a year) is re-armed and reports nothing, and stop ends the watcher.
func TestWatchChangesRearms(t *testing.T) {
	var arms atomic.Int32
	l := NewSystemLoop(8)
	stop, err := watchChanges(countingClock{arms: &arms}, l, 5*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for arms.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	stop()
	n := arms.Load()
	if n < 4 {
		t.Fatalf("armed %d times in 10 s with a 5 ms horizon", n)
	}
	if ev, _ := l.Wait(context.Background(), 0); ev != nil {
		t.Errorf("a plain expiry posted %#v", ev)
	}
	time.Sleep(20 * time.Millisecond)
	if arms.Load() != n {
		t.Error("the watcher went on after stop")
	}
	stop() // idempotent
}
