// Package matrix is issue 15's scenario matrix: every initial clock error
// × network × fault, each run in simulation (package simulation, the
// daemon's own loop on the simulated kernel) and checked against what
// slewd promises: REALTIME never moved backwards by slewd, a foreign
// backward step undone at once, convergence within the bound for the
// error (or, past --max-offset, the documented refusal), no panic.
// `make scenarios` runs it through .ci/scenarios.go and writes
// docs/scenarios.md; CI runs one seed.
package matrix

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"time"

	"slewd/adjtime"
	"slewd/discipline/simulation"
	"slewd/ntpclient"
)

// The daemon's defaults the matrix runs with (`slewd run`'s flags).
const (
	MaxOffset       = 1000 * time.Second // --max-offset
	StepForwardOver = time.Second        // --step-forward-over
	Servers         = 4
	Duration        = 2 * time.Hour
	// DriftPPM is the oscillator's error, unknown to slewd (no drift
	// file): the servo learns it while it corrects the clock.
	DriftPPM = 15.0
	Wander   = 1e-9
	// RestartAfter: a killed daemon is restarted this much later, as
	// systemd's Restart= with RestartSec=3 does.
	RestartAfter = 3 * time.Second
	// FaultAt is when the outage, the foreign step and the suspend
	// happen: in the middle of the slew of a 54 s error (537 s at the
	// kernel's limit), after the correction of the smaller ones.
	FaultAt = 5 * time.Minute
	// rate is the kernel's fastest slew, s/s.
	rate = adjtime.KernelMaxRatePPM * 1e-6
	// WindowBound is the foreign-steps issue's bound on how long REALTIME
	// may stay below what it showed after a foreign backward step: the
	// simulator undoes at the same virtual instant, so ~0 here.
	WindowBound = time.Millisecond
	// dnsRetryMax is ntpclient's longest DNS retry interval (its retries
	// double from 2 s): a name that resolves again is tried again at most
	// this much, or the length of the failure, later.
	dnsRetryMax = 10 * time.Minute
)

// Errors are the initial clock errors (local clock minus true time).
var Errors = []time.Duration{-3600 * time.Second, -54 * time.Second, -13 * time.Second, -300 * time.Millisecond,
	300 * time.Millisecond, 13 * time.Second, 54 * time.Second, 3600 * time.Second}

// Network is the link to every server.
type Network struct {
	Name                     string
	Delay, Jitter, Asymmetry time.Duration // Delay and Jitter (exponential mean) each way
	Loss                     float64       // each way
	// Within is the |error| that counts as converged on this link: 1 ms,
	// or 10 ms on the internet path, whose exponential 5 ms each way
	// makes single samples ±3.5 ms off (slewd's error there wanders by a
	// few ms while it learns the oscillator: the table gives it).
	Within time.Duration
	// Allowance is the time convergence may take beyond the slew at the
	// kernel's limit: the first burst, the filter, the servo learning the
	// oscillator's 15 ppm, on this link.
	Allowance time.Duration
}

// Networks are the matrix's links.
var Networks = []Network{
	{Name: "LAN", Delay: 200 * time.Microsecond, Jitter: 20 * time.Microsecond, Within: time.Millisecond, Allowance: 60 * time.Second},
	{Name: "internet", Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Within: 10 * time.Millisecond, Allowance: 300 * time.Second},
	{Name: "30 % loss", Delay: 200 * time.Microsecond, Jitter: 20 * time.Microsecond, Loss: 0.3, Within: time.Millisecond, Allowance: 180 * time.Second},
	{Name: "1 ms asymmetry", Delay: 200 * time.Microsecond, Jitter: 20 * time.Microsecond, Asymmetry: time.Millisecond, Within: time.Millisecond, Allowance: 60 * time.Second},
}

// Fault is what goes wrong during a run.
type Fault struct {
	Name string
	// Apply sets the fault in a run's configuration.
	Apply func(cfg *simulation.Config)
	// Bound is by when a run with the fault must have converged, given
	// the bound without it (base) and the network's allowance; nil: base.
	Bound func(cfg simulation.Config, base, allowance time.Duration) time.Duration
	// Pending, if set, says why the fault cannot be simulated yet: its
	// column is listed as pending, not run.
	Pending string
}

