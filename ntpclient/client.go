package ntpclient

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"time"

	"slewd/clock"
)

// Defaults (see docs/ntpclient.md for why).
const (
	DefaultPoolSize      = 4
	DefaultMinPoll       = 64 * time.Second
	DefaultMaxPoll       = 1024 * time.Second
	DefaultBurst         = 6 // packets in a source's initial burst (the daemon)
	DefaultMeasureBurst  = 4 // samples per source for Measure
	DefaultBurstInterval = 2 * time.Second
	DefaultTimeout       = 2 * time.Second
	// MinPollFloor is the shortest poll interval outside the initial
	// burst: servers rate-limit faster clients (RFC 4330 §10 asks for at
	// least 15 s).
	MinPollFloor = 16 * time.Second
	// maxRatePoll caps how far kiss-of-death RATE lengthens a poll
	// (MAXPOLL 17, RFC 5905 §7.2: about 36 h).
	maxRatePoll = (1 << 17) * time.Second
	// jiggleLimit is RFC 5905's LIMIT for the poll-adjust counter (A.5.5.7).
	jiggleLimit = 30
	// A dead source's name is looked up again after these many queries
	// without an answer; DNS failures retry from dnsRetryMin doubling to
	// dnsRetryMax.
	deadAfter   = 8
	dnsRetryMin = 2 * time.Second
	dnsRetryMax = 10 * time.Minute
	dnsTimeout  = 10 * time.Second
	// idleWait is what Tick returns when nothing is scheduled.
	idleWait = time.Hour
)

// Config says which servers to use and how.
type Config struct {
	// Servers and Pools are specs as ParseSource accepts them. A pool
	// name resolves to several addresses, PoolSize of which are used.
	Servers  []string
	Pools    []string
	PoolSize int // 0: DefaultPoolSize

	// MinPoll and MaxPoll bound the adaptive poll interval (0: 64 s and
	// 1024 s); FixedPoll, if set, replaces it. None may be below 16 s.
	MinPoll, MaxPoll, FixedPoll time.Duration
	// Burst is the number of packets in each source's initial burst, sent
	// BurstInterval apart (0: DefaultBurst, or DefaultMeasureBurst for
	// Measure, which takes exactly Burst samples per source).
	Burst         int
	BurstInterval time.Duration
	// MinSources is the quorum: how many sources must agree for an
	// estimate. 0: 1 if a single server is configured, else a majority
	// of the configured sources (a pool counts PoolSize until it resolves,
	// then its members).
	MinSources int
	// Timeout is how long a query waits for its answer (0: 2 s).
	Timeout time.Duration
	// MaxDistance is the largest root distance a source may have to be
	// selected (0: 1.5 s).
	MaxDistance time.Duration
	// Auth, if set, authenticates every query with this symmetric key.
	Auth *Key
}

// Env is what the client runs on: real time and UDP, or a simulation.
type Env struct {
	Clock    clock.Clock
	Loop     clock.Loop
	Dialer   Dialer   // nil: UDP
	Resolver Resolver // nil: net.DefaultResolver
	Logger   *slog.Logger
	Rand     *rand.Rand // nil: seeded from crypto/rand
	// SimulatedTime makes queries timestamp with Clock.Now (beevik's
	// GetSystemTime) instead of the kernel's receive timestamps.
	SimulatedTime bool
}

// Client measures the local clock against its sources. It is driven by
// one goroutine: Start, then Tick and Handle from an event loop; helper
// goroutines (queries, lookups) post their results to Env.Loop.
type Client struct {
	cfg        Config
	env        Env
	log        *slog.Logger
	rng        *rand.Rand
	minSources int
	configured int
	oneShot    bool // Measure: Burst queries per source, then stop

	sources []*source
	pools   []*pool
	nextID  uint64
	started bool

	lastEst    *Estimate
	lastSel    map[*source]selInfo
	pollLimit  time.Duration             // SetPollLimit
	lastPhase  map[*source]time.Duration // each candidate's filtered phase in the last selection
	lastReason string                    // why the last selection gave no estimate
}

