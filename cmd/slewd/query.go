package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/boot"
	"slewd/clock"
	"slewd/ntpclient"
)

func init() {
	flags := slices.DeleteFunc(clientFlags(), func(f cli.Flag) bool {
		// A one-shot query does not poll.
		return slices.ContainsFunc(f.Names(), func(n string) bool { return n == "minpoll" || n == "maxpoll" || n == "poll" })
	})
	flags = append(flags,
		&cli.IntFlag{Name: "samples", Value: ntpclient.DefaultMeasureBurst, EnvVars: []string{"SLEWD_QUERY_SAMPLES"},
			Usage: "queries per server (1 to 32)"},
		&cli.DurationFlag{Name: "interval", Value: ntpclient.DefaultBurstInterval, EnvVars: []string{"SLEWD_QUERY_INTERVAL"},
			Usage: "time between queries to one server (servers that rate-limit drop faster queries)"},
		&cli.DurationFlag{Name: "deadline", EnvVars: []string{"SLEWD_QUERY_DEADLINE"},
			DefaultText: "enough for all the samples",
			Usage:       "give up after this long"},
		&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print one JSON object (for scripts)"},
		&cli.StringFlag{Name: "log-level", Value: "error", EnvVars: []string{"SLEWD_LOG_LEVEL"}, Usage: "debug, info, warn or error (to stderr)"},
	)
	register(50, &cli.Command{
		Name:      "query",
		Usage:     "measure the clock against NTP servers without changing it (like ntpdate -q, chronyd -Q)",
		ArgsUsage: "[SERVER...]",
		Description: "Queries every server in parallel (--samples each, --interval apart), filters\n" +
			"the samples, rejects falsetickers and combines the rest, as the daemon does,\n" +
			"and prints each server's answer and the estimate with its error bound. It\n" +
			"reads the clock only: it needs no privileges and changes nothing.\n\n" +
			"Offsets follow NTP's sign: server time minus local time, so a positive\n" +
			"offset means the local clock is behind.\n\n" +
			"Exit status: 0 with an estimate, 1 without one (no quorum, no answer),\n" +
			"2 for bad arguments.",
		Flags:  flags,
		Action: queryAction,
	})
}

func queryAction(c *cli.Context) error {
	cfg, err := clientConfig(c)
	if err != nil {
		return err
	}
	cfg.Burst = c.Int("samples")
	cfg.BurstInterval = c.Duration("interval")
	// More samples than the filter keeps add nothing but load on the
	// servers; faster than 10 ms is a flood, not a measurement.
	if cfg.Burst < 1 || cfg.Burst > 32 {
		return cli.Exit(fmt.Sprintf("slewd query: --samples %d: give 1 to 32 (the filter keeps no more)", cfg.Burst), 2)
	}
	if cfg.BurstInterval < 10*time.Millisecond {
		return cli.Exit(fmt.Sprintf("slewd query: --interval %v: give at least 10ms (public servers drop queries closer than 2 s)", cfg.BurstInterval), 2)
	}
	log, err := newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return err
	}
	env := ntpclient.Env{Clock: clock.System{}, Loop: clock.NewSystemLoop(1024), Logger: log}
	est, err := ntpclient.Measure(c.Context, cfg, env, c.Duration("deadline"))
	var none *ntpclient.NoEstimateError
	switch {
	case errors.Is(err, context.Canceled):
		return cli.Exit("slewd query: interrupted", 1)
	case err != nil && !errors.As(err, &none):
		return cli.Exit("slewd query: "+err.Error(), 2) // bad configuration
	}
	if c.Bool("json") {
		if werr := writeQueryJSON(c.App.Writer, est, err); werr != nil {
			return werr
		}
	} else {
		writeQueryText(c.App.Writer, est, none)
	}
	if none != nil {
		return cli.Exit("slewd query: "+boot.Summary(none), 1)
	}
	return nil
}

// queryJSON is `slewd query --json`. Field names are stable: scripts and
// the peer tests read them.
type queryJSON struct {
	Estimate *estimateJSON `json:"estimate"` // null when there is none
	Error    string        `json:"error,omitempty"`
	Sources  []sourceJSON  `json:"sources"`
}

type estimateJSON struct {
	OffsetS float64 `json:"offset_s"` // NTP sign: server − local
	ErrorS  float64 `json:"error_s"`
	JitterS float64 `json:"jitter_s"`
	Sources int     `json:"sources"` // how many agree
	Stratum uint8   `json:"stratum"`
	Leap    string  `json:"leap"`
}