// Faults are the matrix's faults.
var Faults = []Fault{
	{Name: "none", Apply: func(*simulation.Config) {}},
	{Name: "one falseticker of four", Apply: func(c *simulation.Config) { c.Falsetickers = 1 }},
	{Name: "server outage 1 h", Apply: func(c *simulation.Config) { c.OutageAt, c.OutageFor = FaultAt, time.Hour },
		// The slew goes on without answers, but the frequency learnt
		// before the outage holds the clock within the bound only for so
		// long: it may have to converge again once the servers answer,
		// and a silent server is polled at --maxpoll (RFC 4330 §10), so
		// the first answer may come that much after the outage.
		Bound: func(c simulation.Config, base, allowance time.Duration) time.Duration {
			return max(base, c.OutageAt+c.OutageFor+ntpclient.DefaultMaxPoll+allowance)
		}},
	{Name: "KoD RATE", Apply: func(c *simulation.Config) { c.Kiss = "RATE" }},
	{Name: "KoD DENY", Apply: func(c *simulation.Config) { c.Kiss = "DENY" }},
	{Name: "foreign step −54 s", Apply: func(c *simulation.Config) { c.StepAt, c.StepBy = FaultAt, -54*time.Second }},
	{Name: "periodic agent", Apply: func(c *simulation.Config) {
		// VirtualBox's: every 10 s, to the host's (true) time when off by
		// more than its threshold.
		c.AgentStart, c.AgentPeriod, c.AgentThreshold = time.Minute, 10*time.Second, 500*time.Millisecond
	}},
	{Name: "kill -9 mid-slew", Apply: func(c *simulation.Config) {
		// Half way through the slew; a clock that is stepped or left
		// alone has none, so after its first samples.
		at := 30 * time.Second
		if c.ClockError.Abs() <= c.MaxOffset && -c.ClockError <= c.StepForwardOver {
			at = max(time.Second, slewTime(c.ClockError)/2)
		}
		c.KillAt = []time.Duration{at}
	}, Bound: func(c simulation.Config, base, _ time.Duration) time.Duration {
		// The restarted daemon measures afresh (the drift file is saved
		// hourly, the servo's state is lost).
		return c.KillAt[0] + c.RestartAfter + base
	}},
	{Name: "DNS failure 10 min", Apply: func(c *simulation.Config) { c.DNSFailFor = 10 * time.Minute },
		Bound: func(c simulation.Config, base, _ time.Duration) time.Duration {
			return base + c.DNSFailAt + c.DNSFailFor + min(c.DNSFailFor, dnsRetryMax)
		}},
	{Name: "leap second", Apply: func(c *simulation.Config) {
		// An insertion at the end of the first hour, announced by every
		// server from the start; errors are against UTC.
		c.LeapAt = time.Hour
	}, Bound: func(c simulation.Config, base, allowance time.Duration) time.Duration {
		// slewd slews the second: about 10 s at the kernel's limit.
		return max(base, c.LeapAt+slewTime(time.Second)+allowance)
	}},
	{Name: "suspend 1 h", Apply: func(c *simulation.Config) {
		// The kernel measures the sleep with the RTC: half a second long.
		c.SuspendAt, c.SuspendFor, c.SuspendError = FaultAt, time.Hour, 500*time.Millisecond
	}, Bound: func(c simulation.Config, base, allowance time.Duration) time.Duration {
		// RAW stands still while asleep: whatever was left of the slew,
		// and then the RTC's error, are slewed after the resume.
		return max(base, c.SuspendAt) + c.SuspendFor + slewTime(c.SuspendError) + allowance
	}},
}

// slewTime is how long slewing e takes at the kernel's limit, with 5 %
// for the ramp and the servo's approach.
func slewTime(e time.Duration) time.Duration {
	return time.Duration(math.Abs(e.Seconds()) / rate * 1.05 * 1e9)
}

// Scenario is one run of the matrix.
type Scenario struct {
	Error   time.Duration
	Network Network
	Fault   Fault
	Seed    uint64
}

// All is every scenario, for seeds 1…seeds, pending faults left out.
func All(seeds int) []Scenario {
	var all []Scenario
	for _, f := range Faults {
		if f.Pending != "" {
			continue
		}
		for _, n := range Networks {
			for _, e := range Errors {
				for s := 1; s <= seeds; s++ {
					all = append(all, Scenario{Error: e, Network: n, Fault: f, Seed: uint64(s)})
				}
			}
		}
	}
	return all
}