type selInfo struct {
	selected bool
	reason   string
}

// source is one server address being polled.
type source struct {
	id   uint64
	spec Spec
	name string // spec.String(): the source as configured, with port
	pool *pool  // nil for a configured server
	addr string // IP:PORT queried; "" until resolved

	resolving bool
	resolveAt time.Duration // RAW time of the next lookup (servers by name)
	backoff   time.Duration
	dnsErr    string

	filter   filter
	floor    delayFloor
	reach    uint8
	queries  int
	replies  int
	misses   int // consecutive queries without an answer
	burst    int // queries left in the initial burst
	poll     time.Duration
	jiggle   int
	rateMin  time.Duration // lower bound set by kiss-of-death RATE
	next     time.Duration // RAW time the next query is due
	lastSent time.Duration
	inflight bool
	done     bool // one-shot: all queries made
	recheck  bool // the latest sample was suppressed as a spike: look again soon

	stopped string // permanent: why queries stopped (DENY, RSTR)
	status  string // why the latest reply makes the source unusable
	lastErr string // the latest failure, for reports
	lastBad bool   // the latest failure was a bad answer, not silence
	kiss    string
	last    Sample // header fields of the latest answer
}

// pool is a pool name and the sources it expanded to.
type pool struct {
	spec      Spec
	name      string
	resolving bool
	resolveAt time.Duration // RAW; <0: no lookup wanted
	backoff   time.Duration
	dnsErr    string
	banned    map[string]string // address → why it may not come back (DENY)
	resolved  bool              // a lookup has given addresses
}

// Events posted by helpers.
type (
	queryDone struct {
		c   *Client
		src *source
		r   reply
	}
	resolved struct {
		c     *Client
		src   *source // a server by name
		pool  *pool
		addrs []string
		err   error
	}
)

// NewClient checks cfg and returns a client that has not started.
func NewClient(cfg Config, env Env) (*Client, error) {
	return newClient(cfg, env, false)
}

