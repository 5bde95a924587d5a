package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/discipline/simulation"
)

func init() {
	register(20, &cli.Command{
		Name:  "simulate",
		Usage: "run the daemon on a simulated kernel clock and network, in virtual time",
		Description: "Runs the same code as `slewd run` against a simulated Linux kernel clock\n" +
			"(kernel/time/ntp.c semantics) and simulated NTP servers, in virtual time:\n" +
			"no root, no network, a day in seconds. Errors are local clock minus true\n" +
			"time: --clock-error=+54s means the clock starts 54 s ahead.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "clock-error", Value: "+54s", Usage: "initial local clock minus true time (+54s: 54 s ahead)"},
			&cli.Float64Flag{Name: "drift", Value: 0, Usage: "oscillator frequency error, ppm (positive runs fast)"},
			&cli.Float64Flag{Name: "wander", Value: 0, Usage: "random-walk step of the oscillator frequency per √s (e.g. 1e-9)"},
			&cli.IntFlag{Name: "servers", Value: 1, Usage: "number of NTP servers"},
			&cli.IntFlag{Name: "falsetickers", Value: 0, Usage: "how many of the servers serve a wrong time"},
			&cli.DurationFlag{Name: "delay", Value: 200 * time.Microsecond, Usage: "fixed one-way network delay"},
			&cli.DurationFlag{Name: "jitter", Value: 20 * time.Microsecond, Usage: "mean of an exponential extra delay, per packet and direction"},
			&cli.DurationFlag{Name: "asymmetry", Value: 0, Usage: "fixed extra delay on the way back"},
			&cli.Float64Flag{Name: "loss", Value: 0, Usage: "probability that a packet is lost, each way"},
			&cli.DurationFlag{Name: "poll", Usage: "fixed poll interval (e.g. 64s); adaptive when absent"},
			&cli.DurationFlag{Name: "duration", Value: 30 * time.Minute, Usage: "virtual time to simulate"},
			&cli.Float64Flag{Name: "max-slew-rate", Value: adjtime.KernelMaxRatePPM, Usage: "fastest slew, ppm"},
			&cli.StringFlag{Name: "slew-method", Value: "pll", Usage: "pll (pump the kernel PLL) or tick (bias the tick, with a journal)"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed: the same seed gives the same run"},
			&cli.StringSliceFlag{Name: "kill-at", Usage: "kill -9 the daemon at this virtual time (repeatable); it restarts --restart-after later, kernel state kept"},
			&cli.DurationFlag{Name: "restart-after", Value: 3 * time.Second, Usage: "how long after a kill the daemon restarts (0: never)"},
			&cli.StringFlag{Name: "step-by", Usage: "step the clock from outside slewd (as a hypervisor does) by this much, e.g. -54s"},
			&cli.DurationFlag{Name: "step-at", Value: 15 * time.Minute, Usage: "virtual time of the --step-by step"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
			&cli.StringFlag{Name: "plot", Usage: "write an SVG of the error and the slew rate to `FILE`"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print the daemon's log, stamped with virtual time"},
		},
		Action: simulateAction,
	})
}

func simulateAction(c *cli.Context) error {
	ce, err := parseSignedDuration(c.String("clock-error"))
	if err != nil {
		return cli.Exit(fmt.Sprintf("--clock-error: %v (write it like +54s, -13s or 250ms)", err), 2)
	}
	method, err := adjtime.ParseMethod(c.String("slew-method"))
	if err != nil {
		return cli.Exit("--slew-method: "+err.Error(), 2)
	}
	cfg := simulation.Config{
		ClockError: ce, DriftPPM: c.Float64("drift"), Wander: c.Float64("wander"),
		Servers: c.Int("servers"), Falsetickers: c.Int("falsetickers"),
		Delay: c.Duration("delay"), Jitter: c.Duration("jitter"), Asymmetry: c.Duration("asymmetry"),
		Loss: c.Float64("loss"), Poll: c.Duration("poll"), Duration: c.Duration("duration"),
		MaxSlewPPM: c.Float64("max-slew-rate"), Method: method, Seed: c.Uint64("seed"),
		RestartAfter: c.Duration("restart-after"),
	}
	if sb := c.String("step-by"); sb != "" {
		if cfg.StepBy, err = parseSignedDuration(sb); err != nil || cfg.StepBy == 0 {
			return cli.Exit(fmt.Sprintf("--step-by %q: want a step like -54s or +2s", sb), 2)
		}
		cfg.StepAt = c.Duration("step-at")
	}
	for _, s := range c.StringSlice("kill-at") {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return cli.Exit(fmt.Sprintf("--kill-at %q: want a positive virtual time like 200s or 3m20s", s), 2)
		}
		cfg.KillAt = append(cfg.KillAt, d)
	}
	if err := validateSim(cfg); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if c.Bool("verbose") {
		cfg.Log = c.App.ErrWriter
	}
	res, err := simulation.Run(c.Context, cfg)
	if errors.Is(err, context.Canceled) {
		return cli.Exit("slewd simulate: interrupted", 1)
	}
	if err != nil {
		return err
	}
	if p := c.String("plot"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return cli.Exit(fmt.Sprintf("--plot: %v", err), 1)
		}
		var marks []plotMark
		for _, k := range cfg.KillAt {
			marks = append(marks, plotMark{k.Seconds(), "kill -9"})
		}
		title := fmt.Sprintf("slewd simulate: clock %+v, drift %g ppm, %d server(s), seed %d", cfg.ClockError, cfg.DriftPPM, cfg.Servers, cfg.Seed)
		err = writePlot(f, res.Metrics, title, marks)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return cli.Exit(fmt.Sprintf("--plot: %v", err), 1)
		}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printSimSummary(c.App.Writer, cfg, res)
	return nil
}

