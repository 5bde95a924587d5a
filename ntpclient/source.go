package ntpclient

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"time"
)

// A Source is one NTP server address being polled, as a state machine:
// Handle takes an event and the current CLOCK_MONOTONIC_RAW time and
// returns the actions to take. It starts no goroutine, opens no socket
// and never sleeps; the client's driver does what the actions say and
// turns the outcome into the next event.
//
// Every query and lookup it asks for carries an id and a deadline. A
// reply or lookup result that is not the one in flight (duplicated, or
// late after its deadline) is ignored, and one that never comes is a
// timeout at its deadline, so no lost, duplicated or late event can stop
// the polling.
type Source struct {
	p    *sourceParams
	id   uint64
	spec Spec
	name string // spec.String(): the source as configured, with port
	pool *pool  // nil for a configured server
	addr string // IP:PORT queried; "" until resolved

	// The query in flight (0: none), and when it counts as unanswered.
	query     uint64
	deadline  time.Duration
	lastQuery uint64 // the newest query id given out

	// A server by name: its lookup in flight (0: none) and the next one.
	lookup     uint64
	lookupBy   time.Duration
	lastLookup uint64
	resolveAt  time.Duration // RAW time of the next lookup; <0: none wanted
	backoff    time.Duration
	dnsErr     string

	filter   filter
	floor    delayFloor
	reach    uint8
	queries  int
	replies  int
	kisses   int // kiss-of-death answers, for the metrics
	misses   int // consecutive queries without an answer
	burst    int // queries left in the burst
	poll     time.Duration
	jiggle   int
	rateMin  time.Duration // lower bound set by kiss-of-death RATE
	next     time.Duration // RAW time the next query is due
	lastSent time.Duration
	done     bool // one-shot: all queries made
	recheck  bool // the latest sample was suppressed as a spike: look again soon

	stopped string // permanent: why queries stopped (DENY, RSTR)
	status  string // why the latest reply makes the source unusable
	lastErr string // the latest failure, for reports
	lastBad bool   // the latest failure was a bad answer, not silence
	kiss    string
	last    Sample // header fields of the latest answer
}

// sourceParams is what every source of one client shares.
type sourceParams struct {
	cfg       Config // with defaults
	oneShot   bool   // Measure: Burst queries per source, then stop
	pollLimit time.Duration
	rng       *rand.Rand
	log       *slog.Logger
}

// Events a Source handles.
type (
	// ReplyEvent is the answer to query Query, received (t4) inside it.
	ReplyEvent struct {
		Query uint64
		Reply reply
	}
	// TimeoutEvent says query Query got no answer: the socket's own
	// timeout, or its deadline passed with no event.
	TimeoutEvent struct {
		Query  uint64
		Detail string
	}
	// TimerEvent says time has passed: do what is due.
	TimerEvent struct{}
	// ResolvedEvent is the result of lookup Lookup.
	ResolvedEvent struct {
		Lookup uint64
		Addrs  []string
		Err    error
	}
)

// Actions a Source asks for.
type (
	// SendQuery asks for one NTP exchange with Addr. Its outcome is a
	// ReplyEvent or TimeoutEvent for Query; none by Deadline (RAW) is a
	// timeout.
	SendQuery struct {
		Query    uint64
		Addr     string
		Deadline time.Duration
	}
	// SetTimer asks for a TimerEvent at RAW time At (the source's next
	// deadline or due query or lookup); At < 0: nothing is scheduled.
	SetTimer struct{ At time.Duration }
	// Resolve asks for the addresses of Host; the answer is a
	// ResolvedEvent for Lookup, none by Deadline (RAW) a failure.
	Resolve struct {
		Lookup   uint64
		Host     string
		Deadline time.Duration
	}
	// Demobilize says a pool member is dead (refused us, or silent for
	// deadAfter queries) and should be replaced. Ban: its address must
	// not come back.
	Demobilize struct {
		Reason string
		Ban    bool
	}
	// Report says Sample entered the clock filter and counts: selection
	// should run again.
	Report struct{ Sample Sample }
)

// dueSlack is how early something may be done rather than waited for.
const dueSlack = time.Millisecond