func newClient(cfg Config, env Env, oneShot bool) (*Client, error) {
	if env.Clock == nil || env.Loop == nil {
		return nil, errors.New("ntpclient: Env needs a Clock and a Loop")
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = DefaultPoolSize
	}
	if cfg.PoolSize < 1 {
		return nil, fmt.Errorf("pool size %d: use at least 1", cfg.PoolSize)
	}
	cfg.MinPoll = orDefault(cfg.MinPoll, DefaultMinPoll)
	cfg.MaxPoll = orDefault(cfg.MaxPoll, DefaultMaxPoll)
	cfg.BurstInterval = orDefault(cfg.BurstInterval, DefaultBurstInterval)
	cfg.Timeout = orDefault(cfg.Timeout, DefaultTimeout)
	cfg.MaxDistance = orDefault(cfg.MaxDistance, DefaultMaxDistance)
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
		if oneShot {
			cfg.Burst = DefaultMeasureBurst
		}
	}
	for _, p := range []struct {
		name string
		v    time.Duration
	}{{"min poll", cfg.MinPoll}, {"max poll", cfg.MaxPoll}, {"fixed poll", cfg.FixedPoll}} {
		if p.v != 0 && p.v < MinPollFloor {
			return nil, fmt.Errorf("%s %v is below %v: servers rate-limit clients that poll faster; use at least %v", p.name, p.v, MinPollFloor, MinPollFloor)
		}
	}
	switch {
	case cfg.MaxPoll < cfg.MinPoll:
		return nil, fmt.Errorf("max poll %v is below min poll %v", cfg.MaxPoll, cfg.MinPoll)
	case cfg.Burst < 1:
		return nil, fmt.Errorf("burst %d: use at least 1 packet", cfg.Burst)
	case cfg.BurstInterval < 0 || cfg.Timeout < 0:
		return nil, errors.New("burst interval and timeout must be positive")
	}
	if cfg.Auth != nil {
		if _, ok := KeyTypes[cfg.Auth.Type]; !ok {
			return nil, fmt.Errorf("key %d: unknown type %q", cfg.Auth.ID, cfg.Auth.Type)
		}
	}

	c := &Client{cfg: cfg, env: env, log: env.Logger, rng: env.Rand, oneShot: oneShot}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.rng == nil {
		var seed [16]byte
		crand.Read(seed[:])
		c.rng = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	if c.env.Resolver == nil {
		c.env.Resolver = net.DefaultResolver
	}
	seen := map[string]bool{}
	for _, text := range cfg.Servers {
		sp, err := ParseSource(text)
		if err != nil {
			return nil, fmt.Errorf("server %w", err)
		}
		if seen[sp.String()] {
			return nil, fmt.Errorf("server %s is configured twice", sp)
		}
		seen[sp.String()] = true
		s := c.newSource(sp, nil)
		if sp.IsIP() {
			s.addr = sp.String()
		}
		c.sources = append(c.sources, s)
	}
	for _, text := range cfg.Pools {
		sp, err := ParseSource(text)
		if err != nil {
			return nil, fmt.Errorf("pool %w", err)
		}
		if seen[sp.String()] {
			return nil, fmt.Errorf("pool %s is configured twice", sp)
		}
		seen[sp.String()] = true
		c.pools = append(c.pools, &pool{spec: sp, name: sp.String(), resolveAt: -1, banned: map[string]string{}})
	}
	c.configured = len(cfg.Servers) + len(cfg.Pools)*cfg.PoolSize
	if c.configured == 0 {
		return nil, errors.New("no NTP servers configured: give at least one server (HOST, HOST:PORT, [IPv6]:PORT) or pool")
	}
	c.minSources = cfg.MinSources
	switch {
	case c.minSources < 0:
		return nil, fmt.Errorf("min sources %d: use 0 (automatic) or more", cfg.MinSources)
	case c.minSources > c.configured:
		return nil, fmt.Errorf("min sources %d exceeds the %d configured sources: lower it or add servers", c.minSources, c.configured)
	}
	return c, nil
}

func orDefault(v, d time.Duration) time.Duration {
	if v == 0 {
		return d
	}
	return v
}

func (c *Client) newSource(sp Spec, p *pool) *source {
	c.nextID++
	return &source{id: c.nextID, spec: sp, name: sp.String(), pool: p, poll: c.cfg.MinPoll, burst: c.cfg.Burst, resolveAt: -1}
}

