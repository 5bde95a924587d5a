package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/boot"
	"slewd/clock"
	"slewd/ntpclient"
)

// oneShotFlags are clientFlags without the polling options: boot, sync
// and ntpdate ask each server a few times and exit.
func oneShotFlags() []cli.Flag {
	return slices.DeleteFunc(clientFlags(), func(f cli.Flag) bool {
		return slices.ContainsFunc(f.Names(), func(n string) bool { return n == "minpoll" || n == "maxpoll" || n == "poll" })
	})
}

// newOneShotEnv builds what boot, sync and wait touch: the real kernel
// clock, UDP, the state and run directories. Tests replace it with a
// simulated kernel and network.
var newOneShotEnv = func(c *cli.Context, log *slog.Logger) boot.Env {
	env := boot.Env{
		Net: ntpclient.Env{Clock: clock.System{}, Loop: clock.NewSystemLoop(1024), Logger: log},
		Log: log,
	}
	env.State = adjtime.DirStore{Dir: defaultStateDir}
	if hasFlag(c, "state-dir") {
		env.State = adjtime.DirStore{Dir: c.String("state-dir")}
	}
	env.Run = adjtime.DirStore{Dir: defaultRunDir}
	if hasFlag(c, "run-dir") {
		env.Run = adjtime.DirStore{Dir: c.String("run-dir")}
	}
	return env
}

// oneShotSetup is what boot and sync start with: the client's
// configuration from the flags and arguments, the logger of --log-level,
// and their environment (newOneShotEnv).
func oneShotSetup(c *cli.Context) (ntpclient.Config, boot.Env, error) {
	cfg, err := clientConfig(c)
	if err != nil {
		return cfg, boot.Env{}, err
	}
	log, err := newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return cfg, boot.Env{}, err
	}
	return cfg, newOneShotEnv(c, log), nil
}

func hasFlag(c *cli.Context, name string) bool {
	return slices.ContainsFunc(c.Command.Flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), name) })
}

// bootExitCodes is the exit-status table of `slewd boot --help`.
const bootExitCodes = "Exit status:\n" +
	"   0  synchronized: stepped once, slewing a small offset, or nothing to do\n" +
	"   1  failure: the kernel refused a clock change, a file could not be written\n" +
	"   2  bad arguments or configuration\n" +
	"   3  no usable time from the servers before --deadline: the clock was not\n" +
	"      set (--restore-from-high-water may have moved it forward to the mark);\n" +
	"      slewd-boot.service accepts it (SuccessExitStatus=3), so booting goes on\n" +
	"   4  as 3, under --require-sync: the unit fails, and units that Requires= it\n" +
	"      (e.g. dovecot, postfix with the drop-in) do not start\n" +
	"   5  the clock is ahead by more than the adjtime singleshot can slew (2145 s)\n" +
	"      and --forward-only forbids the step back: nothing was changed\n" +
	"  77  no permission to set the clock (CAP_SYS_TIME; none in a container or\n" +
	"      user namespace)"

func init() {
	register(30, &cli.Command{
		Name:      "boot",
		Usage:     "set the clock once at boot, before services that cannot bear time going back",
		ArgsUsage: "[SERVER...]",
		Description: "Queries every server at once and, as soon as enough of them agree (the\n" +
			"quorum: --min-sources, by default a majority), steps the clock ONCE when the\n" +
			"offset is at least --step-threshold, or hands a smaller offset to the kernel's\n" +
			"adjtime slew (500 ppm, it stops at zero by itself). Unanswered queries are\n" +
			"repeated every 2 s until --deadline. Then it tells the kernel how good the\n" +
			"clock is (STA_UNSYNC and maxerror), leaves tick and frequency alone so that\n" +
			"`slewd run` can take over, saves the high-water mark of known-good time in\n" +
			"--state-dir, and exits. Run it before dovecot and postfix (slewd-boot.service).\n\n" +
			"--forward-only steps only a clock that is behind; a clock that is ahead is\n" +
			"slewed instead (it runs slow, never backwards), and boot says so.\n\n" +
			"Offsets follow NTP's sign: server time minus local time, so a positive\n" +
			"offset means the local clock is behind.\n\n" + bootExitCodes,
		Flags: append(oneShotFlags(),
			&cli.DurationFlag{Name: "step-threshold", Value: boot.DefaultStepThreshold, EnvVars: []string{"SLEWD_STEP_THRESHOLD"},
				Usage: "step offsets at least this large; slew smaller ones"},
			&cli.BoolFlag{Name: "forward-only", EnvVars: []string{"SLEWD_FORWARD_ONLY"},
				Usage: "never step the clock back: slew a clock that is ahead instead"},
			&cli.DurationFlag{Name: "deadline", Value: boot.DefaultDeadline, EnvVars: []string{"SLEWD_BOOT_DEADLINE"},
				Usage: "give up after this long without an estimate (exit status 3)"},
			&cli.BoolFlag{Name: "require-sync", EnvVars: []string{"SLEWD_REQUIRE_SYNC"},
				Usage: "exit 4 instead of 3 without an estimate, so the unit fails and units that Requires= it do not start"},
			&cli.BoolFlag{Name: "restore-from-high-water", EnvVars: []string{"SLEWD_RESTORE_FROM_HIGH_WATER"},
				Usage: "without an estimate, move the clock forward (never back) to the last known-good time"},
			&cli.DurationFlag{Name: "sync-threshold", Value: boot.DefaultSyncThreshold, EnvVars: []string{"SLEWD_SYNC_THRESHOLD"},
				Usage: "tell the kernel the clock is synchronized only when the correction left plus the error bound is below this"},
			&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, EnvVars: []string{"SLEWD_STATE_DIR"},
				Usage: "where the high-water mark lives"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "measure and plan, but do not touch the clock"},
			&cli.BoolFlag{Name: "json", EnvVars: []string{"SLEWD_JSON"}, Usage: "print one JSON object (for scripts)"},
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"SLEWD_LOG_LEVEL"}, Usage: "debug, info, warn or error (to stderr)"},
			logFormatFlag(),
		),
		Action: bootAction,
	})
}