// Config is the simulation of s: `slewd run`'s defaults on a machine with
// four servers, and the fault.
func (s Scenario) Config() simulation.Config {
	n := s.Network
	cfg := simulation.Config{
		ClockError: s.Error, DriftPPM: DriftPPM, Wander: Wander, Servers: Servers,
		Delay: n.Delay, Jitter: n.Jitter, Asymmetry: n.Asymmetry, Loss: n.Loss,
		Duration: Duration, MaxSlewPPM: adjtime.KernelMaxRatePPM, Method: adjtime.MethodPLL,
		Seed: s.Seed, RestartAfter: RestartAfter, MaxOffset: MaxOffset,
		UndoForeignSteps: true, StepForwardOver: StepForwardOver, ConvergeWithin: n.Within,
	}
	s.Fault.Apply(&cfg)
	return cfg
}

// Expect is what the run must show.
type Expect int

const (
	Slew        Expect = iota // converge within the slew's time
	StepForward               // behind by more than --step-forward-over: stepped, so seconds
	Refuse                    // beyond --max-offset: not corrected, ERROR logged with the fix
)

func (e Expect) String() string {
	return [...]string{"slewed", "stepped forward", "refused"}[e]
}

// Expected is what s must do, and by when it must have converged (for
// Slew and StepForward).
func (s Scenario) Expected() (Expect, time.Duration) {
	cfg := s.Config()
	var slew time.Duration
	exp := Slew
	switch {
	case s.Error.Abs() > MaxOffset:
		exp = Refuse
	case -s.Error > StepForwardOver:
		exp = StepForward
	default:
		slew = slewTime(s.Error)
	}
	bound := slew + s.Network.Allowance
	if s.Fault.Bound != nil {
		bound = s.Fault.Bound(cfg, bound, s.Network.Allowance)
	}
	if exp == Refuse && s.Fault.Name == "periodic agent" {
		// The agent sets the clock to true time itself (a 3600 s step back
		// is beyond --max-offset: slewd leaves it); slewd then converges.
		bound += cfg.AgentStart
	}
	return exp, bound
}

// Outcome is one run's figures and verdict.
type Outcome struct {
	Scenario
	Result   *simulation.Result
	Expect   Expect
	Bound    time.Duration
	Refused  bool     // the ERROR line with the fix was logged
	Failures []string // empty: passed
	Wall     time.Duration
}

