package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/control"
	"slewd/discipline"
	"slewd/hostinfo"
	"slewd/logging"
	"slewd/ntpclient"
)

// Where slewd keeps its state by default.
const (
	defaultStateDir = "/var/lib/slewd"
	defaultRunDir   = "/run/slewd"
)

func init() {
	register(10, &cli.Command{
		Name:      "run",
		Usage:     "run the daemon: poll NTP servers (and PHCs) and correct the clock by slewing, stepping only forward",
		ArgsUsage: "[SERVER...]",
		Description: "Polls the servers, rejects falsetickers, and slews CLOCK_REALTIME (never\n" +
			"back) as fast as the kernel allows: tick ±10 % plus frequency, 54 s in\n" +
			"under 9 minutes. It pumps the kernel PLL second by second, so if it is\n" +
			"killed the clock's rate returns to normal by itself. Needs CAP_SYS_TIME,\n" +
			"except with --monitor-only, which only measures and reports (containers).\n" +
			"A clock behind by more than --step-forward-over is stepped forward (that\n" +
			"harms no program); a step back by another program is undone at once\n" +
			"(--undo-foreign-steps), and other programs' slews are taken back.\n" +
			"An offset beyond --max-offset is neither slewed nor stepped: use `slewd boot`.",
		Flags: append(clientFlags(),
			&cli.DurationFlag{Name: "max-offset", Value: 1000 * time.Second, EnvVars: []string{"SLEWD_MAX_OFFSET"},
				Usage: "do not slew an offset larger than this (it would take hours); log what to do instead"},
			&cli.Float64Flag{Name: "max-slew-rate", Value: adjtime.KernelMaxRatePPM, EnvVars: []string{"SLEWD_MAX_SLEW_RATE"},
				DefaultText: "the kernel's limit, 100500", Usage: "fastest slew in ppm; down to 500 for programs that dislike fast timers"},
			&cli.StringFlag{Name: "slew-method", Value: "pll", EnvVars: []string{"SLEWD_SLEW_METHOD"},
				Usage: "pll (pump the kernel PLL: crash-safe) or tick (bias the tick with a journal, as chrony does)"},
			&cli.DurationFlag{Name: "sync-threshold", Value: 10 * time.Millisecond, EnvVars: []string{"SLEWD_SYNC_THRESHOLD"},
				Usage: "tell the kernel and systemd the clock is synchronized only when the correction left plus the error bound is below this"},
			&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, EnvVars: []string{"SLEWD_STATE_DIR"},
				Usage: "where the drift file and the slew journal live"},
			&cli.StringFlag{Name: "run-dir", Value: defaultRunDir, EnvVars: []string{"SLEWD_RUN_DIR"},
				Usage: "where the status file for slewd wait lives"},
			&cli.BoolFlag{Name: "dry-run", Usage: "measure, plan and log, but never adjust the clock (nor tell systemd it is synchronized)"},
			&cli.StringFlag{Name: "user", EnvVars: []string{"SLEWD_USER"}, DefaultText: "stay root",
				Usage: "started as root, become this user (a name, or UID[:GID]) keeping only CAP_SYS_TIME; the state and run directories are given to it (the systemd unit does this itself with User=slewd)"},
			&cli.StringFlag{Name: "control-socket", EnvVars: []string{"SLEWD_CONTROL_SOCKET"}, DefaultText: "RUN-DIR/slewd.sock",
				Usage: "the Unix socket slewd sources, tracking and status ask (group slewd may read, root may change state); none for none"},
			&cli.StringFlag{Name: "metrics-listen", EnvVars: []string{"SLEWD_METRICS_LISTEN"}, DefaultText: "off",
				Usage: "serve Prometheus metrics at http://ADDR/metrics, e.g. 127.0.0.1:9476 (keep it off the internet: docs/operations.md)"},
			monitorOnlyFlag(),
			&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"SLEWD_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "undo-foreign-steps", Value: true, EnvVars: []string{"SLEWD_UNDO_FOREIGN_STEPS"},
				Usage: "when another program sets the clock back (a hypervisor agent, ntpdate), step it forward again at once, so no program sees time go back; false leaves the step and slews"},
			&cli.DurationFlag{Name: "step-forward-over", Value: time.Second, EnvVars: []string{"SLEWD_STEP_FORWARD_OVER"},
				Usage: "a clock behind true time by more than this (a resumed VM) is stepped forward once and the rest slewed; 0 never steps; behind by more than --max-offset, it is not corrected (run slewd boot)"},
			logFormatFlag(),
		),
		Action: runAction,
	})
}

