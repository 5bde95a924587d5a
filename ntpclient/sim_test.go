package ntpclient_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// simRun is a client running in a simulated world against a simulated network.
type simRun struct {
	w      *simclock.World
	net    *ntptest.Network
	client *ntpclient.Client
	proc   *simclock.Process
	ests   []simEst
}

// simEst is an estimate with the true offset when it was produced.
type simEst struct {
	at   time.Duration // world time
	est  ntpclient.Estimate
	true time.Duration // true time − REALTIME at est.Raw
}

func (e simEst) err() time.Duration { return e.est.Offset - e.true }

type simSetup struct {
	seed    uint64
	epoch   time.Time // true time at world time 0 (zero: simclock's default)
	kernel  simclock.KernelConfig
	servers map[string]ntptest.ServerConfig // address → server
	hosts   map[string][]string
	cfg     ntpclient.Config
	// during, if set, runs in its own simulated process (e.g. to slew the clock).
	during func(ctx context.Context, p *simclock.Process) error
	// loop, if set, wraps the process as the client's Loop (to lose,
	// repeat or delay events).
	loop func(p *simclock.Process) clock.Loop
}

func newSim(t *testing.T, s simSetup) *simRun {
	t.Helper()
	w := simclock.New(simclock.Config{Seed: s.seed, Epoch: s.epoch, Kernel: s.kernel})
	n := ntptest.NewNetwork(w)
	for addr, cfg := range s.servers {
		n.AddServer(addr, cfg)
	}
	for name, addrs := range s.hosts {
		n.SetHost(name, addrs...)
	}
	r := &simRun{w: w, net: n}
	ready := make(chan error, 1)
	r.proc = w.Spawn("slewd", false, func(ctx context.Context, p *simclock.Process) error {
		var loop clock.Loop = p
		if s.loop != nil {
			loop = s.loop(p)
		}
		c, err := ntpclient.NewClient(s.cfg, ntpclient.Env{
			Clock:         p,
			Loop:          loop,
			Dialer:        n.Dialer(p),
			Resolver:      n.Resolver(),
			Logger:        slog.New(slog.DiscardHandler),
			Rand:          rand.New(rand.NewPCG(s.seed, 99)),
			SimulatedTime: true,
		})
		ready <- err
		if err != nil {
			return err
		}
		r.client = c
		c.Start()
		for {
			ev, err := p.Wait(ctx, c.Tick())
			if err != nil {
				return err
			}
			if ev == nil {
				continue
			}
			if est, ok := c.Handle(ev); ok && est != nil {
				// True offset at est.Raw: true time − RAW now (which no
				// slewing moves), carried back along the oscillator's
				// frequency error to est.Raw, minus REALTIME − RAW there.
				now := p.Raw()
				phaseNow := time.Duration(w.TrueTime().UnixNano()) - now
				phaseAt := phaseNow + time.Duration(w.FrequencyError()*float64(now-est.Raw))
				r.ests = append(r.ests, simEst{at: w.Now(), est: *est, true: phaseAt - est.RealMinusRaw})
			}
		}
	})
	if s.during != nil {
		w.Spawn("during", true, s.during)
	}
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	return r
}

// after returns the estimates produced after world time t.
func (r *simRun) after(t time.Duration) []simEst {
	var out []simEst
	for _, e := range r.ests {
		if e.at >= t {
			out = append(out, e)
		}
	}
	return out
}

func (r *simRun) report(t *testing.T, source string) ntpclient.SourceReport {
	t.Helper()
	for _, d := range r.client.Reports() {
		if d.Source == source {
			return d
		}
	}
	t.Fatalf("no report for %s", source)
	return ntpclient.SourceReport{}
}

// wan is a decent internet path: 15 ms each way, plus queueing with a
// mean of 250 µs each way (an offset noise of about 180 µs RMS per sample).
func wan(cfg ntptest.ServerConfig) ntptest.ServerConfig {
	cfg.Delay, cfg.Jitter = 15*time.Millisecond, 250*time.Microsecond
	return cfg
}

