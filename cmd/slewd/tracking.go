package main

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/control"
)

func init() {
	register(62, &cli.Command{
		Name:  "tracking",
		Usage: "show the running daemon's view of the clock: offset, correction left, frequency, error bound (as chronyc tracking)",
		Description: "Asks the running `slewd run` over its control socket: the reference source,\n" +
			"the offset now (the correction still to slew) with the slew's rate and end,\n" +
			"the offset the sources gave at the last update, the frequency and its\n" +
			"uncertainty, the error bound, root delay and dispersion, the poll interval,\n" +
			"what slewd told the kernel and systemd, and the clock changes made by other\n" +
			"programs. docs/operations.md explains every field. Offsets follow NTP's\n" +
			"sign: positive, the local clock is behind.\n\n" +
			"Reading needs membership of group slewd (or root). Exit status: 0, 1 if the\n" +
			"daemon refuses, 3 if no daemon is running, 77 without permission.",
		Flags: []cli.Flag{
			controlSocketFlag(),
			&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print the daemon's JSON answer (for scripts)"},
		},
		Action: func(c *cli.Context) error {
			resp, err := askDaemon(c, control.CmdTracking)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, resp)
			}
			if resp.Tracking == nil {
				return cli.Exit("slewd tracking: the daemon sent no tracking", 1)
			}
			writeTrackingText(c.App.Writer, *resp.Tracking)
			return nil
		},
	})
}

func writeTrackingText(w io.Writer, t control.Tracking) {
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
	line("Offset now", "%s: %s", signedSeconds(t.CorrectionS), behindAhead(t.CorrectionS, "the correction still to slew"))
	switch {
	case t.OutOfBounds:
		line("Slew", "none: the last estimate is beyond --max-offset (`slewd boot` steps it once)")
	case t.Slewing && t.SlewEnd != nil:
		verb := "slewing"
		if t.Daemon.DryRun {
			verb = "would slew (dry run)"
		}
		line("Slew", "%s at %.0f ppm, done in %s (%s)", verb, t.SlewRatePPM, timeLeft(t.SlewLeftS), t.SlewEnd.UTC().Format(time.DateTime+" MST"))
	default:
		line("Slew", "none under way")
	}
	if t.OffsetS != nil {
		line("Last offset", "%s ± %s, jitter %s (what the sources said at the last update)",
			signedSeconds(*t.OffsetS), unsignedSeconds(*t.EstimateErrorS), unsignedSeconds(*t.JitterS))
	} else {
		line("Last offset", "none yet")
	}
	line("Frequency", "%s ± %.3f ppm", fastSlowPPM(t.FrequencyPPM), t.FrequencySigmaPPM)
	if t.ErrorBoundS != nil {
		line("Error bound", "%s (|offset now| + estimate error + servo uncertainty)", unsignedSeconds(*t.ErrorBoundS))
	}
	if t.RootDelayS != nil {
		line("Root delay", "%s", unsignedSeconds(*t.RootDelayS))
		line("Root dispersion", "%s", unsignedSeconds(*t.RootDispersionS))
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
		line("Kernel", "%s, maxerror %s, esterror %s", unsync, unsignedSeconds(*k.MaxErrorS), unsignedSeconds(*k.EstErrorS))
	}
	switch m := t.Systemd.MarkedSynchronized; {
	case t.Daemon.DryRun:
		line("systemd", "not told (dry run)")
	case m != nil:
		line("systemd", "%s touched at %s (time-sync.target)", timesyncSyncedFile, m.UTC().Format(time.DateTime+" MST"))
	default:
		line("systemd", "not told yet (%s untouched since slewd started)", timesyncSyncedFile)
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
			last := fmt.Sprintf("%s %s at %s, %s", e.Kind, signedSeconds(e.Step.Seconds()), e.Time.UTC().Format(time.DateTime+" MST"), e.Action)
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

// timeLeft: 17.4 s, 8.9 min, 2.7 h.
func timeLeft(s float64) string {
	switch {
	case s < 120:
		return fmt.Sprintf("%.1f s", s)
	case s < 2*3600:
		return fmt.Sprintf("%.1f min", s/60)
	}
	return fmt.Sprintf("%.1f h", s/3600)
}