func runAction(c *cli.Context) error {
	cfg, err := clientConfig(c)
	if err != nil {
		return err
	}
	method, err := adjtime.ParseMethod(c.String("slew-method"))
	if err != nil {
		return cli.Exit("--slew-method: "+err.Error(), 2)
	}
	if err := checkMaxSlewRate(c.Float64("max-slew-rate")); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	log, err := newLogger(c.App.ErrWriter, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return err
	}
	if spec := c.String("user"); spec != "" {
		to, err := lookupRunAs(spec)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		var dirs []string // a dry run writes nothing, so needs none
		if !c.Bool("dry-run") {
			dirs = []string{c.String("state-dir"), c.String("run-dir"), filepath.Dir(control.SystemdSyncedFile)}
		}
		if err := dropPrivileges(to, dirs, log); err != nil {
			return cli.Exit(err.Error(), 77) // EX_NOPERM
		}
	}
	var sys clock.System
	mode := monitorOnly(c)
	// A dry run and a monitor write nothing and take no lock; a daemon
	// that will correct the clock locks its state directory first (a
	// second one is refused before anything else is said).
	if !c.Bool("dry-run") && mode != monitorYes && (mode != monitorAuto || clock.CanAdjust(sys) == nil) {
		release, err := prepareDirs(c.String("state-dir"), c.String("run-dir"))
		if err != nil {
			return cli.Exit(err.Error(), 1)
		}
		defer release()
	}
	monitor, err := decideMonitoring(mode, c.Bool("dry-run"), sys, hostinfo.Detect(hostinfo.System()), log)
	if err != nil {
		return err
	}
	loop := clock.NewSystemLoop(256)
	client, err := ntpclient.NewClient(cfg, ntpclient.Env{Clock: sys, Loop: loop, Logger: log})
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	d := discipline.New(discipline.Config{
		MaxOffset: c.Duration("max-offset"), MaxSlewPPM: c.Float64("max-slew-rate"), Method: method,
		SyncThreshold: c.Duration("sync-threshold"), DryRun: c.Bool("dry-run"),
		UndoForeignSteps: c.Bool("undo-foreign-steps"), StepForwardOver: c.Duration("step-forward-over"),
		MonitorOnly: monitor,
	}, discipline.Env{
		Clock: sys, Loop: loop, Client: client,
		State:      adjtime.DirStore{Dir: c.String("state-dir")},
		Run:        adjtime.DirStore{Dir: c.String("run-dir")},
		BootID:     bootID,
		MarkSynced: markSyncedUnlessDry(c.Bool("dry-run")),
		Notify: func(state string) {
			if err := sdNotify(state); err != nil {
				log.Debug("sd_notify failed", "err", err)
			}
		},
		Watchdog:  watchdogInterval(),
		Handlers:  []discipline.Handler{control.Handler, newReloader(c, client, log)},
		Attribute: attributeForeign,
		Log:       log,
	})
	logMachine(log)
	stopOps, err := startOps(c, d, loop.Post, sys, log) // run_ops.go: control socket, metrics
	if err != nil {
		return err
	}
	defer stopOps()
	defer watchReload(c.Context, loop)()
	if err := d.Run(c.Context); err != nil {
		if clock.ErrPermission(err) {
			return cli.Exit(err.Error(), 77) // EX_NOPERM
		}
		return cli.Exit(err.Error(), 1)
	}
	return nil
}

// newLogger is every command's logger, on w (stderr): --log-level,
// --log-format, and the journal's priority prefixes when w is the
// journal's stream.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, cli.Exit(fmt.Sprintf("--log-level %q: use debug, info, warn or error", level), 2)
	}
	f, _ := w.(*os.File)
	log, err := logging.New(w, logging.Options{Level: l, Format: format, Journal: logging.JournalStream(f)})
	if err != nil {
		return nil, cli.Exit("--log-format: "+err.Error(), 2)
	}
	return log, nil
}

// logFormatFlag is --log-format, for the daemons.
func logFormatFlag() cli.Flag {
	return &cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"SLEWD_LOG_FORMAT"},
		Usage: "text (key=value) or json (one object a line, for log shippers); on the journal each line carries its priority"}
}

// bootID identifies this boot (/proc/sys/kernel/random/boot_id), so a
// journal from before a reboot is not applied to a fresh kernel.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

func markTimesyncSynced() error {
	if err := os.MkdirAll(filepath.Dir(control.SystemdSyncedFile), 0o755); err != nil {
		return err
	}
	now := time.Now()
	f, err := os.OpenFile(control.SystemdSyncedFile, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	f.Close()
	return os.Chtimes(control.SystemdSyncedFile, now, now)
}

// checkMaxSlewRate: --max-slew-rate between 500 ppm (ntpd's slew, and what
// the kernel's own adjtime and PLL tails run at) and the kernel's limit.
func checkMaxSlewRate(ppm float64) error {
	if ppm < clock.SingleshotRate || ppm > adjtime.KernelMaxRatePPM {
		return fmt.Errorf("--max-slew-rate %g: give %d to %d ppm (%d is the kernel's limit: tick ±10 %% plus frequency ±500 ppm)",
			ppm, clock.SingleshotRate, adjtime.KernelMaxRatePPM, adjtime.KernelMaxRatePPM)
	}
	return nil
}

// attributeForeign names the likely culprit of a foreign clock change from
// what this machine shows (read-only: /proc, /sys, cron, units, audit).
func attributeForeign(obs hostinfo.Observation) hostinfo.Suspect {
	return hostinfo.Culprit(hostinfo.Gather(hostinfo.System()), obs)
}

// logMachine says at start what the machine is, and what steps its clock
// there (docs/guests.md).
func logMachine(log *slog.Logger) {
	v := hostinfo.Detect(hostinfo.System())
	var phcs []string
	for _, p := range hostinfo.PHCs(hostinfo.System()) {
		phcs = append(phcs, clock.PHCName(p.Device, p.ClockName))
	}
	log.Info("machine", "virtualization", v.Virtualization, "container", v.Container, "phcs", phcs, "advice", hostinfo.Advice(v))
}