// noisy is a poor path: queueing with a mean of 1 ms each way (offset
// noise about 0.7 ms RMS per sample).
func noisy(cfg ntptest.ServerConfig) ntptest.ServerConfig {
	cfg.Delay, cfg.Jitter = 15*time.Millisecond, time.Millisecond
	return cfg
}

func servers(cfgs ...ntptest.ServerConfig) (map[string]ntptest.ServerConfig, []string) {
	m := map[string]ntptest.ServerConfig{}
	var names []string
	for i, c := range cfgs {
		a := fmt.Sprintf("192.0.2.%d:123", i+1)
		m[a] = c
		names = append(names, a)
	}
	return m, names
}

// checkAccuracy checks every estimate from world time from on: within limit
// of the truth, within its own error bound, and the falsetickers never
// selected (and named as such once they have answered).
func checkAccuracy(t *testing.T, r *simRun, from time.Duration, limit time.Duration, falsetickers ...string) (worst time.Duration) {
	t.Helper()
	ests := r.after(from)
	if len(ests) < 5 {
		t.Fatalf("only %d estimates after %v", len(ests), from)
	}
	for _, e := range ests {
		worst = max(worst, e.err().Abs())
		if e.err().Abs() > limit {
			t.Fatalf("at %v: estimate %v, truth %v: off by %v (error bound %v)", e.at, e.est.Offset, e.true, e.err(), e.est.Error)
		}
		if e.err().Abs() > e.est.Error {
			t.Errorf("at %v: off by %v, beyond the error bound %v", e.at, e.err(), e.est.Error)
		}
		for _, d := range e.est.Details {
			for _, f := range falsetickers {
				if d.Source == f && (d.Selected || (d.Samples > 0 && !strings.HasPrefix(d.Reason, "falseticker"))) {
					t.Fatalf("at %v: %s selected=%v reason %q, want it named a falseticker", e.at, f, d.Selected, d.Reason)
				}
			}
		}
	}
	last := ests[len(ests)-1]
	t.Logf("%d estimates, worst error %v; last %v off, error bound %v, %d sources agree", len(ests), worst, last.err(), last.est.Error, last.est.Sources)
	return worst
}

func TestSimFalseticker(t *testing.T) {
	srv, names := servers(
		wan(ntptest.ServerConfig{}),
		wan(ntptest.ServerConfig{Asymmetry: 300 * time.Microsecond}),
		wan(ntptest.ServerConfig{Offset: time.Hour}), // falseticker
		wan(ntptest.ServerConfig{Stratum: 1}),
	)
	r := newSim(t, simSetup{
		seed:    1,
		kernel:  simclock.KernelConfig{ClockError: 2500 * time.Millisecond, Oscillator: simclock.Oscillator{DriftPPM: 180, Wander: 1e-9}},
		servers: srv,
		cfg:     ntpclient.Config{Servers: names},
	})
	r.w.Run(6 * time.Hour)
	checkAccuracy(t, r, 0, time.Millisecond, names[2])
	if got := r.client.MinSources(); got != 3 {
		t.Errorf("quorum %d, want 3 of 4", got)
	}
	// The first estimate comes from the first answers of the burst.
	if first := r.ests[0].at; first > time.Second {
		t.Errorf("first estimate after %v", first)
	}
}

func TestSimTwoFalsetickersOfFive(t *testing.T) {
	srv, names := servers(
		wan(ntptest.ServerConfig{}),
		wan(ntptest.ServerConfig{Offset: time.Hour}),
		wan(ntptest.ServerConfig{}),
		wan(ntptest.ServerConfig{Offset: time.Hour + 200*time.Microsecond}), // agrees with the other falseticker
		wan(ntptest.ServerConfig{}),
	)
	r := newSim(t, simSetup{
		seed:    2,
		kernel:  simclock.KernelConfig{ClockError: -40 * time.Second, Oscillator: simclock.Oscillator{DriftPPM: -320, Wander: 1e-9}},
		servers: srv,
		cfg:     ntpclient.Config{Servers: names},
	})
	r.w.Run(6 * time.Hour)
	checkAccuracy(t, r, 0, time.Millisecond, names[1], names[3])
}

