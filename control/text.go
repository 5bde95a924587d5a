package control

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"slewd/foreign"
)

// stateMark is chronyc's one-letter column, for the eye.
var stateMark = map[string]string{
	StateSelected: "+", StateCandidate: "-", StateFalseticker: "x",
	StateUnreachable: "?", StateKissOfDeath: "k", StateUnusable: "?",
}

const sourcesLegend = `S      * the reference (stratum and poll come from it), + selected (combined),
       - candidate (agrees, not combined), x falseticker, ? unreachable or
       unusable, k kiss-of-death (the reason below says which, and why)
ST     the source's stratum; POLL its poll interval
REACH  the last 8 polls, newest lowest, in octal: 377 is all answered, 0 none
LASTRX how long ago its newest sample was taken
OFFSET its filtered offset (+: the local clock is behind it) ± its root
       distance, the bound on that offset's error; DELAY the round trip

`

// WriteSources writes `slewd sources`: with verbose, the legend first;
// a line per source, as chronyc sources; then why those not selected are not.
func WriteSources(w io.Writer, srcs []Source, verbose bool) {
	if verbose {
		io.WriteString(w, sourcesLegend)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "S\tSTATE\tNAME\tADDRESS\tST\tPOLL\tREACH\tLASTRX\tOFFSET ± ERROR\tDELAY\t")
	for _, s := range srcs {
		mark := stateMark[s.State]
		if s.Reference {
			mark = "*"
		}
		addr, st, sample, delay, age := s.Address, "-", "-", "-", "-"
		if addr == "" || addr == s.Name {
			addr = "-"
		}
		if s.Replies > 0 {
			st = fmt.Sprint(s.Stratum)
		}
		if s.OffsetS != nil {
			sample = SignedSeconds(*s.OffsetS) + " ± " + UnsignedSeconds(*s.ErrorS)
			delay = UnsignedSeconds(*s.DelayS)
			age = ageWords(*s.LastSampleAgeS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", mark, s.State, s.Name, addr, st,
			ageWords(s.PollS), s.ReachOctal, age, sample, delay)
	}
	tw.Flush()
	var why []string
	for _, s := range srcs {
		if s.Reason != "" {
			why = append(why, fmt.Sprintf("  %s: %s", s.Name, s.Reason))
		}
	}
	if len(why) > 0 {
		fmt.Fprintf(w, "not selected:\n%s\n", strings.Join(why, "\n"))
	}
}

// SignedSeconds is how the text forms write an offset: +1.750012s, -923µs, +12.345ms.
func SignedSeconds(s float64) string {
	sign := "+"
	if s < 0 {
		sign = "-"
	}
	return sign + UnsignedSeconds(s)
}

// UnsignedSeconds is |s| (an error bound, a delay): 1.750012s, 923µs, 12.345ms.
func UnsignedSeconds(s float64) string {
	a := math.Abs(s)
	switch {
	case a >= 1:
		return fmt.Sprintf("%.6fs", a)
	case a >= 1e-3:
		return fmt.Sprintf("%.3fms", a*1e3)
	}
	return fmt.Sprintf("%.0fµs", a*1e6)
}

// ageWords is chrony's LastRx: 45s, 12m, 3h, 2d.
func ageWords(s float64) string {
	switch {
	case s < 600:
		return fmt.Sprintf("%.0fs", s)
	case s < 600*60:
		return fmt.Sprintf("%.0fm", s/60)
	case s < 48*3600:
		return fmt.Sprintf("%.0fh", s/3600)
	}
	return fmt.Sprintf("%.0fd", s/86400)
}

// WriteTracking writes `slewd tracking`: a line per field, as chronyc
// tracking, in words.
func WriteTracking(w io.Writer, t Tracking) {
	line := func(k, f string, a ...any) { fmt.Fprintf(w, "%-17s %s\n", k+":", fmt.Sprintf(f, a...)) }
	daemon := "slewd " + t.Daemon.Version
	if t.Daemon.DryRun {
		daemon += ", dry run: measures and plans, never adjusts the clock"
	}
	if t.Daemon.Stopped {
		daemon += ", stopped (the clock is handed back)"
	}
	line("Daemon", "%s", daemon)
	if r := t.Reference; r != nil {
		name := r.Name
		if r.Address != "" && r.Address != r.Name {
			name += " (" + r.Address + ")"
		}
		line("Reference", "%s, stratum %d, refid %s", name, r.Stratum, r.RefID)
	} else {
		line("Reference", "none (no estimate yet, or the sources do not agree: slewd sources says why)")
	}
	line("Stratum", "%d", t.Stratum)
	sync := "no"
	if t.Synchronized {
		sync = "yes"
	}
	line("Synchronized", "%s", sync)
	line("Offset now", "%s: %s", SignedSeconds(t.CorrectionS), behindAhead(t.CorrectionS, "the correction still to slew"))
	switch {
	case t.OutOfBounds:
		line("Slew", "none: the last estimate is beyond --max-offset (`slewd boot` steps it once)")
	case t.Slewing && t.SlewEnd != nil:
		verb := "slewing"
		if t.Daemon.DryRun {
			verb = "would slew (dry run)"
		}
		line("Slew", "%s at %.0f ppm, done in %s (%s)", verb, t.SlewRatePPM, TimeLeft(t.SlewLeftS), t.SlewEnd.UTC().Format(time.DateTime+" MST"))
	default:
		line("Slew", "none under way")
	}
	if t.OffsetS != nil {
		line("Last offset", "%s ± %s, jitter %s (what the sources said at the last update)",
			SignedSeconds(*t.OffsetS), UnsignedSeconds(*t.EstimateErrorS), UnsignedSeconds(*t.JitterS))
	} else {
		line("Last offset", "none yet")
	}
	line("Frequency", "%s ± %.3f ppm", fastSlowPPM(t.FrequencyPPM), t.FrequencySigmaPPM)
	if t.ErrorBoundS != nil {
		line("Error bound", "%s (|offset now| + estimate error + servo uncertainty)", UnsignedSeconds(*t.ErrorBoundS))
	}
	if t.RootDelayS != nil {
		line("Root delay", "%s", UnsignedSeconds(*t.RootDelayS))
		line("Root dispersion", "%s", UnsignedSeconds(*t.RootDispersionS))
		line("Poll", "%s (the reference's)", ageWords(*t.PollS))
	}
	if t.LastUpdate != nil {
		line("Last update", "%s (%s ago)", t.LastUpdate.UTC().Format(time.DateTime+" MST"), ageWords(*t.LastUpdateAgeS))
	}
	line("Sources", "%d agree", t.Sources)
	line("Leap", "%s", t.Leap)
	switch k := t.Kernel; {
	case t.Daemon.DryRun:
		line("Kernel", "not told (dry run)")
	case !k.Told:
		line("Kernel", "not told yet (no estimate): STA_UNSYNC set")
	default:
		unsync := "STA_UNSYNC set (not synchronized)"
		if k.Synchronized {
			unsync = "STA_UNSYNC clear (synchronized; the kernel writes the RTC every 11 min)"
		}
		line("Kernel", "%s, maxerror %s, esterror %s", unsync, UnsignedSeconds(*k.MaxErrorS), UnsignedSeconds(*k.EstErrorS))
	}
	switch m := t.Systemd.MarkedSynchronized; {
	case t.Daemon.DryRun:
		line("systemd", "not told (dry run)")
	case m != nil:
		line("systemd", "%s touched at %s (time-sync.target)", SystemdSyncedFile, m.UTC().Format(time.DateTime+" MST"))
	default:
		line("systemd", "not told yet (%s untouched since slewd started)", SystemdSyncedFile)
	}
	if f := t.Foreign; f != nil {
		s := fmt.Sprintf("%d steps (%d backward, %d undone), %d resumes from suspend, %d slews or rate changes",
			f.Steps, f.Backward, f.Undone, f.Suspends, f.Slews)
		if len(f.Culprits) > 0 {
			var who []string
			for k, n := range f.Culprits {
				who = append(who, fmt.Sprintf("%s %d", k, n))
			}
			sort.Strings(who)
			s += "; by " + strings.Join(who, ", ")
		}
		line("Foreign changes", "%s", s)
		if e := f.Last; e != nil {
			last := fmt.Sprintf("%s %s at %s, %s", e.Kind, SignedSeconds(e.Step.Seconds()), e.Time.UTC().Format(time.DateTime+" MST"), e.Action)
			if e.Culprit != "" {
				last += "; likely " + e.Culprit
			}
			line("Last foreign", "%s", last)
		}
	} else {
		line("Foreign changes", "not watched by this daemon")
	}
}

func behindAhead(s float64, what string) string {
	switch {
	case s > 0:
		return "the clock is behind, " + what
	case s < 0:
		return "the clock is ahead, " + what
	}
	return what
}

func fastSlowPPM(ppm float64) string {
	switch {
	case ppm > 0:
		return fmt.Sprintf("%.3f ppm fast", ppm)
	case ppm < 0:
		return fmt.Sprintf("%.3f ppm slow", math.Abs(ppm))
	}
	return "0.000 ppm"
}

// TimeLeft is how long a slew still takes: 17.4 s, 8.9 min, 2.7 h.
func TimeLeft(s float64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	case s < 2*3600:
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}

// TrackingLine is a running daemon's tracking in one line (`slewd status`):
// version, synchronized or not, the offset and its bound, the slew, the
// sources and the reference.
func TrackingLine(t Tracking) string {
	s := "slewd " + t.Daemon.Version
	if t.Daemon.DryRun {
		s += " (dry run)"
	}
	sync := "not synchronized"
	if t.Synchronized {
		sync = "synchronized"
	}
	s += ": " + sync + ", offset now " + SignedSeconds(t.CorrectionS)
	if t.ErrorBoundS != nil {
		s += " ± " + UnsignedSeconds(*t.ErrorBoundS)
	}
	if t.Slewing && t.SlewEnd != nil {
		verb := ", slewing for "
		if t.Daemon.DryRun {
			verb = ", would slew for "
		}
		s += verb + TimeLeft(t.SlewLeftS)
	}
	s += fmt.Sprintf(", %d sources agree", t.Sources)
	if r := t.Reference; r != nil {
		s += ", reference " + r.Name
	}
	return s
}

// ForeignLine says in one line what other programs did to the clock
// (`slewd status`): counts, and the last change with what slewd did and
// who likely did it. f.Last must be set.
func ForeignLine(f *foreign.Tally, now time.Time) string {
	l := f.Last
	what := l.Kind
	switch {
	case l.Step < 0:
		what = fmt.Sprintf("set back by %v", (-l.Step).Round(time.Microsecond))
	case l.Step > 0:
		what = fmt.Sprintf("set forward by %v", l.Step.Round(time.Microsecond))
	case l.Suspend > 0:
		what = fmt.Sprintf("resumed after %v suspended", l.Suspend.Round(time.Millisecond))
	}
	return fmt.Sprintf("%d steps by other programs (%d back, %d undone), %d suspends, %d slews; the last %s ago: %s, %s; culprit: %s",
		f.Steps, f.Backward, f.Undone, f.Suspends, f.Slews, now.Sub(l.Time).Round(time.Second), what, l.Action, l.Culprit)
}
