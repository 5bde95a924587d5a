// Package simulation runs the discipline (package discipline, the loop of
// `slewd run`) on a simulated Linux kernel clock (clock/simclock) and
// simulated NTP servers (ntpclient/ntptest), in virtual time: `slewd
// simulate`, the tests and the benchmarks all drive Run. It sets up the
// world (oscillator, servers, falsetickers, loss), kills and restarts the
// daemon, steps the clock from outside, and measures the true error of
// the clock on every linear segment (Metrics), counting every backward
// step slewd made.
package simulation

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"slewd/adjtime"
	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/discipline"
	"slewd/discipline/statefile"
	"slewd/foreign"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// Config is one simulation.
type Config struct {
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
	// ConvergeWithin is the |error| that counts as converged in the
	// Result (0: 1 ms).
	ConvergeWithin time.Duration

	// UndoForeignSteps and StepForwardOver are the daemon's
	// --undo-foreign-steps and --step-forward-over (zero: off).
	UndoForeignSteps bool
	StepForwardOver  time.Duration
	// Agent is a periodic time agent (VirtualBox's, Hyper-V's on some
	// kernels): every AgentPeriod, from AgentStart, it steps the clock to
	// its own time (true time plus AgentOffset) when they differ by more
	// than AgentThreshold. AgentPeriod 0: no agent.
	AgentPeriod, AgentStart, AgentThreshold, AgentOffset time.Duration
	// SuspendAt, SuspendFor: the machine sleeps for SuspendFor of true time
	// (SuspendFor 0: never); the kernel measures the sleep SuspendError off.
	SuspendAt, SuspendFor, SuspendError time.Duration

	// OutageAt, OutageFor: every server stops answering (drops each
	// request, as a server that is down or a cut link) for OutageFor from
	// OutageAt (OutageFor 0: never).
	OutageAt, OutageFor time.Duration
	// Kiss makes the first server answer every request with this
	// kiss-of-death code ("RATE", "DENY", "RSTR") from KissAt for KissFor
	// (KissFor 0: to the end); "": never.
	Kiss            string
	KissAt, KissFor time.Duration
	// ServerNames gives the servers to the daemon by DNS name
	// (ntp1.example, …) instead of by address. DNSFailAt, DNSFailFor:
	// their lookups fail (a temporary DNS failure) for DNSFailFor from
	// DNSFailAt; DNSFailFor > 0 implies ServerNames.
	ServerNames           bool
	DNSFailAt, DNSFailFor time.Duration
	// LeapAt, if set, is when (virtual time) a leap second ends the day:
	// true time then is 2027-01-01 00:00 UTC, the servers announce the
	// leap during the day before and serve UTC after it (an insertion, or
	// a deletion with LeapDelete), and errors are measured against UTC.
	// LeapIgnorers of the honest servers neither announce nor take it.
	LeapAt       time.Duration
	LeapDelete   bool
	LeapIgnorers int
	// PHC, if set, is a PTP hardware clock at /dev/ptp0 beside the
	// servers (a VM guest's ptp_kvm); Servers may then be 0.
	PHC *ntptest.PHCConfig
}

// LeapMidnight is the midnight a simulated leap second comes at (Config.LeapAt).
var LeapMidnight = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

// Result is what `slewd simulate --json` prints. Errors are local clock
// minus true time, in seconds.
type Result struct {
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

	// BackwardWindowS is the longest time REALTIME stayed below the highest
	// value it had shown (after a step back from outside, until undone or
	// slewed past), BackwardWindows how many there were.
	BackwardWindowS float64 `json:"backward_window_s"`
	BackwardWindows int     `json:"backward_windows"`
	// OutsideSteps counts the steps made from outside slewd (--step-by,
	// the agent's), ForeignSeen what the daemon saw and did about them.
	OutsideSteps int            `json:"outside_steps"`
	ForeignSeen  *foreign.Tally `json:"foreign_seen,omitempty"`

	// LeapSettledS is how long after the leap second (Config.LeapAt) the
	// clock came within 1 ms of UTC and stayed there.
	LeapSettledS *float64 `json:"leap_settled_s,omitempty"`

	// Metrics has the run's error and rate, second by second.
	Metrics *Metrics `json:"-"`
}

// FalsetickerOffset is how wrong the i-th falseticker is: far outside any
// honest error, and different for each so that they do not agree.
func FalsetickerOffset(i int) time.Duration {
	d := time.Duration(i+1) * 3 * time.Second / 2
	if i%2 == 1 {
		d = -d
	}
	return d
}

