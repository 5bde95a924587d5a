package discipline

import (
	"time"

	"slewd/ntpclient"
)

// monitorEvery is how often a monitor-only daemon logs what it measures
// (and on a large change): its log is what an admin without a control
// socket reads.
const monitorEvery = 10 * time.Minute

// monitorOnly makes cfg a dry run that needs no clock rights and tells
// nobody the clock is synchronized: `slewd run --monitor-only` in a
// container. The status file is left out: `slewd wait` and `sync` read
// it as the word of a daemon that corrects the clock.
func monitorOnly(cfg Config, env Env) (Config, Env) {
	if !cfg.MonitorOnly {
		return cfg, env
	}
	cfg.DryRun = true
	env.Run = nil
	env.MarkSynced = func() error { return nil }
	return cfg, env
}

// monitorLog says, in monitor-only mode, what the clock's offset is: at
// the first estimate, every monitorEvery, and when it moved by more than
// its error bound since the last line.
func (d *Discipline) monitorLog(est ntpclient.Estimate) {
	if !d.cfg.MonitorOnly {
		return
	}
	m := &d.monitor
	if m.logged && est.Raw-m.at < monitorEvery && (est.Offset-m.offset).Abs() <= max(est.Error, m.err) {
		return
	}
	m.logged, m.at, m.offset, m.err = true, est.Raw, est.Offset, est.Error
	d.log.Info("monitoring: the clock is off (nothing is corrected)", "offset", est.Offset.Round(time.Microsecond),
		"error_bound", est.Error.Round(time.Microsecond), "sources", est.Sources)
}

// monitorState is what monitorLog last said.
type monitorState struct {
	logged      bool
	at          time.Duration // RAW
	offset, err time.Duration
}
