package ntpclient

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func keyExchanges(acts []Action) []KeyExchange {
	var out []KeyExchange
	for _, a := range acts {
		if k, ok := a.(KeyExchange); ok {
			out = append(out, k)
		}
	}
	return out
}

// An NTS source: key exchange first, retried with back-off; queries only
// with its session, to the NTP server the exchange named; an NTS NAK or
// used-up cookies mean a new exchange, backing off while the new keys do
// not give a sample.
func TestNTSSourceKeyExchange(t *testing.T) {
	s := testSource(Config{}, "nts://192.0.2.9")
	sess := &ntsSession{ntpAddr: "192.0.2.10:123"}
	ms := time.Millisecond
	acts := s.Tick(0)
	ke := keyExchanges(acts)
	if len(ke) != 1 || ke[0].Host != "192.0.2.9" || ke[0].Port != DefaultNTSKEPort || len(sends(acts)) != 0 {
		t.Fatalf("start: %v, want one key exchange with 192.0.2.9:4460 and no query", acts)
	}
	if got := s.unusable(); got != "NTS key exchange not done yet" {
		t.Errorf("before the exchange: %q", got)
	}

	// Failures: retried 2 s, then 4 s later; a stale outcome changes nothing.
	at := 100 * ms
	acts = s.Handle(at, KeyExchangedEvent{KE: ke[0].KE, Err: errors.New("connection refused")})
	if timer(t, acts) != at+2*time.Second || len(keyExchanges(acts)) != 0 {
		t.Fatalf("after a failure: %v, want a timer 2 s on", acts)
	}
	if u := s.unusable(); !strings.Contains(u, "NTS key exchange with nts://192.0.2.9:4460 failed: connection refused (retrying in 2s)") {
		t.Errorf("unusable %q", u)
	}
	acts = s.Handle(at+time.Second, KeyExchangedEvent{KE: ke[0].KE, Session: sess})
	if s.session != nil || len(sends(acts)) != 0 {
		t.Fatal("a stale key exchange outcome was taken")
	}
	ke = keyExchanges(s.Tick(at + 2*time.Second))
	if len(ke) != 1 {
		t.Fatal("no second key exchange at 2.1 s")
	}
	// No answer at all: a failure at its deadline, retried 4 s later.
	acts = s.Tick(ke[0].Deadline)
	if timer(t, acts) != ke[0].Deadline+4*time.Second || !strings.Contains(s.unusable(), "no answer within 5s") {
		t.Fatalf("lost key exchange: %v, %q", acts, s.unusable())
	}
	ke = keyExchanges(s.Tick(ke[0].Deadline + 4*time.Second))
	at = ke[0].Deadline - time.Second
	acts = s.Handle(at, KeyExchangedEvent{KE: ke[0].KE, Session: sess})
	q := sends(acts)
	if len(q) != 1 || q[0].NTS != sess || q[0].Addr != "192.0.2.10:123" {
		t.Fatalf("after the exchange: %v, want a query to 192.0.2.10:123 with the session", acts)
	}
	if s.keBackoff != 4*time.Second {
		t.Errorf("back-off %v before an authenticated sample, want 4s kept", s.keBackoff)
	}
	acts = s.Handle(at+ms, ReplyEvent{Query: q[0].Query, Reply: good(at)})
	if !has[Report](acts) || s.keBackoff != 0 {
		t.Fatalf("an authenticated sample: %v, back-off %v", acts, s.keBackoff)
	}

	// NTS NAK: the session goes; a new exchange at once, the next one
	// after a second NAK 2 s later.
	q = sends(s.Tick(at + 2*time.Second))
	if len(q) != 1 {
		t.Fatal("no burst query")
	}
	now := at + 2*time.Second + ms
	acts = s.Handle(now, ReplyEvent{Query: q[0].Query, Reply: reply{kind: replyNTSNak, detail: "NTS NAK"}})
	if s.session != nil || len(keyExchanges(acts)) != 1 || len(sends(acts)) != 0 {
		t.Fatalf("after a NAK: %v, want a new key exchange and no query", acts)
	}
	sess2 := &ntsSession{ntpAddr: "192.0.2.10:123"}
	ke = keyExchanges(acts)
	acts = s.Handle(now+ms, KeyExchangedEvent{KE: ke[0].KE, Session: sess2})
	q = sends(append(acts, s.Tick(now+2*time.Second)...))
	if len(q) != 1 || q[0].NTS != sess2 {
		t.Fatalf("no query with the new session: %v", q)
	}
	now += 2 * time.Second
	acts = s.Handle(now, ReplyEvent{Query: q[0].Query, Reply: reply{kind: replyNTSNak, detail: "NTS cookies used up"}})
	if len(keyExchanges(acts)) != 0 || timer(t, acts) != now+2*time.Second {
		t.Fatalf("second NAK without a sample between: %v, want the exchange 2 s later", acts)
	}
}

