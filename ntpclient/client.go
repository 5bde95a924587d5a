package ntpclient

import (
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"
)

// Client measures the local clock against its sources. It is driven by
// one goroutine: Start, then Tick and Handle from an event loop. The
// decisions are the sources' state machines (Source), pool membership
// (members) and selection (selectSources); the client feeds them events
// and hands their actions to its driver, which does the I/O on helper
// goroutines that post their outcomes to Env.Loop.
type Client struct {
	members
	env     Env
	log     *slog.Logger
	drv     driver
	started bool
	timers  map[*Source]time.Duration // RAW time each source asked for a Tick (SetTimer)

	sel selection // the latest selection, for Reports and Latest
}

// NewClient checks cfg and returns a client that has not started.
func NewClient(cfg Config, env Env) (*Client, error) {
	return newClient(cfg, env, false)
}

func newClient(cfg Config, env Env, oneShot bool) (*Client, error) {
	if env.Clock == nil || env.Loop == nil {
		return nil, errors.New("ntpclient: Env needs a Clock and a Loop")
	}
	cfg, err := cfg.withDefaults(oneShot)
	if err != nil {
		return nil, err
	}
	servers, pools, err := cfg.specs()
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rng := env.Rand
	if rng == nil {
		var seed [16]byte
		crand.Read(seed[:])
		rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	if env.Resolver == nil {
		env.Resolver = net.DefaultResolver
	}
	c := &Client{env: env, log: log, timers: map[*Source]time.Duration{}}
	c.members.p = &sourceParams{cfg: cfg, oneShot: oneShot, rng: rng, log: log}
	c.members.forget = func(s *Source) { delete(c.timers, s) }
	c.drv = newDriver(c, env, cfg, log)
	for _, sp := range servers {
		s := c.newSource(sp, nil)
		if sp.IsIP() {
			s.addr = sp.String()
		}
		c.sources = append(c.sources, s)
	}
	for _, sp := range pools {
		c.pools = append(c.pools, &pool{spec: sp, name: sp.String(), resolveAt: -1, banned: map[string]string{}})
	}
	return c, nil
}

func (c *Client) cfg() Config { return c.members.p.cfg }

// MinSources is the quorum in force: --min-sources when set, else 1 for a
// single source and a majority of the sources otherwise. A pool counts
// PoolSize until its name resolves, then the members it really has, so a
// pool name with fewer addresses can still reach its quorum.
func (c *Client) MinSources() int {
	cfg := c.cfg()
	if cfg.MinSources > 0 {
		return cfg.MinSources
	}
	n := len(cfg.Servers)
	for _, p := range c.pools {
		if p.resolved {
			n += c.count(p)
		} else {
			n += cfg.PoolSize
		}
	}
	if n <= 1 {
		return 1
	}
	return n/2 + 1
}

// Start begins: lookups for names, and the initial burst on every source.
func (c *Client) Start() {
	if c.started {
		return
	}
	c.started = true
	now := c.env.Clock.Raw()
	for _, s := range c.sources {
		s.start(now)
	}
	for _, p := range c.pools {
		p.resolveAt = now
	}
	c.tickAll(now)
}

// PollNow asks every source for a short burst now (PollNowBurst queries
// BurstInterval apart), e.g. right after the clock was stepped or the
// network came up. A source with a query in flight starts when it is
// answered; one the server told to slow down (RATE) or refused (DENY)
// keeps to what the server asked.
func (c *Client) PollNow() {
	now := c.env.Clock.Raw()
	for _, s := range c.sources {
		s.pollNow(now)
	}
}

// SetPollLimit caps the adaptive poll interval below MaxPoll (0: no cap),
// for a consumer that knows how long the local clock stays predictable:
// polling less often than that lets its error grow unseen. A fixed poll
// and a server's RATE request still win.
func (c *Client) SetPollLimit(d time.Duration) { c.members.p.pollLimit = d }

// Tick does what is due and returns how long until the next thing is. The
// schedule is kept on CLOCK_MONOTONIC_RAW, but the caller waits on
// CLOCK_MONOTONIC, which slewing makes run up to 10 % fast or slow, so
// Tick asks to be woken early and re-checks.
func (c *Client) Tick() time.Duration {
	if !c.started {
		return idleWait
	}
	now := c.env.Clock.Raw()
	c.tickAll(now)
	next := time.Duration(-1)
	consider := func(at time.Duration) {
		if at >= 0 && (next < 0 || at < next) {
			next = at
		}
	}
	for _, p := range c.pools {
		consider(p.wake())
	}
	for _, s := range c.sources {
		consider(c.timers[s])
	}
	if next < 0 {
		return idleWait
	}
	return wakeEarly(next - now)
}

func wakeEarly(d time.Duration) time.Duration {
	if d <= 2*dueSlack {
		return max(d, dueSlack)
	}
	return d / 8 * 7
}

// tickAll gives every pool and source the time: lost answers become
// failures at their deadlines, and due lookups and queries start.
func (c *Client) tickAll(now time.Duration) {
	for _, p := range c.pools {
		if r, ok := p.due(now); ok {
			c.drv.resolve(p.name, 0, p, r)
		}
	}
	for _, s := range append([]*Source(nil), c.sources...) {
		c.apply(now, s, s.Tick(now))
	}
}

// apply does what s asked for and returns the estimate a new sample made.
func (c *Client) apply(now time.Duration, s *Source, acts []Action) *Estimate {
	var est *Estimate
	for _, a := range acts {
		switch a := a.(type) {
		case SendQuery:
			c.drv.query(s.name, s.id, a)
		case Resolve:
			c.drv.resolve(s.name, s.id, nil, a)
		case SetTimer:
			c.timers[s] = a.At
		case Demobilize:
			c.demobilize(now, s, a)
		case Report:
			c.sel = c.selectSources()
			est = c.sel.forSample(s, a.Sample)
		}
	}
	return est
}

func (c *Client) selectSources() selection {
	sel := selectSources(c.sources, c.MinSources(), c.cfg().MaxDistance)
	if sel.est != nil {
		sel.est.Details = reports(c.sources, c.pools, sel, sel.est.Raw, sel.est.RealMinusRaw)
	}
	return sel
}

// Handle takes one event from the loop. handled is false for events that
// are not the client's. est is non-nil when the event produced a new
// estimate that meets the quorum.
func (c *Client) Handle(ev any) (est *Estimate, handled bool) {
	switch ev := ev.(type) {
	case *queryDone:
		if ev.c != c {
			return nil, false
		}
		s := c.byID(ev.src)
		if s == nil {
			return nil, true // the source was replaced meanwhile
		}
		now := c.env.Clock.Raw()
		return c.apply(now, s, s.Handle(now, ReplyEvent{Query: ev.query, Reply: ev.r})), true
	case *resolved:
		if ev.c != c {
			return nil, false
		}
		now := c.env.Clock.Raw()
		if p := ev.pool; p != nil {
			if ev.lookup == p.lookup && p.lookup != 0 && c.hasPool(p) { // not dropped by SetSources meanwhile
				p.lookup = 0
				c.poolResolved(now, p, ev.addrs, ev.err)
			}
		} else if s := c.byID(ev.src); s != nil {
			c.apply(now, s, s.Handle(now, ResolvedEvent{Lookup: ev.lookup, Addrs: ev.addrs, Err: ev.err}))
		}
		c.tickAll(now)
		return nil, true
	}
	return nil, false
}

// Latest is the estimate of the latest selection, or nil and why there is
// none: the sources may have stopped agreeing since the last estimate.
func (c *Client) Latest() (*Estimate, string) {
	if c.sel.est == nil {
		return nil, c.sel.reason
	}
	est := *c.sel.est
	return &est, ""
}

// Reports is the state of every source now.
func (c *Client) Reports() []SourceReport {
	// Offsets are shown at the newest sample, where REALTIME − RAW is
	// known exactly; with no sample at all there are no offsets to show.
	at, rmr, _ := newest(c.sources, true)
	return reports(c.sources, c.pools, c.sel, at, rmr)
}

// Forget drops the samples every source holds and asks them all again at
// once (PollNow's burst). After a suspend, RAW stood still while true time
// went on: the servers' time against RAW jumped by the time asleep, so the
// old samples no longer fit the new ones; the new ones alone decide.
// Reachability and poll intervals are kept.
func (c *Client) Forget() {
	now := c.env.Clock.Raw()
	for _, s := range c.sources {
		s.filter = filter{}
		s.pollNow(now)
	}
	c.sel = selection{reason: "re-measuring after a suspend"}
}
