package ntpclient_test

import (
	"fmt"
	"testing"
	"time"

	"slewd/clock"
	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// faultyLoop is a Loop that loses, repeats or delays some of the events
// the client's helpers post.
type faultyLoop struct {
	*simclock.Process
	// fate says what happens to the n-th event of its kind ("query" or
	// "lookup"): "lose", "repeat", "late" (delivered a minute later, long
	// past its deadline), or "" (delivered).
	fate func(kind string, n int) string
	n    map[string]int
	hit  map[string]int // how many events met a fate
}

func (l *faultyLoop) Post(ev any) {
	kind := "lookup"
	if fmt.Sprintf("%T", ev) == "*ntpclient.queryDone" {
		kind = "query"
	}
	l.n[kind]++
	f := l.fate(kind, l.n[kind])
	if f != "" {
		l.hit[f]++
	}
	switch f {
	case "lose":
	case "repeat":
		l.Process.Post(ev)
		l.Process.Post(ev)
	case "late":
		l.World().After(time.Minute, func() { l.Process.Post(ev) })
	default:
		l.Process.Post(ev)
	}
}

// No lost, repeated or late event stops a source from being polled: for
// each kind of event, the client keeps polling and estimating, as well as
// without the faults.
func TestSimEventFaultsDoNotWedge(t *testing.T) {
	every := func(kind, fate string, k int) func(string, int) string {
		return func(kd string, n int) string {
			if kd == kind && n%k == 0 {
				return fate
			}
			return ""
		}
	}
	firstN := func(kind, fate string, k int) func(string, int) string {
		return func(kd string, n int) string {
			if kd == kind && n <= k {
				return fate
			}
			return ""
		}
	}
	for _, c := range []struct {
		name string
		fate func(kind string, n int) string
		pool bool
	}{
		{"every reply lost at first", firstN("query", "lose", 20), false},
		{"every fourth reply lost", every("query", "lose", 4), false},
		{"every reply repeated", every("query", "repeat", 1), false},
		{"every fourth reply late", every("query", "late", 4), false},
		{"server lookups lost", firstN("lookup", "lose", 3), false},
		{"server lookups late", firstN("lookup", "late", 3), false},
		{"server lookups repeated", every("lookup", "repeat", 1), false},
		{"pool lookups lost", firstN("lookup", "lose", 3), true},
		{"pool lookups late", firstN("lookup", "late", 3), true},
		{"pool lookups repeated", every("lookup", "repeat", 1), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := map[string]ntptest.ServerConfig{}
			var addrs []string
			for i := 1; i <= 3; i++ {
				a := fmt.Sprintf("198.51.100.%d", i)
				srv[a+":123"] = wan(ntptest.ServerConfig{})
				addrs = append(addrs, a)
			}
			cfg := ntpclient.Config{Servers: []string{"a.test", "b.test", "c.test"}, FixedPoll: 64 * time.Second}
			hosts := map[string][]string{"a.test": addrs[:1], "b.test": addrs[1:2], "c.test": addrs[2:]}
			if c.pool {
				cfg = ntpclient.Config{Pools: []string{"pool.test"}, PoolSize: 3, FixedPoll: 64 * time.Second}
				hosts = map[string][]string{"pool.test": addrs}
			}
			var fl *faultyLoop
			r := newSim(t, simSetup{seed: 5, servers: srv, hosts: hosts, cfg: cfg,
				loop: func(p *simclock.Process) clock.Loop {
					fl = &faultyLoop{Process: p, fate: c.fate, n: map[string]int{}, hit: map[string]int{}}
					return fl
				}})
			r.w.Run(2 * time.Hour)
			if len(fl.hit) == 0 {
				t.Fatal("no event met a fault: the test proves nothing")
			}
			// Polling goes on: every server answered in the last 10 minutes
			// (a 64 s poll), and estimates keep coming from all three.
			for _, a := range addrs {
				if n := r.net.Server(a + ":123").Counters().Answered; n < 60 {
					t.Errorf("%s answered %d queries in 2 h, want ≥ 60 at a 64 s poll", a, n)
				}
			}
			last := r.after(2*time.Hour - 10*time.Minute)
			if len(last) < 5 || last[len(last)-1].est.Sources != 3 {
				t.Fatalf("%d estimates in the last 10 minutes (faults %v): %+v", len(last), fl.hit, last[len(last)-1].est.Details)
			}
			checkAccuracy(t, r, 10*time.Minute, time.Millisecond)
		})
	}
}
