package ntpclient

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// pool is a pool name; its lookups have ids and deadlines like a
// source's queries, so a lost or late result cannot stop the lookups.
type pool struct {
	spec       Spec
	name       string
	lookup     uint64 // in flight; 0: none
	lookupBy   time.Duration
	lastLookup uint64
	resolveAt  time.Duration // RAW; <0: no lookup wanted
	backoff    time.Duration
	dnsErr     string
	banned     map[string]string // address → why it may not come back (DENY)
	resolved   bool              // a lookup has given addresses
}

// due expires a lost lookup and starts one that is due.
func (p *pool) due(now time.Duration) (Resolve, bool) {
	if p.lookup != 0 && now >= p.lookupBy {
		p.lookup = 0
		p.failed(now, fmt.Errorf("no answer within %v", dnsTimeout))
	}
	if p.lookup == 0 && p.resolveAt >= 0 && p.resolveAt <= now+dueSlack {
		p.lastLookup++
		p.lookup, p.lookupBy = p.lastLookup, lookupDeadline(now)
		return Resolve{Lookup: p.lookup, Host: p.spec.Host, Deadline: p.lookupBy}, true
	}
	return Resolve{}, false
}

// wake is the RAW time of the next lookup or deadline, or -1.
func (p *pool) wake() time.Duration {
	if p.lookup != 0 {
		return p.lookupBy
	}
	return p.resolveAt
}

func (p *pool) failed(now time.Duration, err error) {
	p.backoff = min(max(2*p.backoff, dnsRetryMin), dnsRetryMax)
	p.dnsErr = fmt.Sprintf("DNS lookup of pool %s failed: %v (retrying in %v)", p.spec.Host, err, p.backoff)
	p.resolveAt = now + p.backoff
}

// members is the client's sources and pools: who is polled, and pool
// membership (members added from lookups, dead ones replaced, banned
// addresses kept out).
type members struct {
	p       *sourceParams
	forget  func(*Source) // a removed source's timer goes with it
	sources []*Source
	pools   []*pool
	nextID  uint64
}

func (m *members) newSource(sp Spec, pl *pool) *Source {
	m.nextID++
	return newSource(m.p, m.nextID, sp, pl)
}

func (m *members) byID(id uint64) *Source {
	for _, s := range m.sources {
		if s.id == id {
			return s
		}
	}
	return nil
}

func (m *members) remove(s *Source) {
	for i, x := range m.sources {
		if x == s {
			m.sources = append(m.sources[:i], m.sources[i+1:]...)
			return
		}
	}
}

func (m *members) count(p *pool) int {
	n := 0
	for _, s := range m.sources {
		if s.pool == p {
			n++
		}
	}
	return n
}

// demobilize handles a pool member's death: its address is banned if it
// refused us, and the pool is looked up again to replace it.
func (m *members) demobilize(now time.Duration, s *Source, d Demobilize) {
	p := s.pool
	if p == nil {
		return
	}
	if d.Ban {
		p.banned[s.addr] = d.Reason
	}
	if p.lookup == 0 && p.resolveAt < 0 {
		p.resolveAt = now
		m.p.log.Info("pool member dead, looking the pool up again", "pool", p.name, "addr", s.addr, "why", d.Reason)
	}
}

// poolResolved takes the result of a pool's lookup: fresh addresses
// replace dead members and fill the pool up to PoolSize.
func (m *members) poolResolved(now time.Duration, p *pool, addrs []string, err error) {
	if err == nil && len(addrs) == 0 {
		err = errors.New("no addresses")
	}
	if err != nil {
		p.failed(now, err)
		m.p.log.Warn("DNS lookup failed", "pool", p.name, "err", err, "retry", p.backoff)
		return
	}
	p.dnsErr = ""
	p.resolved = true
	inUse := map[string]bool{}
	live := 0
	var dead []*Source
	for _, s := range m.sources {
		inUse[s.addr] = true
		if s.pool == p {
			if s.dead() {
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
		if live >= m.p.cfg.PoolSize {
			break
		}
		if len(dead) > 0 { // replace a dead member
			m.remove(dead[0])
			m.forget(dead[0])
			dead = dead[1:]
		}
		s := m.newSource(p.spec, p)
		s.addr, s.next = addr, now
		m.sources = append(m.sources, s)
		live++
		m.p.log.Info("pool member added", "pool", p.name, "addr", addr)
	}
	p.resolveAt = -1
	if live < m.p.cfg.PoolSize && !m.p.oneShot {
		// Not enough addresses yet: ask again later, less and less often.
		p.backoff = min(max(2*p.backoff, dnsRetryMin), dnsRetryMax)
		p.resolveAt = now + p.backoff
	} else {
		p.backoff = 0
	}
}
