package control

import (
	"fmt"
	"math"
	"strings"
	"time"

	"slewd/discipline"
	"slewd/foreign"
	"slewd/ntpclient"
)

// Clock is what the views read: REALTIME, for the times they show, and
// CLOCK_MONOTONIC_RAW, which the snapshot's times are on (clock.System,
// or a simulated clock).
type Clock interface {
	Now() time.Time
	Raw() time.Duration
}

// View turns the discipline's snapshots into what the socket and the
// metrics show. It reads nothing else.
type View struct {
	Snapshot func() discipline.Snapshot
	Clock    Clock
	Version  string // slewd's
	// Foreign picks the foreign-change tally out of a snapshot (nil: the
	// daemon does not watch for foreign changes).
	Foreign func(discipline.Snapshot) *foreign.Tally
}

// Sources is every source's state now.
func (v View) Sources() []Source {
	return sourcesOf(v.Snapshot(), v.Clock.Raw())
}

// Tracking is the clock's state now.
func (v View) Tracking() Tracking {
	return v.tracking(v.Snapshot(), v.Clock.Now(), v.Clock.Raw())
}

// Both is Tracking and Sources from one snapshot, for the metrics.
func (v View) Both() (Tracking, []Source) {
	s := v.Snapshot()
	now, raw := v.Clock.Now(), v.Clock.Raw()
	return v.tracking(s, now, raw), sourcesOf(s, raw)
}

func sourcesOf(s discipline.Snapshot, raw time.Duration) []Source {
	ref := reference(s.Reports)
	out := make([]Source, 0, len(s.Reports))
	for i, r := range s.Reports {
		src := Source{
			Name: r.Source, Address: r.Addr, State: State(r), Reference: i == ref,
			KissCode: r.KissCode, Stratum: r.Stratum, Reach: r.Reach, ReachOctal: fmt.Sprintf("%o", r.Reach),
			PollS: r.Poll.Seconds(), Samples: r.Samples, Polls: r.Queries, Replies: r.Replies, Kisses: r.Kisses,
		}
		if !r.Selected {
			src.Reason = r.Reason
		}
		if r.Replies > 0 {
			src.RefID, src.Leap = ntpclient.RefIDString(r.Stratum, r.RefID), r.Leap.String()
		}
		if r.Samples > 0 {
			src.OffsetS, src.ErrorS, src.DelayS = sec(r.Offset), sec(r.RootDistance), sec(r.Delay)
			src.DispersionS, src.JitterS = sec(r.Dispersion), sec(r.Jitter)
			src.RootDelayS, src.RootDispersionS = sec(r.RootDelay), sec(r.RootDispersion)
			src.LastSampleAgeS = sec(max(raw-r.LastSample, 0))
		}
		out = append(out, src)
	}
	return out
}

// State names a source's part in the last selection.
func State(r ntpclient.SourceReport) string {
	switch {
	case r.Selected:
		return StateSelected
	case r.KissCode != "":
		return StateKissOfDeath
	case r.Reach == 0:
		return StateUnreachable
	case r.Candidate && strings.HasPrefix(r.Reason, "falseticker"):
		return StateFalseticker
	case r.Candidate:
		return StateCandidate
	}
	return StateUnusable
}

// reference is the index of the selected source the estimate's stratum
// comes from: lowest stratum, then smallest root distance (the order
// ntpclient.Select ranks the survivors in); -1 for none.
func reference(rs []ntpclient.SourceReport) int {
	best := -1
	for i, r := range rs {
		if !r.Selected {
			continue
		}
		if best < 0 || r.Stratum < rs[best].Stratum ||
			r.Stratum == rs[best].Stratum && r.RootDistance < rs[best].RootDistance {
			best = i
		}
	}
	return best
}

func (v View) tracking(s discipline.Snapshot, now time.Time, raw time.Duration) Tracking {
	t := Tracking{
		Daemon:       Daemon{Version: v.Version, DryRun: s.DryRun, Started: s.Started, Stopped: s.Stopped},
		Synchronized: s.Synced, Leap: ntpclient.LeapNotInSync.String(),
		CorrectionS: s.Remaining.Seconds(), Slewing: s.Slewing, SlewRatePPM: s.SlewRatePPM,
		OutOfBounds: s.Panicked, FrequencyPPM: s.FreqPPM, FrequencySigmaPPM: s.FreqSigmaPPM,
	}
	if s.Slewing && s.SlewRatePPM > 0 {
		left := discipline.SlewTime(s.Remaining, s.SlewRatePPM)
		end := now.Add(left)
		t.SlewEnd, t.SlewLeftS = &end, left.Seconds()
	}
	if est := s.Estimate; est != nil {
		t.Stratum, t.Leap, t.Sources = est.Stratum, est.Leap.String(), est.Sources
		t.OffsetS, t.EstimateErrorS, t.JitterS = sec(est.Offset), sec(est.Error), sec(est.Jitter)
		age := max(raw-est.Raw, 0)
		at := now.Add(-age)
		t.LastUpdate, t.LastUpdateAgeS = &at, sec(age)
	}
	if s.KernelMaxError > 0 {
		t.ErrorBoundS = sec(s.KernelMaxError)
	}
	if i := reference(s.Reports); i >= 0 {
		r := s.Reports[i]
		t.Reference = &Reference{Name: r.Source, Address: r.Addr, RefID: ntpclient.RefIDString(r.Stratum, r.RefID), Stratum: r.Stratum}
		// To the primary server: our delay to the reference plus its own;
		// our dispersion and jitter on top of its own, so that its root
		// distance is root delay/2 + root dispersion.
		t.RootDelayS = sec(r.RootDelay + r.Delay)
		t.RootDispersionS = sec(r.RootDispersion + r.Dispersion + r.Jitter)
		t.PollS = sec(r.Poll)
	}
	if s.Started && !s.DryRun && s.KernelMaxError > 0 {
		t.Kernel = Kernel{Told: true, Synchronized: s.Synced, MaxErrorS: ceilMicro(s.KernelMaxError), EstErrorS: ceilMicro(s.KernelEstError)}
	}
	// A dry run tells systemd nothing (`slewd run --dry-run` gives the
	// discipline a MarkSynced that does nothing).
	if !s.MarkedSynced.IsZero() && !s.DryRun {
		m := s.MarkedSynced
		t.Systemd.MarkedSynchronized = &m
	}
	if v.Foreign != nil {
		t.Foreign = v.Foreign(s)
	}
	return t
}

func sec(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

// ceilMicro is a bound as the kernel holds it: whole microseconds, up,
// at most 16 s.
func ceilMicro(d time.Duration) *float64 {
	us := math.Min(math.Ceil(float64(d)/1e3), 16e6)
	s := us / 1e6
	return &s
}