func TestSimLoss(t *testing.T) {
	var cfgs []ntptest.ServerConfig
	for i := 0; i < 4; i++ {
		cfgs = append(cfgs, wan(ntptest.ServerConfig{Loss: 0.3}))
	}
	srv, names := servers(cfgs...)
	r := newSim(t, simSetup{
		seed:    3,
		kernel:  simclock.KernelConfig{ClockError: time.Second, Oscillator: simclock.Oscillator{DriftPPM: 60, Wander: 1e-9}},
		servers: srv,
		cfg:     ntpclient.Config{Servers: names},
	})
	r.w.Run(12 * time.Hour)
	checkAccuracy(t, r, 0, time.Millisecond)
	// Estimates keep coming all along, not just in the burst.
	for h := time.Duration(1); h < 12; h++ {
		if len(r.after(h*time.Hour)) == 0 {
			t.Fatalf("no estimate after %dh", h)
		}
	}
	lost := int64(0)
	for _, a := range names {
		lost += r.net.Server(a).Counters().Lost
	}
	if lost == 0 {
		t.Fatal("nothing was lost: the test proves nothing")
	}
}

func TestSimDenyStopsQueries(t *testing.T) {
	srv, names := servers(wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{Kiss: "DENY"}))
	r := newSim(t, simSetup{seed: 4, servers: srv, cfg: ntpclient.Config{Servers: names}})
	r.w.Run(time.Hour)
	deny := r.net.Server(names[2])
	if c := deny.Counters(); c.Received != 1 {
		t.Errorf("the denying server got %d queries, want 1 (the one it denied)", c.Received)
	}
	rep := r.report(t, names[2])
	if rep.Selected || rep.KissCode != "DENY" || !strings.Contains(rep.Reason, "DENY") || !strings.Contains(rep.Reason, "stopped") {
		t.Errorf("report %+v", rep)
	}
	if len(r.ests) == 0 {
		t.Error("the two good servers should still give estimates (quorum 2 of 3)")
	}
	if other := r.net.Server(names[0]).Counters().Received; other < 6 {
		t.Errorf("a good server got only %d queries", other)
	}
}

func TestSimRateLengthensPoll(t *testing.T) {
	srv, names := servers(wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}))
	r := newSim(t, simSetup{seed: 5, servers: srv, cfg: ntpclient.Config{Servers: names, FixedPoll: 64 * time.Second}})
	r.w.Run(30 * time.Minute)
	rate := r.net.Server(names[2])
	before := r.report(t, names[2]).Poll
	n0, m0 := rate.Counters().Received, r.net.Server(names[0]).Counters().Received
	cfg := rate.Config()
	cfg.Kiss = "RATE"
	rate.SetConfig(cfg)
	r.w.Run(150 * time.Minute)
	after := r.report(t, names[2])
	if before != 64*time.Second || after.Poll < 4*before {
		t.Errorf("poll %v before the kiss, %v after; want at least 4×", before, after.Poll)
	}
	if after.KissCode != "RATE" {
		t.Errorf("kiss code %q", after.KissCode)
	}
	got := rate.Counters().Received - n0
	normal := r.net.Server(names[0]).Counters().Received - m0
	t.Logf("poll %v before the kiss, %v after; in 2.5 h the kissing server got %d queries, a normal one %d", before, after.Poll, got, normal)
	// 2 h at 64 s is ~112 queries; after the kiss at ≥256 s at most ~30.
	if got > 32 || normal < 100 {
		t.Errorf("in 2 h the kissing server got %d queries, a normal one %d", got, normal)
	}
	// The kiss did not poison the estimate (beevik returns a garbage offset for it).
	checkAccuracy(t, r, 30*time.Minute, time.Millisecond)

	// Answering normally again, the server is polled at 64 s again, soon.
	cfg.Kiss = ""
	rate.SetConfig(cfg)
	r.w.Run(r.w.Now() + 2*after.Poll + 10*time.Minute)
	if p := r.report(t, names[2]).Poll; p != 64*time.Second {
		t.Errorf("poll %v after the server stopped kissing, want back to 64s", p)
	}
}

