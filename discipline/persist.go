package discipline

import (
	"time"

	"slewd/adjtime"
	"slewd/discipline/statefile"
	"slewd/foreign"
	"slewd/ntpclient"
)

// Snapshot is the discipline's state after its last step: what the status
// file holds and more, for a control socket, metrics, or a test.
type Snapshot struct {
	Started  bool // the clock is taken
	Stopped  bool // and handed back
	Estimate *ntpclient.Estimate
	// Remaining is the correction still to slew, NTP sign: positive, the
	// clock is behind.
	Remaining    time.Duration
	Slewing      bool
	SlewRatePPM  float64 // the rate a slew runs at, 0 when not slewing
	Synced       bool    // the slewer says synchronized (kernel and systemd told)
	Panicked     bool    // the last estimate was beyond --max-offset: not slewing it
	FreqPPM      float64 // the servo's frequency
	FreqSigmaPPM float64
	Sources      int                      // behind the last estimate
	Reports      []ntpclient.SourceReport // every source's state after the last reply
	// Foreign counts other programs' clock changes and what slewd did.
	Foreign foreign.Tally

	// What the kernel and systemd were told, for `slewd tracking`.
	DryRun bool // nothing is told to the kernel
	// KernelMaxError and KernelEstError are the maxerror and esterror set
	// with the status at the last control step (STA_UNSYNC is clear
	// while Synced); the kernel grows maxerror by 500 µs/s after.
	KernelMaxError, KernelEstError time.Duration
	// MarkedSynced is when /run/systemd/timesync/synchronized was last
	// touched (REALTIME; zero: never, or it failed).
	MarkedSynced time.Time
}

// Status is the snapshot as the status file has it, stamped with now.
func (s Snapshot) Status(now time.Time) statefile.Status {
	st := statefile.Status{Time: now, Synchronized: s.Synced, RemainingS: s.Remaining.Seconds(),
		FrequencyPPM: s.FreqPPM, Sources: s.Sources, Slewing: s.Slewing}
	if s.Estimate != nil {
		st.OffsetS, st.ErrorS = s.Estimate.Offset.Seconds(), s.Estimate.Error.Seconds()
	}
	if s.Foreign.Last != nil {
		f := s.Foreign
		st.Foreign = &f
	}
	return st
}

// Snapshot returns the state after the last step. Any goroutine may call it.
func (d *Discipline) Snapshot() Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap
}

// publish takes a new snapshot (mod, if set, adjusts it) and returns it.
func (d *Discipline) publish(mod func(*Snapshot)) Snapshot {
	s := Snapshot{Started: d.slewer != nil, Estimate: d.lastEst, Slewing: d.slewing, Synced: d.markedSync, Panicked: d.panicked}
	if d.slewer != nil {
		s.Remaining = d.slewer.Remaining()
	}
	if d.slewing {
		s.SlewRatePPM = d.cfg.MaxSlewPPM
	}
	if d.servo != nil {
		s.FreqPPM, s.FreqSigmaPPM = d.servo.FreqPPM(), d.servo.FreqSigmaPPM()
	}
	if d.lastEst != nil {
		s.Sources = d.lastEst.Sources
	}
	s.Reports, s.DryRun, s.MarkedSynced = d.reports, d.cfg.DryRun, d.markedAt
	if d.hasTarget {
		rem := s.Remaining.Abs()
		s.KernelMaxError, s.KernelEstError = rem+d.targetDist, rem+d.targetSigma
	}
	s.Foreign = d.fw.tally.Clone()
	if mod != nil {
		mod(&s)
	}
	d.mu.Lock()
	d.snap = s
	d.mu.Unlock()
	return s
}

// writeStatus publishes the snapshot in the run directory for `slewd
// wait`, `slewd sync` and people.
// A dry run writes none: `slewd wait` and `slewd sync` would take its
// word for a clock nobody corrects. A failure is said once, at WARN, and
// its end too.
func (d *Discipline) writeStatus(s Snapshot) {
	if d.env.Run == nil || d.cfg.DryRun {
		return
	}
	err := statefile.WriteStatus(d.env.Run, s.Status(d.env.Clock.Now()))
	switch {
	case err != nil && !d.statusFailing:
		d.log.Warn("could not write the status file: slewd wait and slewd sync do not see this daemon", "err", err,
			"fix", "make --run-dir writable by slewd (systemd: RuntimeDirectory=slewd)")
	case err == nil && d.statusFailing:
		d.log.Warn("the status file is written again")
	}
	d.statusFailing = err != nil
}

// saveHighWater records a time known to have passed, for `slewd boot
// --restore-from-high-water` on a machine that comes up with no server.
// Only while synchronized, and never in a dry run.
func (d *Discipline) saveHighWater() {
	if d.cfg.DryRun || d.slewer == nil || !d.slewer.Synced() || d.lastEst == nil {
		return
	}
	mark := HighWaterMark(d.env.Clock.Now(), d.slewer.Remaining(), d.lastEst.Error)
	if err := statefile.SaveHighWater(d.env.State, mark); err != nil {
		d.log.Warn("could not save the high-water mark", "err", err)
	}
}

// saveDrift keeps the servo's frequency across a restart, once it is
// trusted.
func (d *Discipline) saveDrift() {
	if d.servo == nil || !d.servo.Ready() || d.cfg.DryRun || !FrequencyTrusted(d.servo.FreqSigmaPPM()) {
		return
	}
	dr := adjtime.Drift{FreqPPM: d.servo.FreqPPM(), SigmaPPM: d.servo.FreqSigmaPPM()}
	if err := adjtime.WriteDrift(d.env.State, dr); err != nil {
		d.log.Warn("could not save the drift file", "err", err)
	}
}