// MinSources is the quorum in force: --min-sources when set, else 1 for a
// single source and a majority of the sources otherwise. A pool counts
// PoolSize until its name resolves, then the members it really has, so a
// pool name with fewer addresses can still reach its quorum.
func (c *Client) MinSources() int {
	if c.minSources > 0 {
		return c.minSources
	}
	n := len(c.cfg.Servers)
	for _, p := range c.pools {
		if !p.resolved {
			n += c.cfg.PoolSize
			continue
		}
		for _, s := range c.sources {
			if s.pool == p {
				n++
			}
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
		s.next = now
		if s.addr == "" {
			s.resolveAt = now
		}
	}
	for _, p := range c.pools {
		p.resolveAt = now
	}
	c.launchDue(now)
}

// PollNow makes every source's next query due now (a network that just
// came up, a test). It does not restart bursts or undo backoffs, and
// never puts a second query to a source in flight.
func (c *Client) PollNow() {
	now := c.env.Clock.Raw()
	for _, s := range c.sources {
		s.next = min(s.next, now)
	}
}

// Tick does what is due and returns how long until the next thing is. The
// schedule is kept on CLOCK_MONOTONIC_RAW, but the caller waits on
// CLOCK_MONOTONIC, which slewing makes run up to 10 % fast or slow, so
// Tick asks to be woken early and re-checks.
func (c *Client) Tick() time.Duration {
	if !c.started {
		return idleWait
	}
	now := c.env.Clock.Raw()
	c.launchDue(now)
	next, any := time.Duration(0), false
	consider := func(t time.Duration) {
		if !any || t < next {
			next, any = t, true
		}
	}
	for _, s := range c.sources {
		if !s.resolving && s.resolveAt >= 0 {
			consider(s.resolveAt)
		}
		if s.queryable() {
			consider(s.next)
		}
	}
	for _, p := range c.pools {
		if !p.resolving && p.resolveAt >= 0 {
			consider(p.resolveAt)
		}
	}
	if !any {
		return idleWait
	}
	return wakeEarly(next - now)
}

// dueSlack is how early something may be done rather than waited for.
const dueSlack = time.Millisecond

func wakeEarly(d time.Duration) time.Duration {
	if d <= 2*dueSlack {
		return max(d, dueSlack)
	}
	return d / 8 * 7
}

// launchDue starts every lookup and query that is due.
func (c *Client) launchDue(now time.Duration) {
	for _, p := range c.pools {
		if !p.resolving && p.resolveAt >= 0 && p.resolveAt <= now+dueSlack {
			c.launchResolve(nil, p)
		}
	}
	for _, s := range c.sources {
		if !s.resolving && s.resolveAt >= 0 && s.resolveAt <= now+dueSlack {
			c.launchResolve(s, nil)
		}
		if s.queryable() && s.next <= now+dueSlack {
			c.launchQuery(s, now)
		}
	}
}

// queryable says whether the source has a query to make (now or later).
func (s *source) queryable() bool {
	return s.addr != "" && !s.inflight && s.stopped == "" && !s.done
}

func (c *Client) launchResolve(s *source, p *pool) {
	host := ""
	if s != nil {
		s.resolving, host = true, s.spec.Host
	} else {
		p.resolving, host = true, p.spec.Host
	}
	res, loop := c.env.Resolver, c.env.Loop
	loop.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dnsTimeout)
		addrs, err := res.LookupHost(ctx, host)
		cancel()
		loop.Post(&resolved{c: c, src: s, pool: p, addrs: addrs, err: err})
	})
}

func (c *Client) launchQuery(s *source, now time.Duration) {
	s.inflight = true
	s.queries++
	s.lastSent = now
	if s.burst > 0 {
		s.burst--
	}
	p := queryParams{
		source:    s.name,
		addr:      s.addr,
		timeout:   c.cfg.Timeout,
		auth:      c.cfg.Auth,
		dialer:    c.env.Dialer,
		clock:     c.env.Clock,
		simulated: c.env.SimulatedTime,
	}
	loop := c.env.Loop
	loop.Go(func() {
		r := query(p)
		loop.Post(&queryDone{c: c, src: s, r: r})
	})
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
		if !c.has(ev.src) {
			return nil, true // the source was replaced meanwhile
		}
		return c.onReply(ev.src, ev.r), true
	case *resolved:
		if ev.c != c {
			return nil, false
		}
		if ev.pool != nil {
			if c.hasPool(ev.pool) { // not dropped by SetSources meanwhile
				c.onPoolResolved(ev.pool, ev.addrs, ev.err)
			}
		} else if c.has(ev.src) {
			c.onServerResolved(ev.src, ev.addrs, ev.err)
		}
		c.launchDue(c.env.Clock.Raw())
		return nil, true
	}
	return nil, false
}

func (c *Client) has(s *source) bool {
	for _, x := range c.sources {
		if x == s {
			return true
		}
	}
	return false
}