func TestSimUnsynchronizedIgnored(t *testing.T) {
	srv, names := servers(
		wan(ntptest.ServerConfig{}),
		wan(ntptest.ServerConfig{Unsynchronized: true, Offset: time.Hour}),
		wan(ntptest.ServerConfig{Leap: ntpclient.LeapNotInSync, Stratum: 9, Offset: time.Hour}),
		wan(ntptest.ServerConfig{Stratum: 16, Offset: time.Hour}),
	)
	r := newSim(t, simSetup{seed: 6, servers: srv, cfg: ntpclient.Config{Servers: names, MinSources: 1}})
	r.w.Run(time.Hour)
	checkAccuracy(t, r, 0, time.Millisecond)
	for i, want := range []string{"", "unsynchronized (stratum 0, LI=3)", "unsynchronized (LI=3)", "unsynchronized (stratum 16)"} {
		if rep := r.report(t, names[i]); rep.Reason != want || rep.Selected != (want == "") {
			t.Errorf("%s: selected %v, reason %q, want %q", names[i], rep.Selected, rep.Reason, want)
		}
	}
}

// Malformed and spoofed answers never become samples.
func TestSimMalformedIgnored(t *testing.T) {
	srv, names := servers(
		wan(ntptest.ServerConfig{}),
		wan(ntptest.ServerConfig{WrongOrigin: true, Offset: time.Hour}),
		wan(ntptest.ServerConfig{ZeroTransmit: true, Offset: time.Hour}),
	)
	r := newSim(t, simSetup{seed: 7, servers: srv, cfg: ntpclient.Config{Servers: names, MinSources: 1}})
	r.w.Run(time.Hour)
	checkAccuracy(t, r, 0, time.Millisecond)
	for i, want := range []string{"wrong origin timestamp", "zero transmit timestamp"} {
		if rep := r.report(t, names[i+1]); rep.Selected || !strings.Contains(rep.Reason, want) {
			t.Errorf("%s: %q, want %q", names[i+1], rep.Reason, want)
		}
	}
}

// Estimates hold in the RAW frame while another process slews the clock
// hard (tick ±5 %), which is exactly what slewd's own adjtime will do.
func TestSimSlewingDoesNotDisturb(t *testing.T) {
	srv, names := servers(wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}))
	slewer := func(ctx context.Context, p *simclock.Process) error {
		for i := 0; ; i++ {
			tick := int64(10500)
			if i%2 == 1 {
				tick = 9500
			}
			if _, err := clock.NewDriver(p).SetTick(tick); err != nil {
				return err
			}
			if err := clock.Sleep(ctx, p, 7*time.Minute); err != nil {
				return err
			}
		}
	}
	r := newSim(t, simSetup{
		seed:    8,
		kernel:  simclock.KernelConfig{Oscillator: simclock.Oscillator{DriftPPM: 90, Wander: 1e-9}},
		servers: srv,
		cfg:     ntpclient.Config{Servers: names},
		during:  slewer,
	})
	r.w.Run(4 * time.Hour)
	checkAccuracy(t, r, 0, time.Millisecond)
	if e := r.w.ClockError(); e.Abs() < 10*time.Second {
		t.Fatalf("clock error %v: the slewer did not move the clock much; the test proves little", e)
	}
}

