package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"slewd/control"
)

// exitNoDaemon is the client commands' exit status when no daemon runs.
const exitNoDaemon = 3

func init() {
	register(61, &cli.Command{
		Name:  "sources",
		Usage: "show the running daemon's sources: state, reach, offset, delay (as chronyc sources)",
		Description: "Asks the running `slewd run` over its control socket and prints one line per\n" +
			"source: its state in the last selection and why it is not selected, stratum,\n" +
			"poll interval, reach register (octal), age of the last sample, filtered offset\n" +
			"± its error bound, and delay. -v explains the columns. docs/operations.md\n" +
			"explains every field. Offsets follow NTP's sign: positive, the local clock is\n" +
			"behind the source.\n\n" +
			"Reading needs membership of group slewd (or root). Exit status: 0, 1 if the\n" +
			"daemon refuses, 3 if no daemon is running, 77 without permission.",
		Flags: []cli.Flag{
			controlSocketFlag(),
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "explain the columns and the states"},
			&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print the daemon's JSON answer (for scripts)"},
		},
		Action: func(c *cli.Context) error {
			resp, err := askDaemon(c, control.CmdSources)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return writeJSON(c.App.Writer, resp)
			}
			writeSourcesText(c.App.Writer, resp.Sources, c.Bool("verbose"))
			return nil
		},
	})
}

// controlSocketFlag is where the client commands find the daemon.
func controlSocketFlag() cli.Flag {
	return &cli.StringFlag{Name: "control-socket", Value: control.DefaultSocket, EnvVars: []string{"SLEWD_CONTROL_SOCKET"},
		Usage: "the running daemon's control socket (slewd run --control-socket)"}
}

// askDaemon asks the daemon one command; the errors carry the exit
// statuses the client commands document.
func askDaemon(c *cli.Context, command string) (control.Response, error) {
	name := "slewd " + c.Command.Name
	resp, err := control.Ask(c.Context, c.String("control-socket"), command)
	switch {
	case errors.Is(err, control.ErrNoDaemon):
		return resp, cli.Exit(name+": "+err.Error()+"; start it with `slewd run` (systemctl start slewd)", exitNoDaemon)
	case errors.Is(err, control.ErrPermission):
		return resp, cli.Exit(name+": "+err.Error(), 77)
	case err != nil:
		return resp, cli.Exit(name+": "+err.Error(), 1)
	case resp.Denied:
		return resp, cli.Exit(name+": "+resp.Error, 77)
	case resp.Error != "":
		return resp, cli.Exit(name+": the daemon says: "+resp.Error, 1)
	}
	return resp, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// stateMark is chronyc's one-letter column, for the eye.
var stateMark = map[string]string{
	control.StateSelected: "+", control.StateCandidate: "-", control.StateFalseticker: "x",
	control.StateUnreachable: "?", control.StateKissOfDeath: "k", control.StateUnusable: "?",
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

func writeSourcesText(w io.Writer, srcs []control.Source, verbose bool) {
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
			sample = signedSeconds(*s.OffsetS) + " ± " + unsignedSeconds(*s.ErrorS)
			delay = unsignedSeconds(*s.DelayS)
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

// signedSeconds: +1.750012s, -923µs, +12.345ms.
func signedSeconds(s float64) string {
	sign := "+"
	if s < 0 {
		sign = "-"
	}
	return sign + unsignedSeconds(s)
}

func unsignedSeconds(s float64) string {
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
