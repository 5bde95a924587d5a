package simclock

import (
	"math"
	"syscall"
	"time"

	"slewd/clock"
)

// Setting the clock, suspend, and the cancel-on-set notification: what
// other programs and the machine itself do to the clock, and how a process
// hears of it (a CLOCK_REALTIME timerfd with TFD_TIMER_CANCEL_ON_SET).
//
// The kernel notifies (clock_was_set) when it sets REALTIME: settimeofday,
// clock_settime, ADJ_SETOFFSET, a leap second and resume from suspend
// (timekeeping.c, fs/timerfd.c); never for slewing, ADJ_TICK,
// ADJ_FREQUENCY, the singleshot or ADJ_TAI. It wakes each timer whose
// REALTIME−MONOTONIC at arming differs from the current one, so a set
// that changes nothing (ADJ_SETOFFSET of 0) wakes nobody.

var (
	_ clock.BootClock         = (*Process)(nil)
	_ clock.CancelOnSetOpener = (*Process)(nil)
	_ clock.RealtimeSetter    = (*Process)(nil)
)

// settime is do_settimeofday64: REALTIME becomes sec+nsec (nsec in
// [0, 1e9)), the NTP state is cleared, and the clock was set.
func (k *Kernel) settime(sec, nsec int64, why string) error {
	if sec < 0 || nsec < 0 || nsec >= 1e9 {
		return syscall.EINVAL
	}
	// Computed in parts: both are about 1.8e9 s, beyond float64's ns.
	delta := float64(sec-k.wallSec) + (float64(nsec)/1e9 - k.realFrac())
	if k.realSeconds()+delta < k.mono { // REALTIME may not go below MONOTONIC
		return syscall.EINVAL
	}
	k.runPending()
	k.step(delta, why)
	k.ntpClear()
	k.nextOverflow = k.wallSec + int64(math.Floor(k.realFrac())) + 1
	k.clockWasSet()
	return nil
}

// suspend sleeps the machine for asleep of true time: RAW and MONOTONIC
// stop, and on resume the kernel adds injected (its measure of the sleep,
// from a nonstop clocksource or the RTC) to REALTIME and BOOTTIME
// (__timekeeping_inject_sleeptime). No second_overflow runs for the slept
// seconds, NTP state is kept (the nonstop path), and the clock was set.
func (k *Kernel) suspend(asleep, injected float64) {
	k.runPending()
	err0 := k.errorNow()
	k.t += asleep
	if k.nextWander < k.t {
		k.nextWander += math.Ceil(k.t - k.nextWander)
	}
	if k.rtcDue >= 0 {
		k.rtcDue += asleep // a timer: it did not run while asleep
	}
	whole := math.Floor(injected)
	k.wallSec += int64(whole)
	k.wallFrac += injected - whole
	if k.wallFrac >= 1 {
		k.wallFrac--
		k.wallSec++
	}
	k.sleep += injected
	k.nextOverflow = k.wallSec + int64(math.Floor(k.realFrac())) + 1
	// Observers see REALTIME's error: unchanged if the sleep was measured
	// right, else off by what it got wrong.
	if d := k.errorNow() - err0; d != 0 && k.observer != nil {
		k.observer.Jump(k.t, d, "resume")
	}
	k.clockWasSet()
}

func (k *Kernel) clockWasSet() {
	if k.onSet != nil {
		k.onSet()
	}
	k.interrupt = true
}

// offsReal is REALTIME − MONOTONIC as the kernel keeps it (offs_real).
func (k *Kernel) offsReal() (int64, float64) { return k.wallSec, k.wallFrac }

// clockWasSetLocked is timerfd_clock_was_set: every cancel-on-set timer
// whose REALTIME−MONOTONIC at arming differs is cancelled and woken. The
// wakes run as events at this instant, one each, so that runs stay
// deterministic.
func (w *World) clockWasSetLocked() {
	sec, frac := w.k.offsReal()
	for _, fd := range w.setFDs {
		if fd.canceled || (fd.offSec == sec && fd.offFrac == frac) {
			continue
		}
		fd.canceled = true
		w.atLocked(w.k.t, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			if !fd.closed {
				w.wakeLocked(fd.b, false)
			}
		})
	}
}

// ClockSettime sets REALTIME to t as root from outside any process, as
// date -s or a hypervisor agent would (clock_settime(CLOCK_REALTIME)).
func (w *World) ClockSettime(t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.k.settime(t.Unix(), int64(t.Nanosecond()), "clock_settime")
}

// Settimeofday is settimeofday(2) as root from outside any process.
func (w *World) Settimeofday(t time.Time) error {
	t = t.Truncate(time.Microsecond)
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.k.settime(t.Unix(), int64(t.Nanosecond()), "settimeofday")
}

// StepRealtime steps REALTIME by d with ADJ_SETOFFSET, as chronyd's
// makestep or timesyncd would.
func (w *World) StepRealtime(d time.Duration) error {
	sec, ns := int64(d/time.Second), int64(d%time.Second)
	if ns < 0 {
		sec, ns = sec-1, ns+1e9
	}
	_, err := w.Adjtimex(&clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: sec, Usec: ns}})
	return err
}

