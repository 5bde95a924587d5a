package ntpclient_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"slewd/clock/simclock"
	"slewd/ntpclient"
	"slewd/ntpclient/ntptest"
)

// SetSources in virtual time: a kept server keeps its samples, a dropped
// one is asked no more, new servers and pools start polling; a bad list
// changes nothing.
func TestSimSetSources(t *testing.T) {
	w := simclock.New(simclock.Config{Seed: 3})
	n := ntptest.NewNetwork(w)
	for _, a := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"} {
		n.AddServer(a+":123", ntptest.ServerConfig{Stratum: 1, Delay: time.Millisecond})
	}
	n.SetHost("pool.test", "192.0.2.5", "192.0.2.6")
	var client *ntpclient.Client
	var ests int
	proc := w.Spawn("slewd", false, func(ctx context.Context, p *simclock.Process) error {
		c, err := ntpclient.NewClient(ntpclient.Config{Servers: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}}, ntpclient.Env{
			Clock: p, Loop: p, Dialer: n.Dialer(p), Resolver: n.Resolver(),
			Logger: slog.New(slog.DiscardHandler), Rand: rand.New(rand.NewPCG(3, 3)), SimulatedTime: true,
		})
		if err != nil {
			return err
		}
		client = c
		c.Start()
		for {
			ev, err := p.Wait(ctx, c.Tick())
			if err != nil {
				return err
			}
			if f, ok := ev.(func()); ok { // a step of the test, on the loop's goroutine
				f()
				continue
			}
			if est, ok := c.Handle(ev); ok && est != nil {
				ests++
			}
		}
	})
	report := func(source string) (ntpclient.SourceReport, bool) {
		for _, r := range client.Reports() {
			if r.Source == source {
				return r, true
			}
		}
		return ntpclient.SourceReport{}, false
	}
	w.Run(10 * time.Minute)
	kept, _ := report("192.0.2.2:123")
	asked1 := n.Server("192.0.2.1:123").Counters().Received
	if kept.Samples < 6 || asked1 < 6 || ests == 0 {
		t.Fatalf("before: %d samples of 192.0.2.2, 192.0.2.1 asked %d times, %d estimates", kept.Samples, asked1, ests)
	}

	// call runs SetSources on the client's loop, as the daemon's reload
	// handler does, and lets a second of virtual time pass.
	call := func(servers, pools []string) error {
		var err error
		w.After(time.Millisecond, func() { proc.Post(func() { err = client.SetSources(servers, pools) }) })
		w.Run(w.Now() + time.Second)
		return err
	}
	for _, bad := range []struct {
		servers, pools []string
		want           string
	}{
		{nil, nil, "no NTP servers configured: keeping the sources in use"},
		{[]string{"192.0.2.4", "192.0.2.4:123"}, nil, "server 192.0.2.4:123 is configured twice"},
		{[]string{"bad/name"}, nil, "cannot be in a host name"},
	} {
		if err := call(bad.servers, bad.pools); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("SetSources(%q, %q) = %v; want %q", bad.servers, bad.pools, err, bad.want)
		}
	}
	if len(client.Reports()) != 3 {
		t.Fatalf("a refused list changed the sources: %+v", client.Reports())
	}

	if err := call([]string{"192.0.2.2", "192.0.2.3", "192.0.2.4"}, []string{"pool.test"}); err != nil {
		t.Fatal(err)
	}
	asked1 = n.Server("192.0.2.1:123").Counters().Received
	after, ok := report("192.0.2.2:123")
	if !ok || after.Samples < kept.Samples || after.Reach == 0 {
		t.Errorf("kept server lost its state: %+v, before %+v", after, kept)
	}
	if _, ok := report("192.0.2.1:123"); ok {
		t.Error("dropped server still reported")
	}
	w.Run(w.Now() + 30*time.Minute)
	if got := n.Server("192.0.2.1:123").Counters().Received; got != asked1 {
		t.Errorf("dropped server asked %d more times", got-asked1)
	}
	for _, a := range []string{"192.0.2.4:123", "192.0.2.5:123", "192.0.2.6:123"} {
		if got := n.Server(a).Counters().Received; got < 6 {
			t.Errorf("new source %s asked %d times in 30 min, want its burst and polls", a, got)
		}
	}
	if q := client.MinSources(); q != 3 {
		t.Errorf("quorum %d after the reload, want 3 of 5 sources", q)
	}
	// A dropped pool's members go with it.
	if err := call([]string{"192.0.2.2"}, nil); err != nil {
		t.Fatal(err)
	}
	if r := client.Reports(); len(r) != 1 || r[0].Source != "192.0.2.2:123" || r[0].Samples < after.Samples {
		t.Errorf("after dropping the pool: %+v", r)
	}
}