// onReply updates a source with the outcome of its query and schedules
// the next one.
func (c *Client) onReply(s *source, r reply) *Estimate {
	now := c.env.Clock.Raw()
	s.inflight = false
	log := c.log.With("source", s.name, "addr", s.addr)
	answered := r.kind == replySample || r.kind == replyKiss || r.kind == replyUnsync
	wasReachable := s.reach != 0
	s.reach <<= 1
	if answered {
		s.reach |= 1
		s.replies++
		s.misses = 0
		s.last = r.sample
		s.lastErr = ""
	} else {
		s.misses++
		s.lastErr, s.lastBad = r.detail, r.kind == replyBad
	}

	var est *Estimate
	switch r.kind {
	case replySample:
		s.status, s.kiss = "", ""
		// A server that answers normally again gets polled faster again,
		// halving the RATE backoff per answer.
		if s.rateMin /= 2; s.rateMin < MinPollFloor {
			s.rateMin = 0
		}
		res := s.filter.add(r.sample)
		s.recheck = res == spike
		if res <= spike {
			s.floor.add(r.sample.Raw, r.sample.Delay)
		}
		c.adaptPoll(s, res)
		if res <= spike {
			log.Debug("sample", "offset", r.sample.Offset, "delay", r.sample.Delay, "filter", res)
		}
		if res < spike {
			est = c.estimate()
			// Only a sample that takes part in the estimate makes a new
			// one: a falseticker's or a far source's sample adds nothing
			// but the others' projection to a later time.
			if est != nil && !c.lastSel[s].selected {
				est = nil
			}
			if est != nil {
				est.Sample = r.sample
				least, slack := s.floor.floor()
				est.SampleBound = (max(r.sample.Delay-least, 0) + slack) / 2
				est.SampleBias = c.lastPhase[s] - est.Phase()
			}
		}
	case replyKiss:
		s.kiss = r.kiss
		switch r.kiss {
		case "RATE":
			// RFC 5905 §7.4: the server asks us to slow down. End the
			// burst and poll at least four times less often (chrony),
			// and no more often than the server's own poll says.
			s.burst = 0
			s.rateMin = min(max(4*c.interval(s), r.poll, s.rateMin), maxRatePoll)
			log.Warn("kiss-of-death RATE: polling less often", "poll", c.interval(s))
		case "DENY", "RSTR":
			s.stopped = fmt.Sprintf("kiss-of-death %s: the server refuses to serve us; queries to it stopped", r.kiss)
			log.Warn("kiss-of-death: no more queries to this server", "code", r.kiss)
			if s.pool != nil {
				s.pool.banned[s.addr] = s.stopped
			}
		default:
			s.status = fmt.Sprintf("kiss-of-death %s: not usable until it answers normally", r.kiss)
			log.Info("kiss-of-death", "code", r.kiss)
		}
	case replyUnsync:
		s.status = r.detail
		log.Debug("server not synchronized", "why", r.detail)
	case replyTimeout, replyBad:
		if !s.inBurst() && c.cfg.FixedPoll == 0 && s.misses >= 2 {
			// RFC 4330 §10: back off exponentially while the server is silent.
			s.poll = min(2*s.poll, c.cfg.MaxPoll)
		}
		if wasReachable && s.reach == 0 {
			log.Warn("source unreachable", "last", r.detail)
		} else {
			log.Debug("query failed", "why", r.detail)
		}
	}

	c.schedule(s, now)
	if c.dead(s) {
		c.onDeath(s, now)
	}
	return est
}

// inBurst says whether the source is still in its initial burst.
func (s *source) inBurst() bool { return s.burst > 0 }

// adaptPoll is RFC 5905's poll-adjust (A.5.5.7), per source: the interval
// doubles after samples keep fitting the filter's prediction and halves
// when they stop.
func (c *Client) adaptPoll(s *source, res addResult) {
	if s.inBurst() || c.cfg.FixedPoll != 0 {
		return
	}
	exp := pollExp(s.poll)
	switch res {
	case addedFit:
		s.jiggle += exp
		if s.jiggle > jiggleLimit {
			s.jiggle = 0
			s.poll = min(2*s.poll, c.cfg.MaxPoll)
		}
	case addedOff, spike:
		s.jiggle -= 2 * exp
		if s.jiggle < -jiggleLimit {
			s.jiggle = 0
			s.poll = max(s.poll/2, c.cfg.MinPoll)
		}
	}
}

func pollExp(d time.Duration) int {
	e := 0
	for s := d / time.Second; s > 1; s >>= 1 {
		e++
	}
	return e
}