// Deadlines for an answer to arrive as an event: the driver's socket
// timeout runs on CLOCK_MONOTONIC, which slewing makes up to 10 % slow,
// so the state machine's own deadline on RAW allows for that and more.
func (p *sourceParams) queryDeadline(now time.Duration) time.Duration {
	return now + p.cfg.Timeout + p.cfg.Timeout/4 + 500*time.Millisecond
}

func lookupDeadline(now time.Duration) time.Duration {
	return now + dnsTimeout + dnsTimeout/4
}

func newSource(p *sourceParams, id uint64, sp Spec, pl *pool) *Source {
	return &Source{p: p, id: id, spec: sp, name: sp.String(), pool: pl, poll: p.cfg.MinPoll, burst: p.cfg.Burst, resolveAt: -1}
}

// Tick does what is due at now: Handle(now, TimerEvent{}).
func (s *Source) Tick(now time.Duration) []Action { return s.Handle(now, TimerEvent{}) }

// Handle takes one event at RAW time now and returns what to do. The last
// action is always a SetTimer.
func (s *Source) Handle(now time.Duration, ev Event) []Action {
	var acts []Action
	switch ev := ev.(type) {
	case ReplyEvent:
		if ev.Query != 0 && ev.Query == s.query {
			s.query = 0
			acts = s.onReply(now, ev.Reply)
		}
	case TimeoutEvent:
		if ev.Query != 0 && ev.Query == s.query {
			s.query = 0
			acts = s.onReply(now, reply{kind: replyTimeout, detail: ev.Detail})
		}
	case ResolvedEvent:
		if ev.Lookup != 0 && ev.Lookup == s.lookup {
			s.lookup = 0
			s.onResolved(now, ev.Addrs, ev.Err)
		}
	case TimerEvent:
	}
	acts = append(acts, s.due(now)...)
	return append(acts, SetTimer{At: s.wake()})
}

// Event is what Source.Handle takes: ReplyEvent, TimeoutEvent, TimerEvent
// or ResolvedEvent.
type Event any

// Action is what Source.Handle returns: SendQuery, SetTimer, Resolve,
// Demobilize or Report.
type Action any

// due expires what is overdue and starts what is due.
func (s *Source) due(now time.Duration) []Action {
	var acts []Action
	if s.query != 0 && now >= s.deadline {
		s.query = 0
		acts = append(acts, s.onReply(now, reply{kind: replyTimeout, detail: fmt.Sprintf("no reply within %v", s.p.cfg.Timeout)})...)
	}
	if s.lookup != 0 && now >= s.lookupBy {
		s.lookup = 0
		s.onResolved(now, nil, fmt.Errorf("no answer within %v", dnsTimeout))
	}
	if s.lookup == 0 && s.resolveAt >= 0 && s.resolveAt <= now+dueSlack {
		s.lastLookup++
		s.lookup, s.lookupBy = s.lastLookup, lookupDeadline(now)
		acts = append(acts, Resolve{Lookup: s.lookup, Host: s.spec.Host, Deadline: s.lookupBy})
	}
	if s.queryable() && s.next <= now+dueSlack {
		acts = append(acts, s.send(now))
	}
	return acts
}

func (s *Source) send(now time.Duration) SendQuery {
	s.lastQuery++
	s.query, s.deadline = s.lastQuery, s.p.queryDeadline(now)
	s.queries++
	s.lastSent = now
	if s.burst > 0 {
		s.burst--
	}
	return SendQuery{Query: s.query, Addr: s.addr, Deadline: s.deadline}
}

// wake is the RAW time of the next thing the source waits for, or -1.
func (s *Source) wake() time.Duration {
	at := time.Duration(-1)
	consider := func(t time.Duration) {
		if at < 0 || t < at {
			at = t
		}
	}
	if s.query != 0 {
		consider(s.deadline)
	}
	if s.lookup != 0 {
		consider(s.lookupBy)
	} else if s.resolveAt >= 0 {
		consider(s.resolveAt)
	}
	if s.queryable() {
		consider(s.next)
	}
	return at
}

