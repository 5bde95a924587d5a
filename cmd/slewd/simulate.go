package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/discipline/simulation"
	"slewd/plot"
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
			&cli.BoolFlag{Name: "undo-foreign-steps", Value: true, Usage: "the daemon's --undo-foreign-steps: step forward again at once when something else sets the clock back"},
			&cli.DurationFlag{Name: "step-forward-over", Value: time.Second, Usage: "the daemon's --step-forward-over: step a clock that is behind by more than this forward (0: never)"},
			&cli.DurationFlag{Name: "agent-period", Usage: "a time agent (as VirtualBox's) that steps the clock to its own time every this often (0: none)"},
			&cli.DurationFlag{Name: "agent-start", Usage: "virtual time the agent starts"},
			&cli.DurationFlag{Name: "agent-threshold", Value: 500 * time.Millisecond, Usage: "the agent steps when the clock is further than this from its time"},
			&cli.StringFlag{Name: "agent-offset", Value: "0s", Usage: "the agent's time minus true time (0s: it agrees with the NTP servers)"},
			&cli.DurationFlag{Name: "suspend-for", Usage: "suspend the machine for this long (RAW stops, the kernel adds the sleep at resume)"},
			&cli.DurationFlag{Name: "suspend-at", Value: 15 * time.Minute, Usage: "virtual time of the suspend"},
			&cli.StringFlag{Name: "suspend-error", Value: "0s", Usage: "how far off the kernel measures the sleep (an RTC: up to a second)"},
			&cli.DurationFlag{Name: "outage-for", Usage: "every server stops answering for this long (0: never)"},
			&cli.DurationFlag{Name: "outage-at", Value: 15 * time.Minute, Usage: "virtual time the --outage-for outage starts"},
			&cli.StringFlag{Name: "kiss", Usage: "the first server answers with this kiss-of-death code: RATE, DENY or RSTR"},
			&cli.DurationFlag{Name: "kiss-at", Usage: "virtual time the --kiss starts"},
			&cli.DurationFlag{Name: "kiss-for", Usage: "how long the --kiss lasts (0: to the end)"},
			&cli.BoolFlag{Name: "server-names", Usage: "give the servers to the daemon by DNS name (ntp1.example, ...) instead of by address"},
			&cli.DurationFlag{Name: "dns-fail-for", Usage: "the servers' names fail to resolve for this long (implies --server-names; 0: never)"},
			&cli.DurationFlag{Name: "dns-fail-at", Usage: "virtual time the --dns-fail-for failure starts"},
			&cli.StringFlag{Name: "leap-second", Usage: "the servers announce a leap second (`insert|delete`) and take it at --leap-at (2026-12-31 23:59:60 UTC); errors are then against UTC"},
			&cli.DurationFlag{Name: "leap-at", Value: 15 * time.Minute, Usage: "virtual time of the --leap-second midnight"},
			&cli.IntFlag{Name: "leap-ignorers", Usage: "how many of the honest servers neither announce nor take the leap second"},
			&cli.DurationFlag{Name: "converge-within", Value: time.Millisecond, Usage: "the |error| that counts as converged in the figures"},
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
		RestartAfter:     c.Duration("restart-after"),
		UndoForeignSteps: c.Bool("undo-foreign-steps"), StepForwardOver: c.Duration("step-forward-over"),
		AgentPeriod: c.Duration("agent-period"), AgentStart: c.Duration("agent-start"), AgentThreshold: c.Duration("agent-threshold"),
		SuspendAt: c.Duration("suspend-at"), SuspendFor: c.Duration("suspend-for"),
		OutageAt: c.Duration("outage-at"), OutageFor: c.Duration("outage-for"), ConvergeWithin: c.Duration("converge-within"),
		Kiss: strings.ToUpper(c.String("kiss")), KissAt: c.Duration("kiss-at"), KissFor: c.Duration("kiss-for"),
		ServerNames: c.Bool("server-names"), DNSFailAt: c.Duration("dns-fail-at"), DNSFailFor: c.Duration("dns-fail-for"),
	}
	if cfg.AgentOffset, err = parseSignedDuration(c.String("agent-offset")); err != nil {
		return cli.Exit(fmt.Sprintf("--agent-offset %q: want a time like -2s or +500ms", c.String("agent-offset")), 2)
	}
	if cfg.SuspendError, err = parseSignedDuration(c.String("suspend-error")); err != nil {
		return cli.Exit(fmt.Sprintf("--suspend-error %q: want a time like -300ms or +1s", c.String("suspend-error")), 2)
	}
	if sb := c.String("step-by"); sb != "" {
		if cfg.StepBy, err = parseSignedDuration(sb); err != nil || cfg.StepBy == 0 {
			return cli.Exit(fmt.Sprintf("--step-by %q: want a step like -54s or +2s", sb), 2)
		}
		cfg.StepAt = c.Duration("step-at")
	}
	switch ls := c.String("leap-second"); ls {
	case "":
	case "insert", "delete":
		cfg.LeapAt, cfg.LeapDelete, cfg.LeapIgnorers = c.Duration("leap-at"), ls == "delete", c.Int("leap-ignorers")
	default:
		return cli.Exit(fmt.Sprintf("--leap-second %q: want insert or delete", ls), 2)
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
		err = plot.Write(f, res.Metrics, plot.RunInfo(cfg, res))
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
	case cfg.StepForwardOver < 0:
		return fmt.Errorf("--step-forward-over cannot be negative (0 never steps)")
	case cfg.AgentPeriod < 0 || cfg.AgentPeriod > 0 && cfg.AgentPeriod < time.Second:
		return fmt.Errorf("--agent-period must be at least 1s (0: no agent)")
	case cfg.AgentPeriod > 0 && (cfg.AgentThreshold <= 0 || cfg.AgentStart < 0 || cfg.AgentStart >= cfg.Duration):
		return fmt.Errorf("the agent needs a positive --agent-threshold and an --agent-start before the end of the run")
	case cfg.LeapAt != 0 && (cfg.LeapAt < 2*time.Second || cfg.LeapAt >= cfg.Duration):
		return fmt.Errorf("--leap-at %v is not within the run (--duration %v)", cfg.LeapAt, cfg.Duration)
	case cfg.LeapIgnorers < 0 || cfg.LeapIgnorers > cfg.Servers-cfg.Falsetickers:
		return fmt.Errorf("--leap-ignorers must be between 0 and the number of honest servers")
	case cfg.SuspendFor < 0:
		return fmt.Errorf("--suspend-for cannot be negative")
	case cfg.SuspendFor > 0 && (cfg.SuspendAt < 0 || cfg.SuspendAt >= cfg.Duration):
		return fmt.Errorf("--suspend-at %v is not within the run (--duration %v)", cfg.SuspendAt, cfg.Duration)
	case cfg.SuspendFor > 0 && cfg.SuspendError.Abs() >= cfg.SuspendFor:
		return fmt.Errorf("--suspend-error must be smaller than --suspend-for")
	case cfg.OutageFor < 0 || cfg.OutageAt < 0 || cfg.KissAt < 0 || cfg.KissFor < 0 || cfg.DNSFailAt < 0 || cfg.DNSFailFor < 0:
		return fmt.Errorf("--outage-*, --kiss-* and --dns-fail-* times cannot be negative")
	case cfg.Kiss != "" && cfg.Kiss != "RATE" && cfg.Kiss != "DENY" && cfg.Kiss != "RSTR":
		return fmt.Errorf("--kiss %q: want RATE, DENY or RSTR", cfg.Kiss)
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
	if cfg.AgentPeriod > 0 {
		fmt.Fprintf(w, "; from %v an agent steps the clock to its time (true time %+v) every %v when off by over %v",
			cfg.AgentStart, cfg.AgentOffset, cfg.AgentPeriod, cfg.AgentThreshold)
	}
	if cfg.SuspendFor > 0 {
		fmt.Fprintf(w, "; suspended %v at %v", cfg.SuspendFor, cfg.SuspendAt)
	}
	if cfg.OutageFor > 0 {
		fmt.Fprintf(w, "; every server silent for %v from %v", cfg.OutageFor, cfg.OutageAt)
	}
	if cfg.Kiss != "" {
		fmt.Fprintf(w, "; the first server kisses %s from %v", cfg.Kiss, cfg.KissAt)
		if cfg.KissFor > 0 {
			fmt.Fprintf(w, " for %v", cfg.KissFor)
		}
	}
	if cfg.DNSFailFor > 0 {
		fmt.Fprintf(w, "; DNS fails for %v from %v", cfg.DNSFailFor, cfg.DNSFailAt)
	}
	if cfg.LeapAt > 0 {
		fmt.Fprintf(w, "; a leap second (%s) at %v, errors against UTC", map[bool]string{false: "insert", true: "delete"}[cfg.LeapDelete], cfg.LeapAt)
	}
	fmt.Fprintf(w, ", seed %d\n", cfg.Seed)
	if r.ConvergedAfterS != nil {
		if behind := -cfg.ClockError; cfg.StepForwardOver > 0 && behind > cfg.StepForwardOver {
			fmt.Fprintf(w, "  converged:  within %v after %.1f s and stayed there (the clock was behind: stepped forward, the rest slewed)\n", within(cfg), *r.ConvergedAfterS)
		} else if cfg.ClockError.Abs() < time.Millisecond {
			fmt.Fprintf(w, "  converged:  within %v after %.1f s and stayed there\n", within(cfg), *r.ConvergedAfterS)
		} else {
			ideal := math.Abs(cfg.ClockError.Seconds()) / (cfg.MaxSlewPPM * 1e-6)
			fmt.Fprintf(w, "  converged:  within %v after %.1f s and stayed there (kernel limit at %.0f ppm: %.1f s)\n", within(cfg), *r.ConvergedAfterS, cfg.MaxSlewPPM, ideal)
		}
	} else {
		fmt.Fprintf(w, "  converged:  not within %v by the end\n", within(cfg))
	}
	if cfg.LeapAt > 0 {
		if r.LeapSettledS != nil {
			fmt.Fprintf(w, "  leap second: slewed, within 1 ms of UTC %.1f s after it and stayed there\n", *r.LeapSettledS)
		} else {
			fmt.Fprintf(w, "  leap second: not within 1 ms of UTC by the end\n")
		}
	}
	fmt.Fprintf(w, "  backwards:  %d backward steps by slewd", r.BackwardSteps)
	if r.BackwardSteps > 0 {
		fmt.Fprintf(w, " (largest %s)", fmtErr(r.MaxBackwardS))
	}
	if r.OutsideSteps > 0 || r.BackwardWindows > 0 {
		fmt.Fprintf(w, "; %d step(s) from outside, REALTIME below its highest reading %d time(s), for %s at the longest",
			r.OutsideSteps, r.BackwardWindows, fmtErr(r.BackwardWindowS))
		if r.BackwardWindowS == 0 && r.BackwardWindows > 0 {
			fmt.Fprint(w, " (in virtual time slewd reacts at once; on a real kernel it takes about 0.5 ms: docs/rig-foreign.md)")
		}
	}
	fmt.Fprintln(w)
	if f := r.ForeignSeen; f != nil {
		fmt.Fprintf(w, "  foreign changes seen by slewd: %d step(s), %d back, %d undone; %d suspend(s); %d slew(s)\n",
			f.Steps, f.Backward, f.Undone, f.Suspends, f.Slews)
	}
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

func within(cfg simulation.Config) time.Duration {
	if cfg.ConvergeWithin > 0 {
		return cfg.ConvergeWithin
	}
	return time.Millisecond
}

func fmtErr(s float64) string {
	return time.Duration(math.Round(s * 1e9)).String()
}