type sourceJSON struct {
	Address      string   `json:"address"` // as given, with port
	Addr         string   `json:"addr"`    // the address queried
	OffsetS      *float64 `json:"offset_s"`
	DelayS       *float64 `json:"delay_s"`
	DispersionS  *float64 `json:"dispersion_s"`
	JitterS      *float64 `json:"jitter_s"`
	RootDistance *float64 `json:"root_distance_s"`
	Samples      int      `json:"samples"`
	Stratum      uint8    `json:"stratum"`
	RefID        string   `json:"refid"`
	Leap         string   `json:"leap"`
	Kiss         string   `json:"kiss,omitempty"`
	Reach        uint8    `json:"reach"`
	Selected     bool     `json:"selected"`
	Reason       string   `json:"reason,omitempty"`
}

func writeQueryJSON(w io.Writer, est ntpclient.Estimate, err error) error {
	out := queryJSON{Sources: []sourceJSON{}}
	if err == nil {
		out.Estimate = &estimateJSON{
			OffsetS: est.Offset.Seconds(), ErrorS: est.Error.Seconds(), JitterS: est.Jitter.Seconds(),
			Sources: est.Sources, Stratum: est.Stratum, Leap: est.Leap.String(),
		}
	} else {
		out.Error = err.Error()
	}
	for _, d := range est.Details {
		s := sourceJSON{Address: d.Source, Addr: d.Addr, Samples: d.Samples, Stratum: d.Stratum,
			RefID: ntpclient.RefIDString(d.Stratum, d.RefID), Leap: d.Leap.String(), Kiss: d.KissCode,
			Reach: d.Reach, Selected: d.Selected, Reason: d.Reason}
		if d.Samples > 0 {
			s.OffsetS, s.DelayS, s.DispersionS = secs(d.Offset), secs(d.Delay), secs(d.Dispersion)
			s.JitterS, s.RootDistance = secs(d.Jitter), secs(d.RootDistance)
		}
		if d.Addr == "" {
			s.RefID, s.Leap = "", ""
		}
		out.Sources = append(out.Sources, s)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func secs(d time.Duration) *float64 {
	s := d.Seconds()
	return &s
}

func writeQueryText(w io.Writer, est ntpclient.Estimate, none *ntpclient.NoEstimateError) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SOURCE\tADDRESS\tST\tREFID\tOFFSET\tDELAY\tDISP\tLEAP\tKISS\t")
	for _, d := range est.Details {
		offset, delay, disp := "-", "-", "-"
		if d.Samples > 0 {
			offset = fmt.Sprintf("%+.6fs", d.Offset.Seconds())
			delay = fmt.Sprintf("%.6fs", d.Delay.Seconds())
			disp = fmt.Sprintf("%.6fs", d.Dispersion.Seconds())
		}
		st, refid, leap, addr := "-", "-", "-", d.Addr
		if d.Addr == "" {
			addr = "-"
		} else if d.Reach != 0 {
			st, refid, leap = fmt.Sprint(d.Stratum), ntpclient.RefIDString(d.Stratum, d.RefID), d.Leap.String()
		}
		kiss := d.KissCode
		if kiss == "" {
			kiss = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", d.Source, addr, st, refid, offset, delay, disp, leap, kiss)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if none == nil {
		agree := fmt.Sprintf("%d sources agree", est.Sources)
		if est.Sources == 1 {
			agree = "1 source"
		}
		// The table shows the servers' strata; the estimate's is one more
		// (what this clock would serve): say both, named.
		fmt.Fprintf(w, "offset %+.6fs ± %.6fs (jitter %.6fs) from %s, best at stratum %d (this clock: stratum %d)",
			est.Offset.Seconds(), est.Error.Seconds(), est.Jitter.Seconds(), agree, est.Stratum-1, est.Stratum)
		if est.Leap != ntpclient.LeapNone {
			fmt.Fprintf(w, ", leap %s", est.Leap)
		}
		fmt.Fprintln(w)
		switch {
		case est.Offset > 0:
			fmt.Fprintf(w, "the local clock is %s behind\n", fmtAbsDuration(est.Offset))
		case est.Offset < 0:
			fmt.Fprintf(w, "the local clock is %s ahead\n", fmtAbsDuration(est.Offset))
		}
	} else {
		fmt.Fprintf(w, "no estimate: %s\n", none.Reason)
	}
	var rejected []ntpclient.SourceReport
	for _, d := range est.Details {
		if !d.Selected {
			rejected = append(rejected, d)
		}
	}
	if len(rejected) > 0 {
		fmt.Fprintln(w, "not used:")
		for _, d := range rejected {
			fmt.Fprintf(w, "  %s: %s\n", d.Source, boot.OneShotWords(d.Reason))
		}
	}
}

func fmtAbsDuration(d time.Duration) string {
	d = d.Abs()
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Millisecond).String()
}