// queryable says whether the source has a query to make (now or later).
func (s *Source) queryable() bool {
	return s.addr != "" && s.query == 0 && s.stopped == "" && !s.done
}

// start makes the first query (and lookup, for a name) due now.
func (s *Source) start(now time.Duration) {
	s.next = now
	if s.addr == "" {
		s.resolveAt = now
	}
}

// pollNow makes a short burst due now: after a clock step or a network
// change, a few quick samples say at once where the clock is. A server
// that asked us to slow down (RATE) gets only its next poll brought
// forward as far as it allows.
func (s *Source) pollNow(now time.Duration) {
	if s.stopped != "" || s.done {
		return
	}
	if s.rateMin > 0 {
		s.next = min(s.next, max(s.lastSent+s.rateMin, now))
		return
	}
	s.burst = max(s.burst, PollNowBurst)
	s.next = now
}

// onReply updates the source with the outcome of its query and schedules
// the next one.
func (s *Source) onReply(now time.Duration, r reply) []Action {
	var acts []Action
	log := s.p.log.With("source", s.name, "addr", s.addr)
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

	switch r.kind {
	case replySample:
		s.status, s.kiss = "", ""
		// A server that answers normally again gets polled faster again,
		// halving the RATE backoff per answer.
		if s.rateMin /= 2; s.rateMin < MinPollFloor {
			s.rateMin = 0
		}
		s.leap(r.sample.Raw)
		res := s.filter.add(r.sample)
		s.recheck = res == spike
		if res <= spike {
			s.floor.add(r.sample.Raw, r.sample.Delay)
			log.Debug("sample", "offset", r.sample.Offset, "delay", r.sample.Delay, "filter", res)
		}
		s.adaptPoll(res)
		if res < spike {
			acts = append(acts, Report{Sample: r.sample})
		}
	case replyKiss:
		s.kiss = r.kiss
		s.kisses++
		switch r.kiss {
		case "RATE":
			// RFC 5905 §7.4: the server asks us to slow down. End the
			// burst and poll at least four times less often (chrony),
			// and no more often than the server's own poll says.
			s.burst = 0
			s.rateMin = min(max(4*s.interval(), r.poll, s.rateMin), maxRatePoll)
			log.Warn("kiss-of-death RATE: polling less often", "poll", s.interval())
		case "DENY", "RSTR":
			s.stopped = fmt.Sprintf("kiss-of-death %s: the server refuses to serve us; queries to it stopped", r.kiss)
			log.Warn("kiss-of-death: no more queries to this server", "code", r.kiss)
		default:
			s.status = fmt.Sprintf("kiss-of-death %s: not usable until it answers normally", r.kiss)
			log.Info("kiss-of-death", "code", r.kiss)
		}
	case replyUnsync:
		s.status = r.detail
		log.Debug("server not synchronized", "why", r.detail)
	case replyTimeout, replyBad:
		if !s.inBurst() && s.p.cfg.FixedPoll == 0 && s.misses >= 2 {
			// RFC 4330 §10: back off exponentially while the server is silent.
			s.poll = min(2*s.poll, s.p.cfg.MaxPoll)
		}
		if wasReachable && s.reach == 0 {
			log.Warn("source unreachable", "last", r.detail)
		} else {
			log.Debug("query failed", "why", r.detail)
		}
	}

	s.schedule(now)
	if s.dead() {
		acts = append(acts, s.onDeath(now)...)
	}
	return acts
}

// inBurst says whether the source is still in a burst.
func (s *Source) inBurst() bool { return s.burst > 0 }