// interval is the time between polls after the burst.
func (c *Client) interval(s *source) time.Duration {
	d := s.poll
	if c.cfg.FixedPoll != 0 {
		d = c.cfg.FixedPoll
	} else if c.pollLimit > 0 && s.reach != 0 {
		d = min(d, max(c.pollLimit, c.cfg.MinPoll))
	}
	return max(d, s.rateMin)
}

// SetPollLimit caps the adaptive poll interval below MaxPoll (0: no cap),
// for a consumer that knows how long the local clock stays predictable:
// polling less often than that lets its error grow unseen. A fixed poll
// and a server's RATE request still win.
func (c *Client) SetPollLimit(d time.Duration) { c.pollLimit = d }

func (c *Client) schedule(s *source, now time.Duration) {
	switch {
	case s.stopped != "":
		return
	case c.oneShot && s.burst == 0:
		s.done = true
		return
	case s.inBurst():
		s.next = max(s.lastSent+c.cfg.BurstInterval, now)
	default:
		d := c.interval(s)
		if s.recheck && c.cfg.FixedPoll == 0 {
			// A sample far from the prediction is either a spike or the
			// first sign that the clock has drifted more than expected over
			// a long poll; waiting a whole interval to tell which doubles
			// the time it runs uncorrected.
			d = max(min(d, c.cfg.MinPoll), s.rateMin)
		}
		if c.cfg.FixedPoll == 0 && s.rateMin == 0 {
			// A little randomness keeps many clients from polling in step.
			d += time.Duration(c.rng.Int64N(int64(d/32) + 1))
		}
		s.next = max(s.lastSent+d, now)
	}
}

// dead says whether a source should be replaced: refused, or silent for
// deadAfter queries.
func (c *Client) dead(s *source) bool {
	return s.stopped != "" || (s.misses >= deadAfter && s.reach == 0)
}

// onDeath asks for a new address: the pool's name is looked up again to
// replace the member, a server's name in case its address changed.
func (c *Client) onDeath(s *source, now time.Duration) {
	if c.oneShot {
		return
	}
	if p := s.pool; p != nil {
		if !p.resolving && p.resolveAt < 0 {
			p.resolveAt = now
			c.log.Info("pool member dead, looking the pool up again", "pool", p.name, "addr", s.addr)
		}
		return
	}
	if !s.spec.IsIP() && s.stopped == "" && s.resolveAt < 0 && !s.resolving {
		s.resolveAt = now
	}
}

func (c *Client) onServerResolved(s *source, addrs []string, err error) {
	now := c.env.Clock.Raw()
	s.resolving = false
	if err != nil || len(addrs) == 0 {
		if err == nil {
			err = errors.New("no addresses")
		}
		s.backoff = min(max(2*s.backoff, dnsRetryMin), dnsRetryMax)
		s.dnsErr = fmt.Sprintf("DNS lookup of %s failed: %v (retrying in %v)", s.spec.Host, err, s.backoff)
		s.resolveAt = now + s.backoff
		c.log.Warn("DNS lookup failed", "source", s.name, "err", err, "retry", s.backoff)
		return
	}
	s.backoff, s.dnsErr, s.resolveAt = 0, "", -1
	addr := net.JoinHostPort(addrs[0], fmt.Sprint(s.spec.Port))
	if addr == s.addr {
		return
	}
	if s.addr != "" {
		c.log.Info("server address changed", "source", s.name, "from", s.addr, "to", addr)
		*s = *c.fresh(s)
	}
	s.addr, s.next = addr, now
}

// fresh is a new source with s's identity but none of its history.
func (c *Client) fresh(s *source) *source {
	n := c.newSource(s.spec, s.pool)
	n.id = s.id
	return n
}

