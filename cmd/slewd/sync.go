package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/boot"
)

const syncExitCodes = "Exit status:\n" +
	"   0  the correction was handed to the kernel (or there was nothing to do,\n" +
	"      or `slewd run` is keeping the clock)\n" +
	"   1  failure: the kernel refused, a file could not be read\n" +
	"   2  bad arguments or configuration\n" +
	"   3  no usable time from the servers (no answer, no quorum)\n" +
	"   5  the offset is beyond what the adjtime slew can make (2145 s): nothing\n" +
	"      was changed; step once with `slewd boot` (before services start), or\n" +
	"      run `slewd run`, which slews at up to 10 %\n" +
	"  77  no permission to adjust the clock (CAP_SYS_TIME)"

func init() {
	register(35, &cli.Command{
		Name:      "sync",
		Usage:     "measure once and hand the correction to the kernel's adjtime slew, for cron (replaces ntpdate)",
		ArgsUsage: "[SERVER...]",
		Description: "Queries every server (--samples each, --interval apart), combines the answers\n" +
			"as the daemon does, and hands the correction to the kernel's adjtime\n" +
			"singleshot (ADJ_OFFSET_SINGLESHOT): the kernel slews the clock at 500 ppm\n" +
			"(one second in 33 minutes) after slewd has exited, and stops at exactly\n" +
			"zero. It never steps, so a daily cron job cannot move the clock back:\n" +
			"replace `ntpdate ntp.nict.jp` in /etc/cron.daily with\n" +
			"`slewd sync ntp.nict.jp` (see dist/cron/slewd-sync). A new correction\n" +
			"replaces a pending one. When `slewd run` is keeping the clock (a fresh\n" +
			"--run-dir/status.json) sync does nothing unless --force.\n\n" +
			"Invoked as `ntpdate` (a symlink) or as `slewd ntpdate`, it accepts ntpdate's\n" +
			"flags and prints ntpdate's lines (see `slewd ntpdate -h`).\n\n" + syncExitCodes,
		Flags: append(oneShotFlags(),
			&cli.IntFlag{Name: "samples", Value: 4, EnvVars: []string{"SLEWD_SYNC_SAMPLES"}, Usage: "queries per server (1 to 8)"},
			&cli.DurationFlag{Name: "interval", Value: 2 * time.Second, EnvVars: []string{"SLEWD_SYNC_INTERVAL"},
				Usage: "time between queries to one server (ntpd's \"restrict limited\" drops faster ones)"},
			&cli.DurationFlag{Name: "deadline", DefaultText: "enough for all the samples", Usage: "give up after this long"},
			&cli.BoolFlag{Name: "force", Usage: "slew even when slewd run is keeping the clock"},
			&cli.DurationFlag{Name: "sync-threshold", Value: boot.DefaultSyncThreshold, EnvVars: []string{"SLEWD_SYNC_THRESHOLD"},
				Usage: "tell the kernel the clock is synchronized only when the correction left plus the error bound is below this"},
			&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, EnvVars: []string{"SLEWD_STATE_DIR"}, Usage: "where the high-water mark lives"},
			&cli.StringFlag{Name: "run-dir", Value: defaultRunDir, EnvVars: []string{"SLEWD_RUN_DIR"}, Usage: "where slewd run keeps its status file"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "measure and plan, but do not touch the clock"},
			// No -q: to an ntpdate user -q means "query only", and this one adjusts.
			&cli.BoolFlag{Name: "quiet", Usage: "print nothing when all is well (for cron, which mails any output)"},
			&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print one JSON object (for scripts)"},
			&cli.StringFlag{Name: "log-level", Value: "warn", EnvVars: []string{"SLEWD_LOG_LEVEL"}, Usage: "debug, info, warn or error (to stderr)"},
		),
		Action: syncAction,
	})
}

func syncAction(c *cli.Context) error {
	if c.Int("samples") < 1 || c.Int("samples") > 8 || c.Duration("interval") <= 0 {
		return cli.Exit("--samples must be 1 to 8 and --interval positive", boot.ExitUsage)
	}
	cfg, env, err := oneShotSetup(c)
	if err != nil {
		return err
	}
	cfg.Burst, cfg.BurstInterval = c.Int("samples"), c.Duration("interval")
	rep, err := boot.Sync(c.Context, boot.SyncConfig{
		Client: cfg, Deadline: c.Duration("deadline"), Query: c.Bool("dry-run"), Force: c.Bool("force"),
		SyncThreshold: c.Duration("sync-threshold"),
	}, env)
	if err != nil {
		return oneShotError(c, "sync", err)
	}
	switch {
	case c.Bool("json"):
		if err := writeOneShotJSON(c.App.Writer, rep, false); err != nil {
			return err
		}
	case !c.Bool("quiet") && rep.ExitCode == boot.ExitOK:
		// A failure is said once, on stderr, by the error below.
		writeOneShotText(c.App.Writer, "slewd sync", rep)
		if rep.Estimate == nil && rep.ExitCode == boot.ExitOK {
			fmt.Fprintf(c.App.Writer, "slewd sync: %s\n", rep.Reason)
		}
	}
	if rep.ExitCode != boot.ExitOK {
		return cli.Exit("sync: "+rep.Reason, rep.ExitCode)
	}
	return nil
}