// A pool expands to PoolSize members; a dead member is replaced by
// looking the name up again; a DNS failure at start is retried.
func TestSimPool(t *testing.T) {
	srv := map[string]ntptest.ServerConfig{}
	var addrs []string
	for i := 1; i <= 6; i++ {
		a := fmt.Sprintf("198.51.100.%d", i)
		srv[a+":123"] = wan(ntptest.ServerConfig{})
		addrs = append(addrs, a)
	}
	r := newSim(t, simSetup{seed: 9, servers: srv, cfg: ntpclient.Config{Pools: []string{"pool.test"}}})
	r.net.SetHostError("pool.test", nil)
	r.w.Run(10 * time.Second)
	if len(r.ests) != 0 {
		t.Fatal("estimate without any address")
	}
	if n := r.net.Lookups("pool.test"); n < 2 {
		t.Errorf("%d lookups in 10 s of DNS failure, want retries", n)
	}
	if q := r.client.MinSources(); q != 3 {
		t.Errorf("quorum %d while the pool is unresolved, want 3 (a majority of PoolSize 4)", q)
	}
	rep := r.client.Reports()
	if len(rep) != 1 || !strings.Contains(rep[0].Reason, "DNS lookup of pool pool.test failed") {
		t.Errorf("reports %+v", rep)
	}
	r.net.SetHost("pool.test", addrs[:4]...)
	r.w.Run(20 * time.Minute)
	if len(r.ests) == 0 || r.ests[len(r.ests)-1].est.Sources < 3 {
		t.Fatalf("no estimate from the pool")
	}
	// Member 1 goes silent; DNS now hands out the others.
	dead := r.net.Server(addrs[0])
	cfg := dead.Config()
	cfg.Drop = true
	dead.SetConfig(cfg)
	r.net.SetHost("pool.test", addrs[2:]...)
	r.w.Run(10 * time.Hour)
	members := map[string]bool{}
	for _, d := range r.client.Reports() {
		members[d.Addr] = true
		if d.Source != "pool.test:123" {
			t.Errorf("member source %q", d.Source)
		}
	}
	if members[addrs[0]+":123"] || len(members) != 4 || !(members[addrs[4]+":123"] || members[addrs[5]+":123"]) {
		t.Errorf("members after replacement: %v", members)
	}
	checkAccuracy(t, r, 9*time.Hour, time.Millisecond)
}

// Same seed, same run.
func TestSimDeterministic(t *testing.T) {
	run := func() []simEst {
		srv, names := servers(wan(ntptest.ServerConfig{Loss: 0.1}), wan(ntptest.ServerConfig{Jitter: 5 * time.Millisecond}), wan(ntptest.ServerConfig{Offset: time.Hour}))
		r := newSim(t, simSetup{seed: 10, kernel: simclock.KernelConfig{Oscillator: simclock.Oscillator{DriftPPM: 40, Wander: 1e-8}}, servers: srv, cfg: ntpclient.Config{Servers: names, MinSources: 2}})
		r.w.Run(3 * time.Hour)
		return r.ests
	}
	a, b := run(), run()
	if len(a) != len(b) || len(a) == 0 {
		t.Fatalf("%d vs %d estimates", len(a), len(b))
	}
	for i := range a {
		if a[i].at != b[i].at || a[i].est.Offset != b[i].est.Offset || a[i].est.Error != b[i].est.Error {
			t.Fatalf("estimate %d differs: %+v vs %+v", i, a[i], b[i])
		}
	}
}

// On a poor path (offset noise 0.7 ms RMS per sample) with a falseticker,
// the estimates stay within their error bounds and within 2.5 ms of the
// truth, 1.2 ms once the frequency is known (after the first hour).
func TestSimNoisyPath(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			srv, names := servers(noisy(ntptest.ServerConfig{}), noisy(ntptest.ServerConfig{}), noisy(ntptest.ServerConfig{Offset: time.Hour}), noisy(ntptest.ServerConfig{}))
			r := newSim(t, simSetup{seed: seed, kernel: simclock.KernelConfig{Oscillator: simclock.Oscillator{DriftPPM: 100, Wander: 1e-9}}, servers: srv, cfg: ntpclient.Config{Servers: names}})
			r.w.Run(6 * time.Hour)
			checkAccuracy(t, r, 0, 2500*time.Microsecond, names[2])
			checkAccuracy(t, r, time.Hour, 1200*time.Microsecond, names[2])
		})
	}
}

