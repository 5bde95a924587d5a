package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slewd/discipline/statefile"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/boot"
)

const waitExitCodes = "Exit status:\n" +
	"   0  synchronized within the limits\n" +
	"   1  the kernel clock could not be read\n" +
	"   2  bad arguments\n" +
	"   3  not synchronized before --timeout"

func init() {
	register(40, &cli.Command{
		Name:  "wait",
		Usage: "wait until the clock is synchronized (like ntp-wait, chronyc waitsync), read-only",
		Description: "Blocks until the kernel says the clock is synchronized (adjtimex does not\n" +
			"return TIME_ERROR, and maxerror is at most --max-error) and the correction\n" +
			"still to make is within --max-correction. That correction is what `slewd run`\n" +
			"last wrote in --run-dir/status.json (if it is fresh, not older than\n" +
			"--status-max-age), plus a pending adjtime slew, plus the kernel PLL offset\n" +
			"when no daemon status counts. It is read-only and needs no privileges (an\n" +
			"unreadable status file counts as none). Put it before services that must\n" +
			"start with the right time (slewd-wait.service; Before=dovecot.service).\n\n" +
			"Direction: the correction has NTP's sign (positive: the clock is behind).\n" +
			"--max-behind and --max-ahead replace --max-correction for one direction:\n" +
			"`--max-ahead 0 --max-behind 1h` lets a service start while the clock is\n" +
			"behind (it only runs faster for a while), never while it is ahead. With\n" +
			"--daemon-only a fresh estimate from `slewd run` stands in for the kernel's\n" +
			"flag, which slewd run sets only once the correction is done.\n\n" + waitExitCodes,
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "timeout", EnvVars: []string{"SLEWD_WAIT_TIMEOUT"}, Usage: "give up after this long (exit status 3); 0 waits for ever"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "how often to look"},
			&cli.DurationFlag{Name: "max-error", Value: time.Second, EnvVars: []string{"SLEWD_WAIT_MAX_ERROR"},
				Usage: "largest kernel maxerror accepted (it grows 500 µs/s between a daemon's updates)"},
			&cli.DurationFlag{Name: "max-correction", Value: 100 * time.Millisecond, EnvVars: []string{"SLEWD_WAIT_MAX_CORRECTION"},
				Usage: "largest correction still to make, either way"},
			&cli.DurationFlag{Name: "max-behind", EnvVars: []string{"SLEWD_WAIT_MAX_BEHIND"}, Usage: "largest correction while the clock is behind", DefaultText: "--max-correction"},
			&cli.DurationFlag{Name: "max-ahead", EnvVars: []string{"SLEWD_WAIT_MAX_AHEAD"}, Usage: "largest correction while the clock is ahead", DefaultText: "--max-correction"},
			&cli.BoolFlag{Name: "daemon-only", Usage: "accept a fresh estimate from slewd run instead of the kernel's synchronized flag"},
			&cli.StringFlag{Name: "run-dir", Value: defaultRunDir, EnvVars: []string{"SLEWD_RUN_DIR"}, Usage: "where slewd run keeps its status file"},
			&cli.DurationFlag{Name: "status-max-age", Value: statefile.DefaultStatusMaxAge, Usage: "ignore a daemon status older than this"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "say on stderr what is not right yet, whenever it changes"},
		},
		Action: waitAction,
	})
}

func waitAction(c *cli.Context) error {
	lim := boot.WaitLimits{
		RequireKernelSync: !c.Bool("daemon-only"),
		MaxError:          c.Duration("max-error"),
		MaxBehind:         c.Duration("max-correction"),
		MaxAhead:          c.Duration("max-correction"),
	}
	if c.IsSet("max-behind") {
		lim.MaxBehind = c.Duration("max-behind")
	}
	if c.IsSet("max-ahead") {
		lim.MaxAhead = c.Duration("max-ahead")
	}
	for _, name := range []string{"timeout", "max-error", "max-correction", "max-behind", "max-ahead"} {
		if c.Duration(name) < 0 {
			return cli.Exit(fmt.Sprintf("--%s must not be negative", name), boot.ExitUsage)
		}
	}
	if c.Duration("interval") < 10*time.Millisecond {
		return cli.Exit("--interval must be at least 10ms", boot.ExitUsage)
	}
	env := newOneShotEnv(c, slog.New(slog.DiscardHandler))
	clk, maxAge := env.Net.Clock, c.Duration("status-max-age")
	statusNote := ""
	probe := func() (boot.Verdict, error) {
		k, err := boot.ReadKernel(clk)
		if err != nil {
			return boot.Verdict{}, err
		}
		var daemon *statefile.Status
		st, ok, err := statefile.ReadStatus(env.Run)
		switch {
		case err != nil:
			if n := err.Error(); n != statusNote && c.Bool("verbose") {
				fmt.Fprintf(c.App.ErrWriter, "slewd wait: ignoring the daemon's status: %v\n", err)
			}
			statusNote = err.Error()
		case ok && st.Fresh(clk.Now(), maxAge):
			daemon = &st
		}
		return boot.Check(k, daemon, lim), nil
	}
	report := func(v boot.Verdict) {
		if c.Bool("verbose") && !v.Synced {
			fmt.Fprintf(c.App.ErrWriter, "slewd wait: waiting: %s\n", v.Why)
		}
	}
	v, err := boot.Wait(c.Context, clk, env.Net.Loop, probe, c.Duration("timeout"), c.Duration("interval"), report)
	switch {
	case errors.Is(err, boot.ErrTimeout):
		return cli.Exit(fmt.Sprintf("wait: not synchronized after %v: %s", c.Duration("timeout"), v.Why), boot.ExitNoSync)
	case errors.Is(err, context.Canceled):
		return cli.Exit("wait: interrupted", boot.ExitError)
	case err != nil:
		return cli.Exit("wait: "+err.Error(), boot.ExitError)
	}
	if !c.Bool("quiet") {
		from := "kernel"
		if v.FromDaemon {
			from = "slewd run"
		}
		fmt.Fprintf(c.App.Writer, "synchronized: maxerror %v, correction left %+.6f s (%s)\n", v.MaxError, v.Remaining.Seconds(), from)
	}
	return nil
}
