package ntpclient

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// The state machine alone: events in, actions out, no I/O and no clock.

func testParams(cfg Config) *sourceParams {
	cfg.Servers = []string{"x"}
	cfg, err := cfg.withDefaults(false)
	if err != nil {
		panic(err)
	}
	return &sourceParams{cfg: cfg, rng: rand.New(rand.NewPCG(1, 2)), log: slog.New(slog.DiscardHandler)}
}

func testSource(cfg Config, host string) *Source {
	sp, err := ParseSource(host)
	if err != nil {
		panic(err)
	}
	s := newSource(testParams(cfg), 1, sp, nil)
	if sp.IsIP() && !sp.NTS {
		s.addr = sp.String()
	}
	s.start(0)
	return s
}

func good(raw time.Duration) reply {
	return reply{kind: replySample, sample: Sample{Offset: time.Millisecond, Delay: 10 * time.Millisecond, Raw: raw, Stratum: 2, Precision: time.Microsecond}}
}

// sends returns the SendQuery actions in acts.
func sends(acts []Action) []SendQuery {
	var out []SendQuery
	for _, a := range acts {
		if q, ok := a.(SendQuery); ok {
			out = append(out, q)
		}
	}
	return out
}

func timer(t *testing.T, acts []Action) time.Duration {
	t.Helper()
	if len(acts) == 0 {
		t.Fatal("no actions")
	}
	st, ok := acts[len(acts)-1].(SetTimer)
	if !ok {
		t.Fatalf("last action %T, want SetTimer", acts[len(acts)-1])
	}
	return st.At
}

func has[T any](acts []Action) bool {
	for _, a := range acts {
		if _, ok := a.(T); ok {
			return true
		}
	}
	return false
}

const addr = "192.0.2.1:123"

// deadline is the state machine's own deadline for an answer to a query
// sent at RAW 0 with the default 2 s timeout.
const deadline = 2*time.Second + 500*time.Millisecond + 500*time.Millisecond

func TestSourceActions(t *testing.T) {
	type step struct {
		at   time.Duration
		ev   Event
		want []Action
	}
	q := func(id uint64, at time.Duration) SendQuery {
		return SendQuery{Query: id, Addr: addr, Deadline: at + deadline}
	}
	smp := good(5 * time.Millisecond).sample
	cases := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"burst", Config{Burst: 2}, []step{
			{0, TimerEvent{}, []Action{q(1, 0), SetTimer{deadline}}},
			{5 * time.Millisecond, ReplyEvent{1, good(5 * time.Millisecond)}, []Action{Report{smp}, SetTimer{2 * time.Second}}},
			{2 * time.Second, TimerEvent{}, []Action{q(2, 2*time.Second), SetTimer{2*time.Second + deadline}}},
		}},
		{"reply to another query ignored", Config{}, []step{
			{0, TimerEvent{}, []Action{q(1, 0), SetTimer{deadline}}},
			{time.Millisecond, ReplyEvent{7, good(time.Millisecond)}, []Action{SetTimer{deadline}}},
			{time.Millisecond, ReplyEvent{0, good(time.Millisecond)}, []Action{SetTimer{deadline}}},
		}},
		{"lost reply is a timeout at the deadline", Config{Burst: 3}, []step{
			{0, TimerEvent{}, []Action{q(1, 0), SetTimer{deadline}}},
			{deadline - time.Millisecond, TimerEvent{}, []Action{SetTimer{deadline}}},
			// Timed out; the next burst query was due 2 s after the first.
			{deadline, TimerEvent{}, []Action{q(2, deadline), SetTimer{2 * deadline}}},
		}},
		{"timeout event", Config{Burst: 3}, []step{
			{0, TimerEvent{}, []Action{q(1, 0), SetTimer{deadline}}},
			{2 * time.Second, TimeoutEvent{1, "no reply"}, []Action{q(2, 2*time.Second), SetTimer{2*time.Second + deadline}}},
			{2 * time.Second, TimeoutEvent{1, "no reply"}, []Action{SetTimer{2*time.Second + deadline}}}, // duplicate
		}},
		{"lost timer: a late tick does what is due", Config{Burst: 3}, []step{
			{0, TimerEvent{}, []Action{q(1, 0), SetTimer{deadline}}},
			{time.Millisecond, ReplyEvent{1, good(time.Millisecond)}, []Action{Report{good(time.Millisecond).sample}, SetTimer{2 * time.Second}}},
			{time.Minute, TimerEvent{}, []Action{q(2, time.Minute), SetTimer{time.Minute + deadline}}},
		}},
		{"DENY stops queries", Config{}, []step{
			{0, TimerEvent{}, []Action{q(1, 0), SetTimer{deadline}}},
			{time.Millisecond, ReplyEvent{1, reply{kind: replyKiss, kiss: "DENY"}}, []Action{SetTimer{-1}}},
			{time.Hour, TimerEvent{}, []Action{SetTimer{-1}}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := testSource(c.cfg, addr)
			for i, st := range c.steps {
				got := s.Handle(st.at, st.ev)
				if !reflect.DeepEqual(got, st.want) {
					t.Fatalf("step %d (%T at %v):\n got %#v\nwant %#v", i, st.ev, st.at, got, st.want)
				}
			}
		})
	}
}

