package ntpclient

import (
	"errors"
	"fmt"
	"slices"
)

// SetSources replaces the configured servers and pools (`slewd run` on
// SIGHUP, with the servers of its configuration file and DHCP). A server
// or pool whose spec is unchanged is kept with its samples, reach and poll
// interval; a new one starts as at Start, with a lookup and a burst; a
// dropped one stops: its queries and lookups in flight are ignored when
// they come back (their source or pool is gone). On an error nothing
// changes. It changes only the sources: what the consumer made of their
// estimates (a frequency, a slew) is not the client's.
func (c *Client) SetSources(servers, pools []string) error {
	type entry struct {
		spec Spec
		pool bool
	}
	seen := map[string]bool{}
	var want []entry
	for i, list := range [][]string{servers, pools} {
		kind := [...]string{"server", "pool"}[i]
		for _, text := range list {
			sp, err := ParseSource(text)
			if err != nil {
				return fmt.Errorf("%s %w", kind, err)
			}
			if seen[sp.String()] {
				return fmt.Errorf("%s %s is configured twice", kind, sp)
			}
			seen[sp.String()] = true
			want = append(want, entry{sp, i == 1})
		}
	}
	cfg := c.cfg()
	configured := len(servers) + len(pools)*cfg.PoolSize
	switch {
	case configured == 0:
		return errors.New("no NTP servers configured: keeping the sources in use")
	case cfg.MinSources > configured:
		return fmt.Errorf("min sources %d exceeds the %d configured sources: keeping the sources in use", cfg.MinSources, configured)
	}

	now := c.env.Clock.Raw()
	keepServer, keepPool := map[string]bool{}, map[string]bool{}
	for _, e := range want {
		if e.pool {
			keepPool[e.spec.String()] = true
		} else {
			keepServer[e.spec.String()] = true
		}
	}
	var pools2 []*pool
	for _, p := range c.pools {
		if keepPool[p.name] {
			pools2 = append(pools2, p)
			delete(keepPool, p.name)
		} else {
			c.log.Info("pool removed", "pool", p.name)
		}
	}
	var sources2 []*Source
	for _, s := range c.sources {
		switch {
		case s.pool != nil && slices.Contains(pools2, s.pool):
			sources2 = append(sources2, s)
		case s.pool == nil && keepServer[s.name]:
			sources2 = append(sources2, s)
			delete(keepServer, s.name)
		default:
			c.members.forget(s)
			c.log.Info("source removed", "source", s.name, "addr", s.addr)
		}
	}
	var added []*Source
	for _, e := range want {
		name := e.spec.String()
		switch {
		case !e.pool && keepServer[name]:
			s := c.newSource(e.spec, nil)
			if e.spec.IsIP() {
				s.addr = name
			}
			sources2 = append(sources2, s)
			added = append(added, s)
			c.log.Info("source added", "source", name)
		case e.pool && keepPool[name]:
			p := &pool{spec: e.spec, name: name, resolveAt: -1, banned: map[string]string{}}
			if c.started {
				p.resolveAt = now
			}
			pools2 = append(pools2, p)
			c.log.Info("pool added", "pool", name)
		}
	}
	c.sources, c.pools = sources2, pools2
	c.members.p.cfg.Servers, c.members.p.cfg.Pools = slices.Clone(servers), slices.Clone(pools)
	if c.started {
		for _, s := range added {
			s.start(now)
		}
		c.tickAll(now)
	}
	return nil
}

// hasPool says whether p is still configured (SetSources may have dropped
// it while its lookup was in flight).
func (c *Client) hasPool(p *pool) bool { return slices.Contains(c.pools, p) }