// A one-shot measurement tries the key exchange once.
func TestNTSOneShotNoRetry(t *testing.T) {
	p := testParams(Config{})
	p.oneShot = true
	sp, _ := ParseSource("nts://time.example.org")
	s := newSource(p, 1, sp, nil)
	s.start(0)
	ke := keyExchanges(s.Tick(0))
	acts := s.Handle(time.Second, KeyExchangedEvent{KE: ke[0].KE, Err: errors.New("x509: certificate signed by unknown authority")})
	if timer(t, acts) != -1 || s.keAt >= 0 {
		t.Errorf("one-shot: %v, want nothing more scheduled", acts)
	}
	if u := s.unusable(); u != "NTS key exchange with nts://time.example.org:4460 failed: x509: certificate signed by unknown authority" {
		t.Errorf("unusable %q", u)
	}
}

// Whatever happens, in any order, late or duplicated: an NTS source sends
// no query without a session, has at most one key exchange in flight,
// reports a sample only from a sample reply, and never tries a key
// exchange sooner than ntsRetryMin after one failed; its back-off never
// shrinks without an authenticated sample.
func TestNTSSourceProperties(t *testing.T) {
	for seed := uint64(0); seed < 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 7))
		s := testSource(Config{}, "nts://nts.example.org:4461")
		now := time.Duration(0)
		acts := s.Tick(now)
		var keInFlight []KeyExchange
		var queries []SendQuery
		failedAt := time.Duration(-1)
		backoff := time.Duration(0)
		for step := 0; step < 300; step++ {
			for _, a := range acts {
				switch a := a.(type) {
				case SendQuery:
					if a.NTS == nil {
						t.Fatalf("seed %d step %d: query %d without a session", seed, step, a.Query)
					}
					queries = append(queries, a)
				case KeyExchange:
					if s.ke != a.KE {
						t.Fatalf("seed %d: key exchange %d asked for, %d in flight", seed, a.KE, s.ke)
					}
					if failedAt >= 0 && now < failedAt+ntsRetryMin-dueSlack {
						t.Fatalf("seed %d step %d: key exchange %v after a failed one", seed, step, now-failedAt)
					}
					keInFlight = append(keInFlight, a)
				case Report:
					t.Fatalf("seed %d: a report without a sample reply", seed)
				}
			}
			if s.keBackoff < backoff || s.keBackoff > ntsRetryMax {
				t.Fatalf("seed %d step %d: back-off %v after %v", seed, step, s.keBackoff, backoff)
			}
			backoff = s.keBackoff
			now += time.Duration(rng.Int64N(int64(4 * time.Second)))
			var ev Event = TimerEvent{}
			switch r := rng.IntN(10); {
			case r < 3 && len(keInFlight) > 0:
				k := keInFlight[rng.IntN(len(keInFlight))]
				if rng.IntN(3) == 0 {
					ev = KeyExchangedEvent{KE: k.KE, Session: &ntsSession{ntpAddr: "192.0.2.5:123"}}
				} else {
					ev = KeyExchangedEvent{KE: k.KE, Err: errors.New("refused")}
				}
			case r < 7 && len(queries) > 0:
				q := queries[rng.IntN(len(queries))]
				kinds := []replyKind{replyNTSNak, replyBad, replyTimeout, replyKiss}
				ev = ReplyEvent{Query: q.Query, Reply: reply{kind: kinds[rng.IntN(len(kinds))], kiss: "RATE", detail: "x"}}
			}
			inFlight := s.ke
			acts = s.Handle(now, ev)
			if inFlight != 0 && s.ke != inFlight && s.session == nil {
				failedAt = now
			}
		}
	}
}

// A one-shot measurement whose last query drew an NTS NAK has nothing
// more to do: no key exchange for queries it will not make.
func TestNTSOneShotNakOnLastQuery(t *testing.T) {
	p := testParams(Config{Burst: 1})
	p.oneShot = true
	sp, _ := ParseSource("nts://192.0.2.9")
	s := newSource(p, 1, sp, nil)
	c := &Client{}
	c.sources = []*Source{s}
	s.start(0)
	ke := keyExchanges(s.Tick(0))
	q := sends(s.Handle(time.Millisecond, KeyExchangedEvent{KE: ke[0].KE, Session: &ntsSession{ntpAddr: "192.0.2.9:123"}}))
	if len(q) != 1 {
		t.Fatal("no query")
	}
	acts := s.Handle(2*time.Millisecond, ReplyEvent{Query: q[0].Query, Reply: reply{kind: replyNTSNak, detail: "NTS NAK"}})
	if len(keyExchanges(acts)) != 0 || timer(t, acts) != -1 || !c.finished() {
		t.Errorf("after the NAK on the only query: %v, finished %v", acts, c.finished())
	}
}