// Run runs the daemon on a simulated machine and network for
// cfg.Duration of virtual time. The same Config and seed give the same
// run.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	var epoch time.Time
	if cfg.LeapAt > 0 {
		epoch = LeapMidnight.Add(-cfg.LeapAt)
	}
	w := simclock.New(simclock.Config{Seed: cfg.Seed, Epoch: epoch, Kernel: simclock.KernelConfig{
		ClockError: cfg.ClockError,
		Oscillator: simclock.Oscillator{DriftPPM: cfg.DriftPPM, Wander: cfg.Wander},
	}})
	within := 1e-3
	if cfg.ConvergeWithin > 0 {
		within = cfg.ConvergeWithin.Seconds()
	}
	m := NewMetrics(within)
	utcShift := 0.0
	if cfg.LeapAt > 0 {
		at, shift := cfg.LeapAt, -time.Second
		if cfg.LeapDelete {
			at, shift = at-time.Second, time.Second
		}
		utcShift = shift.Seconds()
		m.LeapSecond(at.Seconds(), utcShift)
	}
	w.Observe(m)
	rec := simclock.NewRecorder(w)
	network := ntptest.NewNetwork(w)
	var servers, addrs []string
	var configs []ntptest.ServerConfig
	for i := 0; i < cfg.Servers; i++ {
		ip := "192.0.2." + strconv.Itoa(i+1)
		addr := ip + ":123"
		sc := ntptest.ServerConfig{Stratum: 1, Delay: cfg.Delay, Jitter: cfg.Jitter, Asymmetry: cfg.Asymmetry, Loss: cfg.Loss}
		if i >= cfg.Servers-cfg.Falsetickers {
			sc.Offset = FalsetickerOffset(i - (cfg.Servers - cfg.Falsetickers))
		}
		if cfg.LeapAt > 0 && i < cfg.Servers-cfg.Falsetickers-cfg.LeapIgnorers {
			sc.LeapAt, sc.LeapDelete = LeapMidnight, cfg.LeapDelete
		}
		network.AddServer(addr, sc)
		configs = append(configs, sc)
		addrs = append(addrs, addr)
		if cfg.ServerNames || cfg.DNSFailFor > 0 {
			name := "ntp" + strconv.Itoa(i+1) + ".example"
			network.SetHost(name, ip)
			servers = append(servers, name)
		} else {
			servers = append(servers, addr)
		}
	}
	faults(w, cfg, network, addrs, servers, configs)
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
			ccfg := ntpclient.Config{Servers: servers, FixedPoll: cfg.Poll}
			if cfg.PHC != nil {
				ccfg.PHCs = []string{"/dev/ptp0"}
			}
			client, err := ntpclient.NewClient(ccfg, ntpclient.Env{
				Clock: p, Loop: p, Dialer: network.Dialer(p), Resolver: network.Resolver(),
				Logger: log, Rand: w.Rand("client"), SimulatedTime: true,
				OpenPHC: func(dev string) (clock.PHC, error) { return ntptest.NewPHC(p, dev, *cfg.PHC), nil },
			})
			if err != nil {
				return err
			}
			d := discipline.New(discipline.Config{MaxSlewPPM: cfg.MaxSlewPPM, Method: cfg.Method, MaxOffset: cfg.MaxOffset, DryRun: cfg.DryRun,
				UndoForeignSteps: cfg.UndoForeignSteps, StepForwardOver: cfg.StepForwardOver}, discipline.Env{
				Clock: p, Loop: p, Client: client, State: state, Run: run,
				BootID: func() string { return strconv.Itoa(w.BootID()) }, Log: log,
			})
			return d.Run(ctx)
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
	// Steps from outside slewd (a hypervisor's, an agent's), written
	// straight to the simulated kernel, noted so that they are not counted
	// as slewd's.
	var outside []simclock.Jump
	step := func(d time.Duration) {
		if _, err := clock.NewDriver(w).Step(d); err == nil {
			outside = append(outside, simclock.Jump{At: w.Now().Seconds(), Delta: d.Seconds()})
		}
	}
	if cfg.StepBy != 0 {
		w.At(cfg.StepAt, func() { step(cfg.StepBy) })
	}
	if cfg.AgentPeriod > 0 {
		var agent func()
		agent = func() {
			if e := w.ClockError() - cfg.AgentOffset; e.Abs() > cfg.AgentThreshold {
				step(-e)
			}
			w.After(cfg.AgentPeriod, agent)
		}
		w.At(cfg.AgentStart, agent)
	}
	if cfg.SuspendFor > 0 {
		w.At(cfg.SuspendAt, func() { w.SuspendMismeasured(cfg.SuspendFor, cfg.SuspendFor+cfg.SuspendError) })
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

	res := &Result{Metrics: m, Seed: cfg.Seed, Kills: len(cfg.KillAt), DurationS: cfg.Duration.Seconds(),
		InitialErrorS: cfg.ClockError.Seconds(), FinalErrorS: w.ClockErrorSeconds(), MaxRatePPM: m.MaxRatePPM}
	if w.Now() >= cfg.LeapAt && cfg.LeapAt > 0 {
		res.FinalErrorS -= utcShift // against UTC
	}
	// REALTIME going back, not counting the steps from outside or a
	// suspend the kernel measured short.
	backJumps := 0
	for _, j := range rec.Jumps {
		if j.Delta >= 0 {
			continue
		}
		backJumps++
		if j.Why == "resume" || madeOutside(outside, j) {
			continue
		}
		res.BackwardSteps++
		res.MaxBackwardS = math.Max(res.MaxBackwardS, -j.Delta)
	}
	res.OutsideSteps = len(outside)
	res.BackwardWindowS = m.Backward.LongestAt(w.Now().Seconds())
	res.BackwardWindows = m.Backward.Count
	if open, _ := m.Backward.Open(); open {
		res.BackwardWindows++
	}
	if st, ok, _ := statefile.ReadStatus(run); ok && st.Foreign != nil {
		res.ForeignSeen = st.Foreign
	}
	if n, _ := rec.Backward(); n > backJumps {
		// A segment where REALTIME ran backwards: impossible in the kernel model.
		return nil, fmt.Errorf("REALTIME ran backwards between jumps (%d times): a simulator bug", n-backJumps)
	}
	for _, p := range procs {
		res.Syscalls += p.Syscalls()
	}
	for _, a := range addrs {
		res.Queries += network.Server(a).Counters().Received
	}
	if t := m.ConvergedAfter(); t >= 0 {
		res.ConvergedAfterS = ptr(t)
		if rms, mx, ok := m.Since(t); ok {
			res.RMSErrorAfterConvergenceS, res.MaxAbsErrorAfterConvergeS = ptr(rms), ptr(mx)
		}
		if cfg.LeapAt > 0 && t >= cfg.LeapAt.Seconds()-1 {
			res.LeapSettledS = ptr(math.Max(t-m.utcAt, 0))
		}
	}
	if rms, mx, ok := m.Since(3600); ok {
		res.RMSErrorAfter1hS, res.MaxAbsErrorAfter1hS = ptr(rms), ptr(mx)
	}
	for _, wr := range rec.RTCWrites {
		if math.Abs(wr.Error+m.utc(wr.At)) > 0.1 { // against UTC after a leap second
			res.RTCWritesWhileOffOver100ms++
		}
	}
	if k, err := clock.NewDriver(w).Read(); err == nil {
		res.FinalTick, res.FinalFrequencyPPM = k.Tick, k.FrequencyPPM
	}
	return res, nil
}