// A reply can be lost, duplicated or late; none of that may stop the
// polling, and a late or repeated answer must not count twice or pass for
// the answer to a newer query.
func TestSourceLostDuplicatedLateReplies(t *testing.T) {
	s := testSource(Config{Burst: 1, FixedPoll: 64 * time.Second}, addr)
	now := time.Duration(0)
	var inflight []SendQuery
	run := func(acts []Action) { inflight = append(inflight, sends(acts)...) }
	run(s.Tick(now))
	// Over 50 polls: every third reply lost, every fifth repeated, every
	// seventh arriving after its deadline (and after the next query).
	for i := 1; i <= 50; i++ {
		if len(inflight) != 1 {
			t.Fatalf("poll %d: %d queries in flight, want 1", i, len(inflight))
		}
		q := inflight[0]
		inflight = nil
		switch {
		case i%3 == 0: // lost
			now = q.Deadline
			run(s.Tick(now))
		case i%7 == 0: // late
			now = q.Deadline
			run(s.Tick(now))
			if len(inflight) == 0 {
				now = timer(t, s.Tick(now))
				run(s.Tick(now))
			}
			acts := s.Handle(now+time.Millisecond, ReplyEvent{q.Query, good(now)})
			if has[Report](acts) || len(sends(acts)) != 0 {
				t.Fatalf("poll %d: a late reply was taken: %#v", i, acts)
			}
			continue
		default:
			now += 10 * time.Millisecond
			run(s.Handle(now, ReplyEvent{q.Query, good(now)}))
			if i%5 == 0 {
				if acts := s.Handle(now, ReplyEvent{q.Query, good(now)}); has[Report](acts) {
					t.Fatalf("poll %d: a duplicated reply was taken twice", i)
				}
			}
		}
		if len(inflight) == 0 {
			at := timer(t, s.Tick(now))
			if at < 0 {
				t.Fatalf("poll %d: nothing scheduled", i)
			}
			now = at
			run(s.Tick(now))
		}
	}
	if s.queries != 51 {
		t.Errorf("%d queries, want 51", s.queries)
	}
	wantReplies := 0
	for i := 1; i <= 50; i++ {
		if i%3 != 0 && i%7 != 0 {
			wantReplies++
		}
	}
	if s.replies != wantReplies {
		t.Errorf("%d replies taken, want %d", s.replies, wantReplies)
	}
}