func (c *Client) onPoolResolved(p *pool, addrs []string, err error) {
	now := c.env.Clock.Raw()
	p.resolving = false
	if err != nil || len(addrs) == 0 {
		if err == nil {
			err = errors.New("no addresses")
		}
		p.backoff = min(max(2*p.backoff, dnsRetryMin), dnsRetryMax)
		p.dnsErr = fmt.Sprintf("DNS lookup of pool %s failed: %v (retrying in %v)", p.spec.Host, err, p.backoff)
		p.resolveAt = now + p.backoff
		c.log.Warn("DNS lookup failed", "pool", p.name, "err", err, "retry", p.backoff)
		return
	}
	p.dnsErr = ""
	p.resolved = true
	inUse := map[string]bool{}
	live := 0
	var dead []*source
	for _, s := range c.sources {
		inUse[s.addr] = true
		if s.pool == p {
			if c.dead(s) {
				dead = append(dead, s)
			} else {
				live++
			}
		}
	}
	var fresh []string
	for _, a := range addrs {
		addr := net.JoinHostPort(a, fmt.Sprint(p.spec.Port))
		if !inUse[addr] && p.banned[addr] == "" {
			fresh = append(fresh, addr)
			inUse[addr] = true
		}
	}
	for _, addr := range fresh {
		if live >= c.cfg.PoolSize {
			break
		}
		if len(dead) > 0 { // replace a dead member
			c.remove(dead[0])
			dead = dead[1:]
		}
		s := c.newSource(p.spec, p)
		s.addr, s.next = addr, now
		c.sources = append(c.sources, s)
		live++
		c.log.Info("pool member added", "pool", p.name, "addr", addr)
	}
	p.resolveAt = -1
	if live < c.cfg.PoolSize && !c.oneShot {
		// Not enough addresses yet: ask again later, less and less often.
		p.backoff = min(max(2*p.backoff, dnsRetryMin), dnsRetryMax)
		p.resolveAt = now + p.backoff
	} else {
		p.backoff = 0
	}
}

func (c *Client) remove(s *source) {
	for i, x := range c.sources {
		if x == s {
			c.sources = append(c.sources[:i], c.sources[i+1:]...)
			return
		}
	}
}

// estimate runs selection over the sources at the RAW time of the newest
// sample, and records every source's part in it. It returns the estimate
// if the quorum is met.
func (c *Client) estimate() *Estimate {
	at, rmr, ok := c.newest(false)
	c.lastSel = map[*source]selInfo{}
	c.lastPhase = map[*source]time.Duration{}
	if !ok {
		c.lastReason = "no usable source"
		c.lastEst = nil
		return nil
	}
	var cands []Candidate
	var who []*source
	for _, s := range c.sources {
		reason := c.unusable(s)
		if reason != "" {
			c.lastSel[s] = selInfo{reason: reason}
			continue
		}
		out := s.filter.output(at)
		c.lastPhase[s] = out.Phase
		lambda := rootDistance(out)
		if lambda > c.cfg.MaxDistance {
			c.lastSel[s] = selInfo{reason: fmt.Sprintf("root distance %v exceeds the maximum %v", lambda.Round(time.Microsecond), c.cfg.MaxDistance)}
			continue
		}
		cands = append(cands, Candidate{Phase: out.Phase, RootDistance: lambda, Jitter: out.Jitter, Stratum: out.Best.Stratum, Leap: s.last.Leap})
		who = append(who, s)
	}
	sel := Select(cands, c.MinSources())
	c.lastReason = ""
	for i, s := range who {
		c.lastSel[s] = selInfo{selected: sel.Selected[i], reason: sel.Reasons[i]}
	}
	if !sel.OK {
		// The estimate is what the sources say now: an earlier one that
		// they no longer agree on must not outlive the agreement.
		c.lastReason = sel.Reason
		c.lastEst = nil
		return nil
	}
	est := &Estimate{
		Raw:          at,
		Offset:       sel.Phase - rmr,
		RealMinusRaw: rmr,
		Error:        sel.Error,
		Jitter:       sel.Jitter,
		Sources:      sel.Sources,
		Stratum:      sel.Stratum,
		Leap:         sel.Leap,
	}
	est.Details = c.reports(at, rmr)
	c.lastEst = est
	return est
}

