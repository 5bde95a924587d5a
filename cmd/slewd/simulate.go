package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
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

// simConfig is one simulation.
type simConfig struct {
	ClockError   time.Duration
	DriftPPM     float64
	Wander       float64
	Servers      int
	Falsetickers int
	Delay        time.Duration
	Jitter       time.Duration
	Asymmetry    time.Duration
	Loss         float64
	Poll         time.Duration
	Duration     time.Duration
	MaxSlewPPM   float64
	Method       adjtime.Method
	Seed         uint64
	KillAt       []time.Duration
	RestartAfter time.Duration
	StepAt       time.Duration // a step of the clock from outside slewd (a hypervisor): when
	StepBy       time.Duration // and by how much (REALTIME moves by it)
	MaxOffset    time.Duration // 0: the daemon's default (1000 s)
	DryRun       bool
	TerminateAt  time.Duration // SIGTERM the daemon then (0: never)
	Log          io.Writer     // daemon log, nil for none
}

// simResult is what `slewd simulate --json` prints. Errors are local clock
// minus true time, in seconds.
type simResult struct {
	ConvergedAfterS            *float64 `json:"converged_after_s"`
	BackwardSteps              int      `json:"backward_steps"`
	MaxBackwardS               float64  `json:"max_backward_s"`
	RMSErrorAfterConvergenceS  *float64 `json:"rms_error_after_convergence_s"`
	MaxAbsErrorAfterConvergeS  *float64 `json:"max_abs_error_after_convergence_s"`
	RMSErrorAfter1hS           *float64 `json:"rms_error_after_1h_s"`
	MaxAbsErrorAfter1hS        *float64 `json:"max_abs_error_after_1h_s"`
	FinalErrorS                float64  `json:"final_error_s"`
	MaxRatePPM                 float64  `json:"max_rate_ppm"`
	InitialErrorS              float64  `json:"initial_error_s"`
	DurationS                  float64  `json:"duration_s"`
	Kills                      int      `json:"kills"`
	FinalTick                  int64    `json:"final_tick"`
	FinalFrequencyPPM          float64  `json:"final_frequency_ppm"`
	RTCWritesWhileOffOver100ms int      `json:"rtc_writes_while_off_over_100ms"`
	Seed                       uint64   `json:"seed"`
	Syscalls                   int      `json:"adjtimex_calls"`
	Queries                    int64    `json:"ntp_queries"` // requests that reached the servers

	metrics *simMetrics
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
	cfg := simConfig{
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
	if err := cfg.validate(); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if c.Bool("verbose") {
		cfg.Log = c.App.ErrWriter
	}
	res, err := simulate(c.Context, cfg)
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
		err = writePlot(f, res.metrics, title, marks)
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

func (cfg simConfig) validate() error {
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

// falsetickerOffset is how wrong the i-th falseticker is: far outside any
// honest error, and different for each so that they do not agree.
func falsetickerOffset(i int) time.Duration {
	d := time.Duration(i+1) * 3 * time.Second / 2
	if i%2 == 1 {
		d = -d
	}
	return d
}

// simulate runs the daemon on a simulated machine and network.
func simulate(ctx context.Context, cfg simConfig) (*simResult, error) {
	w := simclock.New(simclock.Config{Seed: cfg.Seed, Kernel: simclock.KernelConfig{
		ClockError: cfg.ClockError,
		Oscillator: simclock.Oscillator{DriftPPM: cfg.DriftPPM, Wander: cfg.Wander},
	}})
	m := newSimMetrics(1e-3)
	w.Observe(m)
	rec := simclock.NewRecorder(w)
	network := ntptest.NewNetwork(w)
	var servers []string
	for i := 0; i < cfg.Servers; i++ {
		addr := "192.0.2." + strconv.Itoa(i+1) + ":123"
		sc := ntptest.ServerConfig{Stratum: 1, Delay: cfg.Delay, Jitter: cfg.Jitter, Asymmetry: cfg.Asymmetry, Loss: cfg.Loss}
		if i >= cfg.Servers-cfg.Falsetickers {
			sc.Offset = falsetickerOffset(i - (cfg.Servers - cfg.Falsetickers))
		}
		network.AddServer(addr, sc)
		servers = append(servers, addr)
	}
	state, run := &adjtime.MemStore{}, &adjtime.MemStore{}
	logOut := cfg.Log
	if logOut == nil {
		logOut = io.Discard
	}
	var spawn func()
	var current *simclock.Process
	var procs []*simclock.Process
	spawn = func() {
		defer func() { procs = append(procs, current) }()
		current = w.Spawn("slewd", true, func(ctx context.Context, p *simclock.Process) error {
			log := slog.New(virtualTimeHandler{slog.NewTextHandler(logOut, &slog.HandlerOptions{
				Level: slog.LevelInfo, ReplaceAttr: dropTime}), w})
			client, err := ntpclient.NewClient(ntpclient.Config{Servers: servers, FixedPoll: cfg.Poll}, ntpclient.Env{
				Clock: p, Loop: p, Dialer: network.Dialer(p), Resolver: network.Resolver(),
				Logger: log, Rand: w.Rand("client"), SimulatedTime: true,
			})
			if err != nil {
				return err
			}
			d := newDaemon(daemonConfig{MaxSlewPPM: cfg.MaxSlewPPM, Method: cfg.Method, MaxOffset: cfg.MaxOffset, DryRun: cfg.DryRun}, daemonEnv{
				Clock: p, Loop: p, Client: client, State: state, Run: run,
				BootID: func() string { return strconv.Itoa(w.BootID()) }, Log: log,
			})
			return d.run(ctx)
		})
	}
	spawn()
	for _, k := range cfg.KillAt {
		w.At(k, func() {
			if !current.Alive() {
				return // already killed, its restart pending (kill points too close)
			}
			current.Kill()
			if cfg.RestartAfter > 0 {
				w.After(cfg.RestartAfter, spawn)
			}
		})
	}
	if cfg.TerminateAt > 0 {
		w.At(cfg.TerminateAt, func() { current.Terminate() })
	}
	if cfg.StepBy != 0 {
		w.At(cfg.StepAt, func() {
			sec, ns := int64(cfg.StepBy/time.Second), int64(cfg.StepBy%time.Second)
			if ns < 0 {
				sec, ns = sec-1, ns+1e9
			}
			w.Adjtimex(&clock.Timex{Modes: clock.AdjSetOffset | clock.AdjNano, Time: clock.Timeval{Sec: sec, Usec: ns}})
		})
	}
	// In slices of virtual time, so that an interrupt (Ctrl-C) is heard.
	for t := time.Duration(0); t < cfg.Duration; {
		t = min(t+time.Hour, cfg.Duration)
		w.Run(t)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	if done, err := current.Exited(); done && err != nil {
		return nil, fmt.Errorf("the simulated daemon failed: %w", err)
	}

	res := &simResult{metrics: m, Seed: cfg.Seed, Kills: len(cfg.KillAt), DurationS: cfg.Duration.Seconds(),
		InitialErrorS: cfg.ClockError.Seconds(), FinalErrorS: w.ClockErrorSeconds(), MaxRatePPM: m.maxRatePPM}
	// REALTIME going back, not counting the step injected from outside.
	backJumps := 0
	for _, j := range rec.Jumps {
		if j.Delta >= 0 {
			continue
		}
		backJumps++
		if cfg.StepBy != 0 && math.Abs(j.At-cfg.StepAt.Seconds()) < 1e-9 && math.Abs(j.Delta-cfg.StepBy.Seconds()) < 1e-9 {
			continue
		}
		res.BackwardSteps++
		res.MaxBackwardS = math.Max(res.MaxBackwardS, -j.Delta)
	}
	if n, _ := rec.Backward(); n > backJumps {
		// A segment where REALTIME ran backwards: impossible in the kernel model.
		return nil, fmt.Errorf("REALTIME ran backwards between jumps (%d times): a simulator bug", n-backJumps)
	}
	for _, p := range procs {
		res.Syscalls += p.Syscalls()
	}
	for _, a := range servers {
		res.Queries += network.Server(a).Counters().Received
	}
	if t := m.convergedAfter(); t >= 0 {
		res.ConvergedAfterS = ptr(t)
		if rms, mx, ok := m.since(t); ok {
			res.RMSErrorAfterConvergenceS, res.MaxAbsErrorAfterConvergeS = ptr(rms), ptr(mx)
		}
	}
	if rms, mx, ok := m.since(3600); ok {
		res.RMSErrorAfter1hS, res.MaxAbsErrorAfter1hS = ptr(rms), ptr(mx)
	}
	for _, wr := range rec.RTCWrites {
		if math.Abs(wr.Error) > 0.1 {
			res.RTCWritesWhileOffOver100ms++
		}
	}
	var tx clock.Timex
	if _, err := w.Adjtimex(&tx); err == nil {
		res.FinalTick, res.FinalFrequencyPPM = tx.Tick, clock.FreqToPPM(tx.Freq)
	}
	return res, nil
}

func ptr(f float64) *float64 { return &f }

func printSimSummary(w io.Writer, cfg simConfig, r *simResult) {
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

// virtualTimeHandler stamps log records with the simulation's true time.
type virtualTimeHandler struct {
	slog.Handler
	w *simclock.World
}

func (h virtualTimeHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(slog.String("vt", fmt.Sprintf("%.3fs", h.w.Now().Seconds())))
	return h.Handler.Handle(ctx, r)
}

func (h virtualTimeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return virtualTimeHandler{h.Handler.WithAttrs(as), h.w}
}

func (h virtualTimeHandler) WithGroup(name string) slog.Handler {
	return virtualTimeHandler{h.Handler.WithGroup(name), h.w}
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}