func bootAction(c *cli.Context) error {
	if c.Duration("deadline") <= 0 || c.Duration("step-threshold") <= 0 {
		return cli.Exit("--deadline and --step-threshold must be positive", boot.ExitUsage)
	}
	cfg, env, err := oneShotSetup(c)
	if err != nil {
		return err
	}
	rep, err := boot.Run(c.Context, boot.Config{
		Client: cfg, Deadline: c.Duration("deadline"), StepThreshold: c.Duration("step-threshold"),
		ForwardOnly: c.Bool("forward-only"), RequireSync: c.Bool("require-sync"),
		RestoreHighWater: c.Bool("restore-from-high-water"), DryRun: c.Bool("dry-run"), Built: buildTime(),
		SyncThreshold: c.Duration("sync-threshold"),
	}, env)
	if err != nil {
		return oneShotError(c, "boot", err)
	}
	if c.Bool("json") {
		if err := writeOneShotJSON(c.App.Writer, rep, c.Bool("forward-only")); err != nil {
			return err
		}
	} else if rep.ExitCode == boot.ExitOK {
		// A failure is said once, on stderr, by the error below.
		writeOneShotText(c.App.Writer, "slewd boot", rep)
	}
	switch rep.ExitCode {
	case boot.ExitOK:
		return nil
	case boot.ExitNoSync, boot.ExitNoSyncRequired:
		return cli.Exit(fmt.Sprintf("boot: not synchronized after %v: %s", rep.Elapsed.Round(time.Millisecond), rep.Reason), rep.ExitCode)
	default:
		return cli.Exit("boot: "+rep.Reason, rep.ExitCode)
	}
}

// oneShotError maps a failure to its exit status: 77 without permission,
// 2 for a configuration the client rejects, else 1. With --json, stdout
// still gets its one object, saying what failed.
func oneShotError(c *cli.Context, cmd string, err error) error {
	code := boot.ExitError
	switch {
	case clock.ErrPermission(err):
		code = boot.ExitNoPerm
	case isConfigError(err):
		code = boot.ExitUsage
	}
	if c.Bool("json") {
		out := oneShotJSON{Action: string(boot.ActionNone), Reason: err.Error(), ExitCode: code,
			ForwardOnly: c.Bool("forward-only"), DryRun: c.Bool("dry-run"), Servers: []sourceJSON{}}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	}
	if errors.Is(err, context.Canceled) {
		return cli.Exit(cmd+": interrupted", code)
	}
	return cli.Exit(cmd+": "+err.Error(), code)
}