// faults schedules the servers' outage and kiss-of-death and the DNS
// failure: each boundary recomputes the servers' configurations from
// what is in force then, so that overlapping faults compose.
func faults(w *simclock.World, cfg Config, network *ntptest.Network, addrs, names []string, base []ntptest.ServerConfig) {
	var outage, kiss bool
	apply := func() {
		for i, a := range addrs {
			sc := base[i]
			sc.Drop = outage
			if i == 0 && kiss {
				sc.Kiss = cfg.Kiss
			}
			network.Server(a).SetConfig(sc)
		}
	}
	window := func(at, dur time.Duration, on *bool, set func()) {
		start := func() { *on = true; set() }
		if at <= 0 {
			start() // before the daemon's first query
		} else {
			w.At(at, start)
		}
		if dur > 0 {
			w.At(at+dur, func() { *on = false; set() })
		}
	}
	if cfg.OutageFor > 0 {
		window(cfg.OutageAt, cfg.OutageFor, &outage, apply)
	}
	if cfg.Kiss != "" {
		window(cfg.KissAt, cfg.KissFor, &kiss, apply)
	}
	if cfg.DNSFailFor > 0 {
		var failing bool
		window(cfg.DNSFailAt, cfg.DNSFailFor, &failing, func() {
			for i, name := range names {
				if failing {
					network.SetHostError(name, nil)
				} else {
					network.SetHost(name, strings.TrimSuffix(addrs[i], ":123"))
				}
			}
		})
	}
}

func ptr(f float64) *float64 { return &f }

// madeOutside says whether jump j is one of the steps made from outside.
func madeOutside(outside []simclock.Jump, j simclock.Jump) bool {
	for _, o := range outside {
		if math.Abs(j.At-o.At) < 1e-9 && math.Abs(j.Delta-o.Delta) < 1e-9 {
			return true
		}
	}
	return false
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