// The poll interval adapts from MinPoll towards MaxPoll while samples
// keep fitting the prediction.
func TestSimPollAdapts(t *testing.T) {
	srv, names := servers(wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}), wan(ntptest.ServerConfig{}))
	r := newSim(t, simSetup{seed: 11, kernel: simclock.KernelConfig{Oscillator: simclock.Oscillator{DriftPPM: -30, Wander: 1e-9}}, servers: srv, cfg: ntpclient.Config{Servers: names}})
	r.w.Run(2 * time.Minute)
	if p := r.report(t, names[0]).Poll; p != 64*time.Second {
		t.Errorf("poll %v after the burst, want 64s", p)
	}
	r.w.Run(12 * time.Hour)
	for _, a := range names {
		if p := r.report(t, a).Poll; p < 512*time.Second || p > 1024*time.Second {
			t.Errorf("%s: poll %v after 12 h on a steady path, want 512s to 1024s", a, p)
		}
	}
	// 12 h at 64 s would be 675 queries.
	if n := r.net.Server(names[0]).Counters().Received; n > 200 {
		t.Errorf("%d queries in 12 h: the poll did not lengthen much", n)
	}
}

// A one-shot measurement reports what the sources say at its end: an
// estimate only together with the sources selected for it, never an
// earlier estimate they have since stopped agreeing on.
func TestSimMeasureConsistent(t *testing.T) {
	estimates := 0
	for seed := uint64(1); seed <= 40; seed++ {
		lan := func(c ntptest.ServerConfig) ntptest.ServerConfig {
			c.Delay, c.Jitter = 50*time.Microsecond, 100*time.Microsecond
			return c
		}
		srv, names := servers(
			lan(ntptest.ServerConfig{Offset: 500 * time.Millisecond}),
			lan(ntptest.ServerConfig{Offset: 500 * time.Millisecond}),
			lan(ntptest.ServerConfig{Offset: 500 * time.Millisecond}),
			lan(ntptest.ServerConfig{Offset: time.Hour}),
		)
		est, _, err := simMeasure(seed, srv, ntpclient.Config{Servers: names, Burst: 3, BurstInterval: 200 * time.Millisecond}, nil)
		selected := 0
		for _, d := range est.Details {
			if d.Selected {
				selected++
			}
		}
		if err != nil {
			if selected != 0 {
				t.Errorf("seed %d: no estimate (%v), yet %d sources marked selected", seed, err, selected)
			}
			continue
		}
		estimates++
		// Sources counts those that agree; some may agree and not be
		// combined, and say so.
		agreeing := 0
		for _, d := range est.Details {
			if d.Selected || strings.HasPrefix(d.Reason, "agrees") {
				agreeing++
			}
		}
		if selected == 0 || agreeing != est.Sources || est.Sources < 3 {
			t.Errorf("seed %d: estimate from %d sources, %d marked selected, %d agreeing", seed, est.Sources, selected, agreeing)
		}
		if off := est.Offset - 500*time.Millisecond; off.Abs() > 200*time.Microsecond {
			t.Errorf("seed %d: offset %v, want 0.5 s", seed, est.Offset)
		}
		if rep := est.Details[3]; rep.Selected || rep.Reason == "" {
			t.Errorf("seed %d: the falseticker %+v", seed, rep)
		}
	}
	// Three agreeing servers on a quiet LAN must give an estimate nearly always.
	if estimates < 38 {
		t.Errorf("estimates in %d of 40 measurements", estimates)
	}
}

// Sources that agree at first and then fall apart leave no estimate: the
// first one must not be returned next to reports saying nobody agrees.
func TestSimMeasureAgreementLost(t *testing.T) {
	lan := ntptest.ServerConfig{Delay: 50 * time.Microsecond, Jitter: 10 * time.Microsecond}
	srv, names := servers(lan, lan, lan)
	// After the first answers, two servers move 20 ms apart.
	est, _, err := simMeasure(3, srv, ntpclient.Config{Servers: names, Burst: 4, BurstInterval: 200 * time.Millisecond},
		func(w *simclock.World, n *ntptest.Network) {
			w.At(100*time.Millisecond, func() {
				for i, off := range map[int]time.Duration{1: 20 * time.Millisecond, 2: -20 * time.Millisecond} {
					s := n.Server(names[i])
					c := s.Config()
					c.Offset = off
					s.SetConfig(c)
				}
			})
		})
	var noEst *ntpclient.NoEstimateError
	if !errors.As(err, &noEst) {
		t.Fatalf("Measure = %+v, %v; want no estimate once the sources disagree", est, err)
	}
	for _, d := range est.Details {
		if d.Selected {
			t.Errorf("%s marked selected without an estimate", d.Source)
		}
	}
	t.Log(err)
}