// isConfigError: the client refused its configuration before any I/O
// (ntpclient.NewClient's errors are plain; clock and context errors wrap
// known types).
func isConfigError(err error) bool {
	var ae *clock.AdjtimexError
	return !errors.As(err, &ae) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// oneShotJSON is `slewd boot --json` and `slewd sync --json`. Field names
// are stable: scripts read them.
type oneShotJSON struct {
	Action  string   `json:"action"`   // step, slew or none
	OffsetS float64  `json:"offset_s"` // NTP sign: server − local (positive: the clock is behind)
	Sources int      `json:"sources"`  // how many sources agree (0: no estimate)
	ErrorS  *float64 `json:"error_s"`  // error bound of the estimate
	StepS   float64  `json:"step_s"`   // the step made (or planned in a dry run)
	SlewS   float64  `json:"slew_s"`   // handed to the adjtime singleshot
	// PLLPendingS is what a pending kernel PLL offset still does; the
	// singleshot got slew_s minus it.
	PLLPendingS         float64      `json:"pll_pending_s,omitempty"`
	PreviousSingleshotS float64      `json:"previous_singleshot_s,omitempty"`
	Reason              string       `json:"reason"`
	Synchronized        bool         `json:"synchronized"`        // the sources agreed on an estimate
	KernelSynchronized  bool         `json:"kernel_synchronized"` // STA_UNSYNC cleared
	ForwardOnly         bool         `json:"forward_only"`
	BackwardRefused     bool         `json:"backward_refused"` // a step back was not made
	DryRun              bool         `json:"dry_run"`
	HighWater           *time.Time   `json:"high_water,omitempty"`
	HighWaterSaved      bool         `json:"high_water_saved"`
	HighWaterRestored   bool         `json:"high_water_restored"`
	ElapsedS            float64      `json:"elapsed_s"`
	ExitCode            int          `json:"exit_code"`
	Servers             []sourceJSON `json:"servers"`
}

func oneShotReport(rep boot.Report, forwardOnly bool) oneShotJSON {
	out := oneShotJSON{
		Action: string(rep.Action), OffsetS: rep.Offset.Seconds(), StepS: rep.Step.Seconds(), SlewS: rep.Slew.Seconds(),
		PLLPendingS: rep.PLLFuture.Seconds(), PreviousSingleshotS: rep.PreviousSingleshot.Seconds(),
		Reason: rep.Reason, Synchronized: rep.Estimate != nil, KernelSynchronized: rep.Synced,
		ForwardOnly: forwardOnly, BackwardRefused: rep.BackwardRefused, DryRun: rep.DryRun,
		HighWaterSaved: rep.HighWater.Saved, HighWaterRestored: rep.HighWater.Restored,
		ElapsedS: rep.Elapsed.Seconds(), ExitCode: rep.ExitCode, Servers: []sourceJSON{},
	}
	if out.Action == "" {
		out.Action = string(boot.ActionNone)
	}
	if rep.Estimate != nil {
		out.Sources = rep.Estimate.Sources
		out.ErrorS = secs(rep.Estimate.Error)
	}
	if !rep.HighWater.Mark.IsZero() {
		m := rep.HighWater.Mark.UTC()
		out.HighWater = &m
	}
	for _, d := range rep.Details {
		s := sourceJSON{Address: d.Source, Addr: d.Addr, Samples: d.Samples, Stratum: d.Stratum,
			RefID: ntpclient.RefIDString(d.Stratum, d.RefID), Leap: d.Leap.String(), Kiss: d.KissCode,
			Reach: d.Reach, Selected: d.Selected, Reason: d.Reason}
		if d.Samples > 0 {
			s.OffsetS, s.DelayS, s.DispersionS = secs(d.Offset), secs(d.Delay), secs(d.Dispersion)
			s.JitterS, s.RootDistance = secs(d.Jitter), secs(d.RootDistance)
		}
		out.Servers = append(out.Servers, s)
	}
	return out
}

func writeOneShotJSON(w io.Writer, rep boot.Report, forwardOnly bool) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(oneShotReport(rep, forwardOnly))
}

// writeOneShotText says in one line what was done.
func writeOneShotText(w io.Writer, cmd string, rep boot.Report) {
	if rep.DryRun {
		cmd += " (dry run, nothing changed)"
	}
	agree := ""
	if e := rep.Estimate; e != nil {
		agree = fmt.Sprintf(" [%d source(s) agree, error ±%.6f s]", e.Sources, e.Error.Seconds())
	}
	switch rep.Action {
	case boot.ActionStep:
		fmt.Fprintf(w, "%s: step %+.6f s: %s%s\n", cmd, rep.Step.Seconds(), rep.Reason, agree)
	case boot.ActionSlew:
		fmt.Fprintf(w, "%s: slew %+.6f s: %s%s\n", cmd, rep.Slew.Seconds(), rep.Reason, agree)
	default:
		if rep.Estimate != nil {
			fmt.Fprintf(w, "%s: offset %+.6f s, nothing done: %s%s\n", cmd, rep.Offset.Seconds(), rep.Reason, agree)
		}
	}
}