// SetLeap announces a leap second at the next midnight UTC, as an NTP
// daemon does from the leap indicator: +1 inserts one (STA_INS), -1
// deletes one (STA_DEL), 0 withdraws the announcement. Other status bits
// are kept.
func (w *World) SetLeap(leap int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	status := w.k.ntp.timeStatus &^ (clock.StaIns | clock.StaDel)
	switch {
	case leap > 0:
		status |= clock.StaIns
	case leap < 0:
		status |= clock.StaDel
	}
	_, err := w.k.adjtimex(&clock.Timex{Modes: clock.AdjStatus, Status: status}, true)
	return err
}

// Suspend sleeps the machine for d of true time and resumes it, with the
// sleep measured exactly: no process runs and no MONOTONIC timer fires
// meanwhile; BOOTTIME and REALTIME then jump by d.
func (w *World) Suspend(d time.Duration) { w.SuspendMismeasured(d, d) }

// SuspendMismeasured is Suspend where the kernel measures the sleep as
// injected (a persistent clock "can add ~1 second drift error" per suspend).
func (w *World) SuspendMismeasured(asleep, injected time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.k.suspend(asleep.Seconds(), injected.Seconds())
}

// Boot reads the simulated CLOCK_BOOTTIME.
func (p *Process) Boot() time.Duration {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	return seconds(p.w.k.mono + p.w.k.sleep)
}

// ClockSettime is the simulated clock_settime(CLOCK_REALTIME, t).
func (p *Process) ClockSettime(t time.Time) error {
	return p.settime(t, "clock_settime")
}

// Settimeofday is the simulated settimeofday(2).
func (p *Process) Settimeofday(t time.Time) error {
	return p.settime(t.Truncate(time.Microsecond), "settimeofday")
}

func (p *Process) settime(t time.Time, why string) error {
	p.w.mu.Lock()
	defer p.w.mu.Unlock()
	if p.dead {
		p.parkLocked()
	}
	p.syscalls++
	if !p.capSysTime {
		return syscall.EPERM
	}
	return p.w.k.settime(t.Unix(), int64(t.Nanosecond()), why)
}

// OpenCancelOnSet opens a simulated cancel-on-set timerfd for p.
func (p *Process) OpenCancelOnSet() (clock.CancelOnSet, error) {
	fd := &timerFD{p: p, b: p.NewBlocker()}
	return fd, nil
}

// timerFD is a CLOCK_REALTIME timerfd with TFD_TIMER_ABSTIME|TFD_TIMER_CANCEL_ON_SET.
type timerFD struct {
	p        *Process
	b        *Blocker
	armed    bool    // the timer is running
	listed   bool    // on the world's cancel list (armed once with CANCEL_ON_SET)
	deadline float64 // expiry on MONOTONIC
	offSec   int64   // REALTIME − MONOTONIC at arming or the last read
	offFrac  float64
	canceled bool // the clock was set: the next read says ECANCELED
	closed   bool
}

func (fd *timerFD) Arm(at time.Time) error {
	w := fd.p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if fd.closed {
		return clock.ErrClosed
	}
	// REALTIME and MONOTONIC run together until the next set, which
	// cancels the timer anyway: the expiry is fixed on MONOTONIC.
	until := float64(at.Unix()-w.k.wallSec) + (float64(at.Nanosecond())/1e9 - w.k.realFrac())
	fd.deadline = w.k.mono + until
	fd.armed = true
	fd.canceled = false
	fd.offSec, fd.offFrac = w.k.offsReal()
	if !fd.listed {
		fd.listed = true
		w.setFDs = append(w.setFDs, fd)
	}
	return nil
}

func (fd *timerFD) Wait() (bool, error) {
	w := fd.p.w
	for {
		w.mu.Lock()
		if fd.p.dead {
			fd.p.parkLocked()
		}
		switch {
		case fd.closed:
			w.mu.Unlock()
			return false, clock.ErrClosed
		case fd.canceled:
			// timerfd_canceled: the read consumes it and takes the new offset.
			fd.canceled = false
			fd.offSec, fd.offFrac = w.k.offsReal()
			w.mu.Unlock()
			return true, nil
		case fd.armed && w.k.mono >= fd.deadline:
			fd.armed = false
			w.mu.Unlock()
			return false, nil
		}
		dl := math.Inf(1)
		if fd.armed {
			dl = fd.deadline
		}
		fd.b.blockLocked(dl)
	}
}

func (fd *timerFD) Close() error {
	w := fd.p.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if fd.closed {
		return nil
	}
	fd.closed = true
	for i, f := range w.setFDs {
		if f == fd {
			w.setFDs = append(w.setFDs[:i], w.setFDs[i+1:]...)
			break
		}
	}
	w.wakeLocked(fd.b, false)
	return nil
}