// rootDistance is λ (RFC 5905 §11.2): the server's root delay/2 and root
// dispersion, plus our delay/2, dispersion and jitter.
func rootDistance(out filterOut) time.Duration {
	return out.Best.RootDelay/2 + out.Best.RootDispersion + out.Delay/2 + out.Dispersion + out.Jitter
}

// newest is the RAW time and REALTIME − RAW of the newest sample of any
// usable source (of any source at all if all is set).
func (c *Client) newest(all bool) (at, rmr time.Duration, ok bool) {
	for _, s := range c.sources {
		if s.filter.len() > 0 && (all || c.unusable(s) == "") {
			if last := s.filter.newest(); !ok || last.Raw > at {
				at, rmr, ok = last.Raw, last.RealMinusRaw, true
			}
		}
	}
	return
}

// unusable says why a source cannot be offered to selection, or "".
func (c *Client) unusable(s *source) string {
	switch {
	case s.stopped != "":
		return s.stopped
	case s.addr == "" && s.dnsErr != "":
		return s.dnsErr
	case s.addr == "":
		return "not resolved yet"
	case s.status != "":
		return s.status
	case s.reach == 0 && s.lastErr != "" && s.lastBad:
		return "no usable reply: " + s.lastErr
	case s.reach == 0 && s.lastErr != "":
		return "unreachable: " + s.lastErr
	case s.reach == 0:
		return "no reply yet"
	case s.filter.len() == 0 && s.kiss != "":
		return fmt.Sprintf("kiss-of-death %s and no sample yet (polling every %v)", s.kiss, c.interval(s))
	case s.filter.len() == 0:
		return "no usable sample yet"
	}
	return ""
}

// Reports is the state of every source now.
func (c *Client) Reports() []SourceReport {
	// Offsets are shown at the newest sample, where REALTIME − RAW is
	// known exactly; with no sample at all there are no offsets to show.
	at, rmr, _ := c.newest(true)
	return c.reports(at, rmr)
}

func (c *Client) reports(at, rmr time.Duration) []SourceReport {
	out := make([]SourceReport, 0, len(c.sources)+len(c.pools))
	for _, s := range c.sources {
		r := SourceReport{
			Source:   s.name,
			Addr:     s.addr,
			Stratum:  s.last.Stratum,
			RefID:    s.last.RefID,
			Leap:     s.last.Leap,
			KissCode: s.kiss,
			Reach:    s.reach,
			Poll:     c.interval(s),
		}
		if s.filter.len() > 0 {
			f := s.filter.output(at)
			r.Offset = f.Phase - rmr
			r.Delay = f.Delay
			r.Dispersion = f.Dispersion
			r.Jitter = f.Jitter
			r.RootDistance = rootDistance(f)
			r.Samples = f.N
		}
		if u := c.unusable(s); u != "" {
			r.Reason = u
		} else if info, ok := c.lastSel[s]; ok {
			r.Selected, r.Reason = info.selected, info.reason
		}
		if !r.Selected && r.Reason == "" {
			r.Reason = "not selected yet"
		}
		out = append(out, r)
	}
	for _, p := range c.pools {
		members := 0
		for _, s := range c.sources {
			if s.pool == p {
				members++
			}
		}
		if members == 0 {
			reason := "pool not resolved yet"
			if p.dnsErr != "" {
				reason = p.dnsErr
			}
			out = append(out, SourceReport{Source: p.name, Reason: reason})
		}
	}
	return out
}

// NoEstimateError is Measure's error when the sources do not give an
// estimate: why, and every source's state.
type NoEstimateError struct {
	Reason  string
	Details []SourceReport
}

func (e *NoEstimateError) Error() string {
	var b strings.Builder
	b.WriteString("no estimate: ")
	b.WriteString(e.Reason)
	for _, d := range e.Details {
		if !d.Selected {
			fmt.Fprintf(&b, "; %s: %s", d.Source, d.Reason)
		}
	}
	return b.String()
}