// validateSim refuses, in terms of the flags, what cannot be simulated.
func validateSim(cfg simulation.Config) error {
	switch {
	case cfg.Servers < 1:
		return fmt.Errorf("--servers must be at least 1")
	case cfg.Falsetickers < 0 || cfg.Falsetickers >= cfg.Servers:
		return fmt.Errorf("--falsetickers must be between 0 and --servers - 1")
	case cfg.Loss < 0 || cfg.Loss >= 1:
		return fmt.Errorf("--loss is a probability: 0 <= loss < 1")
	case cfg.Duration <= 0:
		return fmt.Errorf("--duration must be positive")
	case cfg.Poll != 0 && cfg.Poll < 16*time.Second:
		return fmt.Errorf("--poll must be at least 16s (RFC 4330: never poll faster)")
	case math.Abs(cfg.DriftPPM) > 100000:
		return fmt.Errorf("--drift beyond ±100000 ppm is more than the kernel can compensate")
	case cfg.Delay < 0 || cfg.Jitter < 0 || cfg.Asymmetry < 0:
		return fmt.Errorf("--delay, --jitter and --asymmetry cannot be negative")
	case cfg.Wander < 0:
		return fmt.Errorf("--wander cannot be negative (it is the size of the frequency's random steps)")
	case cfg.StepBy != 0 && cfg.StepAt >= cfg.Duration:
		return fmt.Errorf("--step-at %v is not before the end of the run (--duration %v)", cfg.StepAt, cfg.Duration)
	}
	for _, k := range cfg.KillAt {
		if k >= cfg.Duration {
			return fmt.Errorf("--kill-at %v is not before the end of the run (--duration %v)", k, cfg.Duration)
		}
	}
	if err := checkMaxSlewRate(cfg.MaxSlewPPM); err != nil {
		return err
	}
	return nil
}

// parseSignedDuration parses "+54s", "-13s", "250ms".
func parseSignedDuration(s string) (time.Duration, error) {
	if len(s) > 0 && s[0] == '+' {
		s = s[1:]
	}
	return time.ParseDuration(s)
}

func printSimSummary(w io.Writer, cfg simulation.Config, r *simulation.Result) {
	fmt.Fprintf(w, "simulated %v: clock started %+v off, oscillator %+g ppm (wander %g/√s), %d server(s)",
		cfg.Duration, cfg.ClockError, cfg.DriftPPM, cfg.Wander, cfg.Servers)
	if cfg.Falsetickers > 0 {
		fmt.Fprintf(w, " of which %d false", cfg.Falsetickers)
	}
	if cfg.StepBy != 0 {
		fmt.Fprintf(w, "; stepped %+v from outside at %v", cfg.StepBy, cfg.StepAt)
	}
	fmt.Fprintf(w, ", seed %d\n", cfg.Seed)
	if r.ConvergedAfterS != nil {
		ideal := math.Abs(cfg.ClockError.Seconds()) / (cfg.MaxSlewPPM * 1e-6)
		fmt.Fprintf(w, "  converged:  within 1 ms after %.1f s and stayed there (kernel limit at %.0f ppm: %.1f s)\n", *r.ConvergedAfterS, cfg.MaxSlewPPM, ideal)
	} else {
		fmt.Fprintf(w, "  converged:  not within 1 ms by the end\n")
	}
	fmt.Fprintf(w, "  backwards:  %d backward steps by slewd", r.BackwardSteps)
	if r.BackwardSteps > 0 {
		fmt.Fprintf(w, " (largest %s)", fmtErr(r.MaxBackwardS))
	}
	fmt.Fprintln(w)
	if r.RMSErrorAfterConvergenceS != nil {
		fmt.Fprintf(w, "  after convergence: RMS %s, max %s\n", fmtErr(*r.RMSErrorAfterConvergenceS), fmtErr(*r.MaxAbsErrorAfterConvergeS))
	}
	if r.RMSErrorAfter1hS != nil {
		fmt.Fprintf(w, "  after 1 h:  RMS %s, max %s\n", fmtErr(*r.RMSErrorAfter1hS), fmtErr(*r.MaxAbsErrorAfter1hS))
	}
	fmt.Fprintf(w, "  fastest slew: %.0f ppm; final error %s; kernel left at tick %d, frequency %+.3f ppm\n",
		r.MaxRatePPM, fmtErr(r.FinalErrorS), r.FinalTick, r.FinalFrequencyPPM)
	if r.Kills > 0 {
		fmt.Fprintf(w, "  killed -9 %d time(s), restarted after %v\n", r.Kills, cfg.RestartAfter)
	}
}

func fmtErr(s float64) string {
	return time.Duration(math.Round(s * 1e9)).String()
}
