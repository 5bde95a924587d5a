package ntpclient

import (
	"context"
	"log/slog"
)

// driver does the I/O the state machines ask for, on helper goroutines
// of Env.Loop (the exchange and the lookup block), and posts each outcome
// back to the loop as an event for Client.Handle. It decides nothing.
type driver struct {
	c   *Client
	env Env
	cfg Config
	rx  *rxStamps
}

// Events the driver posts.
type (
	queryDone struct {
		c     *Client
		src   uint64
		query uint64
		r     reply
	}
	keDone struct {
		c    *Client
		src  uint64
		ke   uint64
		sess *ntsSession
		err  error
	}
	resolved struct {
		c      *Client
		src    uint64 // a server by name
		pool   *pool
		lookup uint64
		addrs  []string
		err    error
	}
)

func newDriver(c *Client, env Env, cfg Config, log *slog.Logger) driver {
	return driver{c: c, env: env, cfg: cfg, rx: newRxStamps(env, log)}
}

func (d driver) query(name string, src uint64, q SendQuery) {
	p := queryParams{
		source:    name,
		addr:      q.Addr,
		timeout:   d.cfg.Timeout,
		auth:      d.cfg.Auth,
		dialer:    d.env.Dialer,
		clock:     d.env.Clock,
		simulated: d.env.SimulatedTime,
		rx:        d.rx,
		nts:       q.NTS,
		ntsSource: d.c.isNTS(src),
	}
	loop, c := d.env.Loop, d.c
	loop.Go(func() {
		r := query(p)
		loop.Post(&queryDone{c: c, src: src, query: q.Query, r: r})
	})
}

// keyExchange runs NTS-KE on a helper goroutine.
func (d driver) keyExchange(src uint64, k KeyExchange) {
	p := keParams{host: k.Host, port: k.Port, roots: d.cfg.NTSRoots, timeout: ntsKETimeout}
	loop, c := d.env.Loop, d.c
	loop.Go(func() {
		sess, err := keyExchange(p)
		loop.Post(&keDone{c: c, src: src, ke: k.KE, sess: sess, err: err})
	})
}

func (d driver) resolve(name string, src uint64, p *pool, r Resolve) {
	res, loop, c := d.env.Resolver, d.env.Loop, d.c
	loop.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), dnsTimeout)
		addrs, err := res.LookupHost(ctx, r.Host)
		cancel()
		loop.Post(&resolved{c: c, src: src, pool: p, lookup: r.Lookup, addrs: addrs, err: err})
	})
}