// Run runs s and checks it.
func (s Scenario) Run(ctx context.Context) (o Outcome) {
	o.Scenario = s
	o.Expect, o.Bound = s.Expected()
	cfg := s.Config()
	var log bytes.Buffer
	cfg.Log = &log
	start := time.Now()
	defer func() {
		o.Wall = time.Since(start)
		if p := recover(); p != nil {
			o.Failures = append(o.Failures, fmt.Sprintf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	r, err := simulation.Run(ctx, cfg)
	if err != nil {
		o.Failures = append(o.Failures, "run failed: "+err.Error())
		return o
	}
	o.Result = r
	out := log.String()
	o.Refused = strings.Contains(out, `level=ERROR msg="the clock is too far off to slew: not correcting it"`) &&
		strings.Contains(out, "fix=")
	o.Failures = append(o.Failures, o.check(cfg, out)...)
	return o
}

// check is the verdict on a finished run.
func (o *Outcome) check(cfg simulation.Config, log string) []string {
	r := o.Result
	var fail []string
	bad := func(format string, a ...any) { fail = append(fail, fmt.Sprintf(format, a...)) }
	if r.BackwardSteps != 0 {
		bad("slewd moved REALTIME back %d time(s), the largest %.6f s", r.BackwardSteps, r.MaxBackwardS)
	}
	// (A window of under a nanosecond is float rounding of true time
	// plus error in the metrics, not the clock.)
	if r.OutsideSteps == 0 && r.BackwardWindowS > 1e-9 {
		bad("REALTIME went below its high for %.9f s with no step from outside", r.BackwardWindowS)
	}
	// A step back larger than --max-offset is not undone, by design: the
	// agent's 3600 s step of a clock that far ahead.
	bigStepBack := cfg.AgentPeriod > 0 && cfg.ClockError > cfg.MaxOffset
	if !bigStepBack && r.BackwardWindowS > WindowBound.Seconds() {
		bad("REALTIME stayed below its high for %.6f s after a foreign step (bound %v)", r.BackwardWindowS, WindowBound)
	}
	if strings.Contains(log, "panic") {
		bad("the daemon's log mentions a panic")
	}
	converged := r.ConvergedAfterS != nil
	switch {
	case o.Expect == Refuse && cfg.AgentPeriod == 0:
		if !o.Refused {
			bad("no ERROR line with the fix for a clock %v off (beyond --max-offset %v)", cfg.ClockError, cfg.MaxOffset)
		}
		// Not corrected: the clock ran at the oscillator's own rate (a
		// slew would be thousands of ppm).
		if r.MaxRatePPM > math.Abs(cfg.DriftPPM)+50 {
			bad("a clock beyond --max-offset was slewed (fastest rate %.0f ppm)", r.MaxRatePPM)
		}
		if math.Abs(r.FinalErrorS-cfg.ClockError.Seconds()) > 2 {
			bad("a clock beyond --max-offset was corrected: %+.3f s at the start, %+.3f s at the end", cfg.ClockError.Seconds(), r.FinalErrorS)
		}
	case o.Expect == Refuse: // the agent corrects it
		if !o.Refused {
			bad("no ERROR line with the fix before the agent set the clock")
		}
		fallthrough
	default:
		if !converged {
			bad("never converged within %v (final error %+.6f s)", o.Network.Within, r.FinalErrorS)
		} else if *r.ConvergedAfterS > o.Bound.Seconds() {
			bad("converged after %.1f s, beyond the bound %.1f s", *r.ConvergedAfterS, o.Bound.Seconds())
		}
	}
	return fail
}

// Command is the `slewd simulate` command line that reproduces s.
func (s Scenario) Command() string { return Command(s.Config()) }

// Command is the `slewd simulate` command line for cfg (the fields the
// matrix sets).
func Command(c simulation.Config) string {
	var b strings.Builder
	f := func(format string, a ...any) { fmt.Fprintf(&b, " "+format, a...) }
	b.WriteString("slewd simulate")
	f("--clock-error=%s", signed(c.ClockError))
	f("--drift=%g --wander=%g --servers=%d", c.DriftPPM, c.Wander, c.Servers)
	if c.Falsetickers > 0 {
		f("--falsetickers=%d", c.Falsetickers)
	}
	f("--delay=%v --jitter=%v", c.Delay, c.Jitter)
	if c.Asymmetry != 0 {
		f("--asymmetry=%v", c.Asymmetry)
	}
	if c.Loss != 0 {
		f("--loss=%g", c.Loss)
	}
	if c.ConvergeWithin > 0 && c.ConvergeWithin != time.Millisecond {
		f("--converge-within=%v", c.ConvergeWithin)
	}
	f("--duration=%v --seed=%d --restart-after=%v --step-forward-over=%v", c.Duration, c.Seed, c.RestartAfter, c.StepForwardOver)
	for _, k := range c.KillAt {
		f("--kill-at=%v", k)
	}
	if c.StepBy != 0 {
		f("--step-by=%s --step-at=%v", signed(c.StepBy), c.StepAt)
	}
	if c.AgentPeriod > 0 {
		f("--agent-period=%v --agent-start=%v --agent-threshold=%v --agent-offset=%s", c.AgentPeriod, c.AgentStart, c.AgentThreshold, signed(c.AgentOffset))
	}
	if c.SuspendFor > 0 {
		f("--suspend-for=%v --suspend-at=%v --suspend-error=%s", c.SuspendFor, c.SuspendAt, signed(c.SuspendError))
	}
	if c.OutageFor > 0 {
		f("--outage-for=%v --outage-at=%v", c.OutageFor, c.OutageAt)
	}
	if c.Kiss != "" {
		f("--kiss=%s --kiss-at=%v", c.Kiss, c.KissAt)
		if c.KissFor > 0 {
			f("--kiss-for=%v", c.KissFor)
		}
	}
	if c.DNSFailFor > 0 {
		f("--dns-fail-for=%v --dns-fail-at=%v", c.DNSFailFor, c.DNSFailAt)
	}
	if c.LeapAt > 0 {
		op := "insert"
		if c.LeapDelete {
			op = "delete"
		}
		f("--leap-second=%s --leap-at=%v", op, c.LeapAt)
	}
	return b.String()
}

func signed(d time.Duration) string {
	if d >= 0 {
		return "+" + d.String()
	}
	return d.String()
}
