//go:build linux

package clock

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

var (
	_ BootClock         = System{}
	_ CancelOnSetOpener = System{}
	_ RealtimeSetter    = System{}
)

// Boot reads CLOCK_BOOTTIME.
func (System) Boot() time.Duration { return gettime(unix.CLOCK_BOOTTIME) }

// ClockSettime is clock_settime(CLOCK_REALTIME, t). Only the rig's guest
// calls it.
func (System) ClockSettime(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("clock_settime(CLOCK_REALTIME): %w", err)
	}
	return nil
}

// Settimeofday is settimeofday(2) with t truncated to the microsecond.
// Only the rig's guest calls it.
func (System) Settimeofday(t time.Time) error {
	tv := unix.NsecToTimeval(t.Truncate(time.Microsecond).UnixNano())
	if err := unix.Settimeofday(&tv); err != nil {
		return fmt.Errorf("settimeofday: %w", err)
	}
	return nil
}

// OpenCancelOnSet creates a non-blocking CLOCK_REALTIME timerfd; Go's
// poller waits on it, so Close wakes a blocked Wait.
func (System) OpenCancelOnSet() (CancelOnSet, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_REALTIME, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("timerfd_create(CLOCK_REALTIME): %w", err)
	}
	return &timerfd{f: os.NewFile(uintptr(fd), "timerfd")}, nil
}

type timerfd struct{ f *os.File }

// Arm is timerfd_settime(TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET).
// ECANCELED means the clock was set since the last read; the kernel has
// armed the timer all the same (timerfd_create(2), NOTES).
func (t *timerfd) Arm(at time.Time) error {
	ns := at.UnixNano()
	if math.MaxInt == math.MaxInt32 && at.Unix() >= math.MaxInt32 {
		ns = math.MaxInt32 * 1e9 // 32-bit time_t: as far as it goes
	}
	its := unix.ItimerSpec{Value: unix.NsecToTimespec(ns)}
	rc, err := t.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.TimerfdSettime(int(fd), unix.TFD_TIMER_ABSTIME|unix.TFD_TIMER_CANCEL_ON_SET, &its, nil)
	}); err != nil {
		return err
	}
	if serr != nil && !errors.Is(serr, syscall.ECANCELED) {
		return fmt.Errorf("timerfd_settime: %w", serr)
	}
	return nil
}

// Wait reads the timerfd: ECANCELED when the clock was set, an expiry
// count when the timer expired.
func (t *timerfd) Wait() (bool, error) {
	var buf [8]byte
	n, err := t.f.Read(buf[:])
	switch {
	case errors.Is(err, syscall.ECANCELED):
		return true, nil
	case errors.Is(err, os.ErrClosed):
		return false, ErrClosed
	case err != nil:
		return false, fmt.Errorf("reading the timerfd: %w", err)
	case n != 8 || binary.NativeEndian.Uint64(buf[:]) == 0:
		return false, fmt.Errorf("reading the timerfd: %d bytes %x", n, buf[:n])
	}
	return false, nil
}

func (t *timerfd) Close() error { return t.f.Close() }