// A pool counts the members it really has once it resolves: a name with
// one address is a single source, and its quorum is 1.
func TestSimPoolQuorumFollowsMembers(t *testing.T) {
	for _, tc := range []struct {
		addrs, quorum int
	}{{1, 1}, {2, 2}, {3, 2}, {6, 3}} {
		srv := map[string]ntptest.ServerConfig{}
		var addrs []string
		for i := 1; i <= tc.addrs; i++ {
			a := fmt.Sprintf("198.51.100.%d", i)
			srv[a+":123"] = wan(ntptest.ServerConfig{})
			addrs = append(addrs, a)
		}
		r := newSim(t, simSetup{seed: 4, servers: srv, hosts: map[string][]string{"pool.test": addrs},
			cfg: ntpclient.Config{Pools: []string{"pool.test"}}})
		r.w.Run(time.Minute)
		if got := r.client.MinSources(); got != tc.quorum {
			t.Errorf("%d addresses: quorum %d, want %d", tc.addrs, got, tc.quorum)
		}
		if len(r.ests) == 0 {
			t.Errorf("%d addresses: no estimate", tc.addrs)
		}
	}
}

// A sample suppressed as a spike after a long poll gets a second look at
// MinPoll, not a whole poll interval later: it may be the first sign that
// the clock drifted further than predicted, and waiting doubles the time
// it runs uncorrected.
func TestSimSpikeRecheckedSoon(t *testing.T) {
	srv, names := servers(wan(ntptest.ServerConfig{}))
	r := newSim(t, simSetup{seed: 12, servers: srv, cfg: ntpclient.Config{Servers: names}})
	r.w.Run(12 * time.Hour)
	poll := r.report(t, names[0]).Poll
	if poll < 512*time.Second {
		t.Fatalf("poll %v after 12 h, want it long for this test", poll)
	}
	shift := r.w.Now()
	s := r.net.Server(names[0])
	cfg := s.Config()
	cfg.Offset = 5 * time.Millisecond
	s.SetConfig(cfg)
	r.w.Run(shift + 3*poll)
	var first time.Duration
	for _, e := range r.after(shift) {
		if e.est.Offset > 4*time.Millisecond {
			first = e.at
			break
		}
	}
	if first == 0 {
		t.Fatal("the shifted server's time was never taken")
	}
	// One poll to see the shift (a spike), MinPoll to confirm it.
	if late := first - shift; late > poll+poll/32+2*ntpclient.DefaultMinPoll {
		t.Errorf("the shift was taken %v after it happened (poll %v): the spike was not rechecked soon", late, poll)
	}
}

// Measure asks its sources in parallel: in virtual time, four servers
// 300 ms away take as long as one (asked one after another they would take
// four times as long).
func TestSimMeasureParallel(t *testing.T) {
	took := func(n int) time.Duration {
		var cfgs []ntptest.ServerConfig
		for range n {
			cfgs = append(cfgs, ntptest.ServerConfig{Delay: 300 * time.Millisecond})
		}
		srv, names := servers(cfgs...)
		_, took, err := simMeasure(5, srv, ntpclient.Config{Servers: names, Burst: 2, BurstInterval: 100 * time.Millisecond}, nil)
		if err != nil {
			t.Errorf("%d servers: %v", n, err)
		}
		return took
	}
	one, four := took(1), took(4)
	if one < time.Second || four > one+one/4 {
		t.Errorf("one server took %v, four took %v: not in parallel", one, four)
	}
	t.Logf("one server %v, four %v (virtual time)", one, four)
}