// adaptPoll is RFC 5905's poll-adjust (A.5.5.7), per source: the interval
// doubles after samples keep fitting the filter's prediction and halves
// when they stop.
func (s *Source) adaptPoll(res addResult) {
	if s.inBurst() || s.p.cfg.FixedPoll != 0 {
		return
	}
	exp := pollExp(s.poll)
	switch res {
	case addedFit:
		s.jiggle += exp
		if s.jiggle > jiggleLimit {
			s.jiggle = 0
			s.poll = min(2*s.poll, s.p.cfg.MaxPoll)
		}
	case addedOff, spike:
		s.jiggle -= 2 * exp
		if s.jiggle < -jiggleLimit {
			s.jiggle = 0
			s.poll = max(s.poll/2, s.p.cfg.MinPoll)
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
func (s *Source) interval() time.Duration {
	d := s.poll
	if s.p.cfg.FixedPoll != 0 {
		d = s.p.cfg.FixedPoll
	} else if s.p.pollLimit > 0 && s.reach != 0 {
		d = min(d, max(s.p.pollLimit, s.p.cfg.MinPoll))
	}
	return max(d, s.rateMin)
}

func (s *Source) schedule(now time.Duration) {
	switch {
	case s.stopped != "":
		return
	case s.p.oneShot && s.burst == 0:
		s.done = true
		return
	case s.inBurst():
		s.next = max(s.lastSent+s.p.cfg.BurstInterval, now)
	default:
		d := s.interval()
		if s.recheck && s.p.cfg.FixedPoll == 0 {
			// A sample far from the prediction is either a spike or the
			// first sign that the clock has drifted more than expected over
			// a long poll; waiting a whole interval to tell which doubles
			// the time it runs uncorrected.
			d = max(min(d, s.p.cfg.MinPoll), s.rateMin)
		}
		if s.p.cfg.FixedPoll == 0 && s.rateMin == 0 {
			// A little randomness keeps many clients from polling in step.
			d += time.Duration(s.p.rng.Int64N(int64(d/32) + 1))
		}
		s.next = max(s.lastSent+d, now)
	}
}

// dead says whether a source should be replaced: refused, or silent for
// deadAfter queries.
func (s *Source) dead() bool {
	return s.stopped != "" || (s.misses >= deadAfter && s.reach == 0)
}

// onDeath asks for a new address: a pool member is demobilized (the pool
// looks its name up again to replace it), a server's name is looked up
// again in case its address changed.
func (s *Source) onDeath(now time.Duration) []Action {
	if s.p.oneShot {
		return nil
	}
	if s.pool != nil {
		return []Action{Demobilize{Reason: s.stoppedOrSilent(), Ban: s.stopped != ""}}
	}
	if !s.spec.IsIP() && s.stopped == "" && s.resolveAt < 0 && s.lookup == 0 {
		s.resolveAt = now
	}
	return nil
}

func (s *Source) stoppedOrSilent() string {
	if s.stopped != "" {
		return s.stopped
	}
	return fmt.Sprintf("no answer to %d queries", s.misses)
}

func (s *Source) onResolved(now time.Duration, addrs []string, err error) {
	if err != nil || len(addrs) == 0 {
		if err == nil {
			err = errors.New("no addresses")
		}
		s.backoff = min(max(2*s.backoff, dnsRetryMin), dnsRetryMax)
		s.dnsErr = fmt.Sprintf("DNS lookup of %s failed: %v (retrying in %v)", s.spec.Host, err, s.backoff)
		s.resolveAt = now + s.backoff
		s.p.log.Warn("DNS lookup failed", "source", s.name, "err", err, "retry", s.backoff)
		return
	}
	s.backoff, s.dnsErr, s.resolveAt = 0, "", -1
	addr := net.JoinHostPort(addrs[0], fmt.Sprint(s.spec.Port))
	if addr == s.addr {
		return
	}
	if s.addr != "" {
		s.p.log.Info("server address changed", "source", s.name, "from", s.addr, "to", addr)
		s.reset()
	}
	s.addr, s.next = addr, now
}

// reset forgets the source's history (a new address), keeping its
// identity and its id counters, so that no answer to an old query or
// lookup can pass for one to a new.
func (s *Source) reset() {
	n := newSource(s.p, s.id, s.spec, s.pool)
	n.lastQuery, n.lastLookup = s.lastQuery, s.lastLookup
	*s = *n
}

// unusable says why the source cannot be offered to selection, or "".
func (s *Source) unusable() string {
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
		return fmt.Sprintf("kiss-of-death %s and no sample yet (polling every %v)", s.kiss, s.interval())
	case s.filter.len() == 0:
		return "no usable sample yet"
	}
	return ""
}