// A server by name: a lost lookup result fails at its deadline and the
// lookup is retried; a late or repeated result is ignored.
func TestSourceLostDuplicatedLateLookups(t *testing.T) {
	s := testSource(Config{}, "ntp.test")
	acts := s.Tick(0)
	r1, ok := acts[0].(Resolve)
	if !ok || r1.Host != "ntp.test" || r1.Lookup != 1 || len(sends(acts)) != 0 {
		t.Fatalf("start: %#v", acts)
	}
	// Lost: at the deadline it counts as failed and is retried after the backoff.
	acts = s.Tick(r1.Deadline)
	if at := timer(t, acts); at != r1.Deadline+dnsRetryMin || s.dnsErr == "" {
		t.Fatalf("after a lost lookup: timer %v, dnsErr %q", at, s.dnsErr)
	}
	acts = s.Tick(r1.Deadline + dnsRetryMin)
	r2, ok := acts[0].(Resolve)
	if !ok || r2.Lookup != 2 {
		t.Fatalf("retry: %#v", acts)
	}
	// Late: the first lookup's answer arrives now; it is not the one in flight.
	now := r1.Deadline + dnsRetryMin + time.Second
	if acts := s.Handle(now, ResolvedEvent{Lookup: 1, Addrs: []string{"192.0.2.9"}}); s.addr != "" || len(sends(acts)) != 0 {
		t.Fatalf("late lookup result taken: addr %q, %#v", s.addr, acts)
	}
	acts = s.Handle(now, ResolvedEvent{Lookup: 2, Addrs: []string{"192.0.2.1"}})
	if q := sends(acts); len(q) != 1 || q[0].Addr != addr {
		t.Fatalf("resolved: %#v", acts)
	}
	// Duplicated: the same answer again changes nothing.
	if acts := s.Handle(now, ResolvedEvent{Lookup: 2, Err: errors.New("boom")}); s.dnsErr != "" || len(sends(acts)) != 0 {
		t.Fatalf("repeated lookup result taken: %q %#v", s.dnsErr, acts)
	}
}

// A pool member that refuses us or stays silent asks to be replaced.
func TestSourceDemobilize(t *testing.T) {
	for _, c := range []struct {
		name string
		r    reply
		n    int
		ban  bool
	}{
		{"DENY", reply{kind: replyKiss, kiss: "DENY"}, 1, true},
		{"silent", reply{kind: replyTimeout, detail: "no reply"}, deadAfter, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testSource(Config{Burst: 1}, addr)
			s.pool = &pool{banned: map[string]string{}}
			now := time.Duration(0)
			var last []Action
			for i := 0; i < c.n; i++ {
				q := sends(s.Tick(now))
				if len(q) != 1 {
					t.Fatalf("query %d: %d sent", i, len(q))
				}
				last = s.Handle(now, ReplyEvent{q[0].Query, c.r})
				if i < c.n-1 && has[Demobilize](last) {
					t.Fatalf("demobilized after %d", i+1)
				}
				now = timer(t, last)
			}
			var d Demobilize
			for _, a := range last {
				if x, ok := a.(Demobilize); ok {
					d = x
				}
			}
			if d.Reason == "" || d.Ban != c.ban {
				t.Fatalf("actions %#v", last)
			}
		})
	}
}

// PollNow makes a short burst due at once, except to a server that asked
// us to slow down.
func TestSourcePollNow(t *testing.T) {
	s := testSource(Config{Burst: 1, FixedPoll: 1024 * time.Second}, addr)
	q := sends(s.Tick(0))
	s.Handle(time.Millisecond, ReplyEvent{q[0].Query, good(time.Millisecond)})
	now := time.Minute
	s.pollNow(now)
	var at []time.Duration
	for len(at) < PollNowBurst+1 {
		q := sends(s.Tick(now))
		if len(q) == 1 {
			at = append(at, now)
			s.Handle(now+time.Millisecond, ReplyEvent{q[0].Query, good(now)})
		}
		now = timer(t, s.Tick(now+time.Millisecond))
	}
	want := []time.Duration{time.Minute, time.Minute + 2*time.Second, time.Minute + 4*time.Second, time.Minute + 4*time.Second + 1024*time.Second}
	if !reflect.DeepEqual(at, want) {
		t.Errorf("queries at %v, want %v", at, want)
	}

	s = testSource(Config{Burst: 1}, addr)
	q = sends(s.Tick(0))
	s.Handle(time.Millisecond, ReplyEvent{q[0].Query, reply{kind: replyKiss, kiss: "RATE", poll: 256 * time.Second}})
	s.pollNow(time.Minute)
	if q := sends(s.Tick(time.Minute)); len(q) != 0 {
		t.Errorf("PollNow polled a server that sent RATE at once")
	}
}
