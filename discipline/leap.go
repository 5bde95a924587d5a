package discipline

import (
	"fmt"
	"time"

	"slewd/ntpclient"
)

// Leap seconds: slewd never lets the kernel step for one (the Slewer
// never arms STA_INS or STA_DEL, and clears them when another program
// does). A leap the servers announce is slewed instead, as chrony's
// `leapsecmode slew` does: at the leap, by the servo's true time (the
// slewer's target, not REALTIME, which may still be slewing), the servo's
// frame and the slewer's target move with UTC, −1 s for an insertion,
// +1 s for a deletion. REALTIME is then 1 s off its target and the
// slewer slews it at its rate (about 10 s at the kernel's 10.05 %).
// ntpclient moves its sources' filters at the same moment (LeapShift), so
// the estimates after the leap agree with the moved frame. REALTIME
// itself does not jump, so nothing here is a foreign step.

// LeapPlan is a leap second to take.
type LeapPlan struct {
	// At is the true time (UTC as it runs before the leap) at which UTC
	// jumps: the midnight ending the day for an insertion (23:59:60 starts
	// there), 23:59:59 of that day for a deletion.
	At time.Time
	// Shift is UTC's jump there: −1 s for an insertion, +1 s for a deletion.
	Shift time.Duration
}

// Name is the leap in words, for the log.
func (p LeapPlan) Name() string {
	if p.Shift < 0 {
		return p.At.Add(-time.Second).Format("2006-01-02") + " 23:59:60 UTC"
	}
	return p.At.Format("2006-01-02 15:04:05") + " UTC (deleted)"
}

// leapHorizon: a leap is planned only for the midnight within this much
// of now. Servers may announce it all month (ntpd) or on the day
// (chrony); leap seconds come only at the end of a month.
const leapHorizon = 24 * time.Hour

// PlanLeap says which leap second the estimate's leap indicator
// announces at true time now: the one at the end of the month, if that
// is within a day, and not the one already taken (done).
func PlanLeap(leap ntpclient.Leap, now, done time.Time) (LeapPlan, bool) {
	now = now.UTC()
	end := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC)
	var p LeapPlan
	switch leap {
	case ntpclient.LeapInsert:
		p = LeapPlan{At: end, Shift: -time.Second}
	case ntpclient.LeapDelete:
		p = LeapPlan{At: end.Add(-time.Second), Shift: time.Second}
	default:
		return LeapPlan{}, false
	}
	if end.Sub(now) > leapHorizon || p.At.Equal(done) {
		return LeapPlan{}, false
	}
	return p, true
}

// leapDueSlack: a leap this close is taken now rather than waited for.
const leapDueSlack = time.Millisecond

// LeapWait is how much CLOCK_MONOTONIC_RAW is to pass until the leap at
// true time now, with true time running freqPPM fast against RAW; 0: take
// it now.
func LeapWait(p LeapPlan, now time.Time, freqPPM float64) time.Duration {
	left := p.At.Sub(now)
	if left <= leapDueSlack {
		return 0
	}
	return time.Duration(float64(left) / (1 + freqPPM*1e-6))
}

// leapWatch is the discipline's state about leap seconds.
type leapWatch struct {
	plan  LeapPlan
	armed bool
	due   time.Duration // RAW time to look again, when armed
	done  time.Time     // the last leap taken
}

// trueNow is the servo's true time at RAW time raw.
func (d *Discipline) trueNow(raw time.Duration) time.Time {
	return time.Unix(0, int64(raw+d.servo.Phase(raw)))
}

// leapEstimate takes a leap that is due, then plans one the estimate
// announces (before the estimate goes into the servo).
func (d *Discipline) leapEstimate(est ntpclient.Estimate) {
	if !d.servo.Ready() {
		return
	}
	now := d.env.Clock.Raw()
	if d.lw.armed && now >= d.lw.due {
		d.leapDue(now)
	}
	p, ok := PlanLeap(est.Leap, d.trueNow(now), d.lw.done)
	switch {
	case ok && (!d.lw.armed || p != d.lw.plan):
		d.log.Info(fmt.Sprintf("a leap second is announced for %s: slewd will slew it, the kernel will not step", p.Name()),
			"sources", est.Sources)
	case !ok && d.lw.armed:
		d.log.Info(fmt.Sprintf("the leap second for %s is no longer announced: not taking it", d.lw.plan.Name()))
	}
	d.lw.plan, d.lw.armed = p, ok
	if ok {
		d.lw.due = now + LeapWait(p, d.trueNow(now), d.servo.FreqPPM())
	}
}

// leapDue takes the leap if its time has come by the servo's true time,
// else waits again for the rest.
func (d *Discipline) leapDue(now time.Duration) {
	w := LeapWait(d.lw.plan, d.trueNow(now), d.servo.FreqPPM())
	if w > 0 {
		d.lw.due = now + w
		return
	}
	p := d.lw.plan
	d.servo.Shift(p.Shift, 0)
	d.slewer.ShiftTarget(p.Shift)
	d.lw.armed, d.lw.done = false, p.At
	dir := "back"
	if p.Shift > 0 {
		dir = "forward"
	}
	d.log.Info(fmt.Sprintf("leap second %s: slewing the clock %v %s to UTC (the kernel does not step)", p.Name(), p.Shift.Abs(), dir),
		"eta", SlewTime(p.Shift, d.cfg.MaxSlewPPM).Round(time.Second))
	d.ControlNow()
}