// simMeasure runs one Measure in a simulated world against srv, after
// setup (which may schedule changes to the servers), and returns its
// result and how long it took in virtual time.
func simMeasure(seed uint64, srv map[string]ntptest.ServerConfig, cfg ntpclient.Config,
	setup func(w *simclock.World, n *ntptest.Network)) (est ntpclient.Estimate, took time.Duration, err error) {
	w := simclock.New(simclock.Config{Seed: seed})
	n := ntptest.NewNetwork(w)
	for a, c := range srv {
		n.AddServer(a, c)
	}
	if setup != nil {
		setup(w, n)
	}
	w.Spawn("measure", false, func(ctx context.Context, p *simclock.Process) error {
		start := p.Raw()
		est, err = ntpclient.Measure(ctx, cfg, ntpclient.Env{Clock: p, Loop: p, Dialer: n.Dialer(p), Resolver: n.Resolver(),
			Logger: slog.New(slog.DiscardHandler), Rand: rand.New(rand.NewPCG(seed, 1)), SimulatedTime: true}, 0)
		took = p.Raw() - start
		return nil
	})
	w.Run(time.Minute)
	return est, took, err
}

// A leap second the servers announced moves the estimate by 1 s to UTC
// at once: no source is taken for a falseticker for it, except the one
// that neither announced nor took it.
func TestSimLeapSecond(t *testing.T) {
	midnight := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	const leapAt = 3 * time.Hour
	for _, del := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete=%v", del), func(t *testing.T) {
			leap := ntptest.ServerConfig{LeapAt: midnight, LeapDelete: del}
			srv, names := servers(wan(leap), wan(leap), wan(leap), wan(leap), wan(ntptest.ServerConfig{}))
			r := newSim(t, simSetup{
				seed:    7,
				epoch:   midnight.Add(-leapAt),
				kernel:  simclock.KernelConfig{Oscillator: simclock.Oscillator{DriftPPM: 40, Wander: 1e-9}},
				servers: srv,
				cfg:     ntpclient.Config{Servers: names, MaxPoll: 256 * time.Second},
			})
			r.w.Run(leapAt - time.Minute)
			spikes := map[string]int{}
			for _, d := range r.client.Reports() {
				spikes[d.Source] = d.Spikes
			}
			r.w.Run(leapAt + 3*time.Hour)
			for _, d := range r.client.Reports() {
				if d.Source != names[4] && d.Spikes != spikes[d.Source] {
					t.Errorf("%s: %d spikes after the leap", d.Source, d.Spikes-spikes[d.Source])
				}
			}
			shift := -time.Second
			if del {
				shift = time.Second
			}
			var before, after int
			for _, e := range r.ests {
				want := e.true // true time − REALTIME; UTC is 1 s off it after the leap
				if e.at > leapAt {
					want += shift
				}
				if e.at > time.Hour && (e.est.Offset-want).Abs() > time.Millisecond {
					t.Fatalf("at %v: estimate %v, UTC %v", e.at, e.est.Offset, want)
				}
				for _, d := range e.est.Details {
					if d.Source != names[4] && strings.HasPrefix(d.Reason, "falseticker") {
						t.Fatalf("at %v: %s: %s", e.at, d.Source, d.Reason)
					}
				}
				if e.at < leapAt {
					before++
					if want := map[bool]ntpclient.Leap{false: ntpclient.LeapInsert, true: ntpclient.LeapDelete}[del]; e.at > time.Hour && e.est.Leap != want {
						t.Fatalf("at %v: the estimate's leap is %v, want %v", e.at, e.est.Leap, want)
					}
				} else {
					after++
				}
			}
			if before < 20 || after < 20 {
				t.Fatalf("%d estimates before the leap, %d after", before, after)
			}
			if rep := r.report(t, names[4]); !strings.HasPrefix(rep.Reason, "falseticker") {
				t.Errorf("the server that did not leap: %q, want a falseticker", rep.Reason)
			}
			if last := r.ests[len(r.ests)-1]; last.est.Leap != ntpclient.LeapNone || last.est.Sources != 4 {
				t.Errorf("after the leap: leap %v, %d sources", last.est.Leap, last.est.Sources)
			}
		})
	}
}
